"""What the router knows about each deployment in this process: requests in flight, recent latency,
this minute's requests and tokens (for `rpm` / `tpm`), consecutive failures and cooldown.

Per replica, like LiteLLM's in-memory router state: limits shared across replicas belong to the store.
"""

from __future__ import annotations

from dataclasses import dataclass

_EWMA = 0.3  # weight of the newest latency sample: reacts within a few requests, smooths one-offs
WINDOW = 60.0  # seconds: rpm / tpm are per minute, counted in the minute a request started


@dataclass(slots=True)
class DeploymentState:
    in_flight: int = 0
    latency: float = -1.0  # EWMA of seconds to first event (stream) / to the answer (unary); -1: none yet
    fails: int = 0  # consecutive
    cool_until: float = 0.0
    window: int = -1  # the minute (monotonic // 60) the counts below belong to
    requests: int = 0
    tokens: int = 0

    def roll(self, now: float) -> None:
        minute = int(now // WINDOW)
        if minute != self.window:
            self.window, self.requests, self.tokens = minute, 0, 0

    def observe_latency(self, seconds: float) -> None:
        self.latency = seconds if self.latency < 0 else self.latency + _EWMA * (seconds - self.latency)

    def utilisation(self, rpm: int | None, tpm: int | None) -> float:
        """The larger share used of this minute's rpm / tpm (0 without limits)."""
        used = 0.0
        if rpm:
            used = self.requests / rpm
        if tpm:
            used = max(used, self.tokens / tpm)
        return used

    def full(self, rpm: int | None, tpm: int | None) -> bool:
        return bool((rpm and self.requests >= rpm) or (tpm and self.tokens >= tpm))
