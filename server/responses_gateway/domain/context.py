"""What a transport tells the domain about one call, and what the domain tells it back."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from responses_gateway.errors import GatewayError, Reason

# Response header / gRPC trailer naming the request parameters a deployment with drop_params dropped.
DROPPED_HEADER = "x-gateway-dropped-params"


@dataclass(frozen=True)
class CallContext:
    """`deadline` is on the time.monotonic() clock. `notes` are filled by the domain for the transport
    to pass on (HTTP headers / gRPC trailers)."""

    deadline: float | None = None
    notes: dict[str, str] = field(default_factory=dict)

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise GatewayError(Reason.DEADLINE_EXCEEDED, "The request's deadline passed.")
        return left

    def add_dropped(self, names: Iterable[str]) -> None:
        """Dropped parameters join the list, never replace it (the Chat Completions surface drops
        chat-only knobs before the adapter drops its own)."""
        known = [n for n in self.notes.get(DROPPED_HEADER, "").split(",") if n]
        new = [n for n in names if n not in known]
        if new:
            self.notes[DROPPED_HEADER] = ",".join(known + new)
