"""Picks deployments for a model, retries and falls back — only before anything reached the client.

Order of attempts for a request: the model's deployments that are warm (not cooling down) and have
capacity left this minute (`rpm` / `tpm`), ordered by the routing strategy (a `previous_response_id`
follow-up puts the deployments holding the conversation first); `1 + num_retries` tries in all (the
request's `num_retries`, else router_settings'), each deployment retried on its own `num_retries` times
before the next. Retryable failures are 429, 5xx, timeouts and connection errors; a retry on the same
deployment waits an exponential backoff with jitter, or the upstream's Retry-After. Then the fallback
model groups, in order: `context_window_fallbacks` for a context-length refusal,
`content_policy_fallbacks` for a content-policy one, else `fallbacks`. A deployment that failed
`allowed_fails` times in a row cools down for `cooldown_time` seconds, then comes back.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from responses_gateway.config.loader import LoadedConfig
from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.cost.prices import PriceBook
from responses_gateway.errors import RETRYABLE, GatewayError, Reason, echo
from responses_gateway.providers.base import Provider
from responses_gateway.providers.registry import ProviderRegistry, preload
from responses_gateway.routing import strategies
from responses_gateway.routing.state import WINDOW, DeploymentState
from responses_gateway.telemetry import metrics
from responses_gateway.telemetry.record import CURRENT, CallRecord

T = TypeVar("T")
# The wait between attempts (a name of its own, so a test sees the waits without patching asyncio).
backoff_sleep = asyncio.sleep

_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length", "context_window_exceeded"})
_CONTEXT_WORDS = (
    "context length",
    "context window",
    "maximum context",
    "prompt is too long",
    "too many tokens",
)
_POLICY_CODES = frozenset({"content_policy_violation", "content_filter", "content_policy"})
_POLICY_WORDS = ("content policy", "content management policy", "safety system")


def fallback_kind(error: GatewayError) -> str:
    """Which fallback list an error calls for: "context_window", "content_policy", "any", or "" (none:
    the client's own mistake, which another model would refuse the same way)."""
    code = (error.code or "").lower()
    text = error.message.lower()
    if code in _CONTEXT_CODES or any(w in text for w in _CONTEXT_WORDS):
        return "context_window"
    if code in _POLICY_CODES or any(w in text for w in _POLICY_WORDS):
        return "content_policy"
    return "any" if error.reason in RETRYABLE else ""


class Router:
    def __init__(self, config: LoadedConfig, providers: ProviderRegistry) -> None:
        self.config = config
        self.policy = config.routing
        self.providers = providers
        self._rr = itertools.count()
        self._rng = random.Random()
        self._states: dict[str, DeploymentState] = {}
        self.prices = PriceBook()  # the run settles each response's cost with it
        self.prices.warm(config.deployments)  # the table loads now, not on the first request
        preload(config.deployments)  # and the libraries the configured adapters use

    def state(self, deployment: ResolvedDeployment) -> DeploymentState:
        s = self._states.get(deployment.deployment_id)
        if s is None:
            s = self._states[deployment.deployment_id] = DeploymentState()
        return s

    # --- which deployments, in which order ------------------------------------------------------

    def deployments(self, model: str, record: CallRecord | None = None) -> list[ResolvedDeployment]:
        """The deployments to try for `model`, best first; raises when there are none (unknown model,
        none enabled, or every one at its rpm / tpm limit this minute)."""
        found = self.config.lookup(model)
        if not found:
            raise GatewayError(
                Reason.MODEL_NOT_FOUND,
                f"The model `{echo(model)}` does not exist or you do not have access to it.",
                param="model",
            )
        enabled = [d for d in found if d.enabled]
        if not enabled:
            reasons = "; ".join(sorted({d.disabled_reason or "disabled" for d in found}))
            raise GatewayError(
                Reason.PROVIDER_NOT_CONFIGURED,
                f"The model `{echo(model)}` is not available: {reasons}.",
                param="model",
            )
        now = time.monotonic()
        open_ = [d for d in enabled if not self._full(d, now)]
        if not open_:
            raise GatewayError(
                Reason.RATE_LIMITED,
                f"Every deployment of `{echo(model)}` reached its rpm / tpm limit for this minute.",
                retry_after=max(WINDOW - now % WINDOW, 0.001),
            )
        # Cooling every deployment down must not turn a model off: then the cooled ones are tried.
        warm = [d for d in open_ if self.state(d).cool_until <= now] or open_
        ordered = self._order(warm) if len(warm) > 1 else warm
        if record is not None and record.prefer is not None and len(ordered) > 1:
            prefer = record.prefer
            ordered = [d for d in ordered if prefer(d)] + [d for d in ordered if not prefer(d)]
        return ordered

    def _full(self, d: ResolvedDeployment, now: float) -> bool:
        if d.rpm is None and d.tpm is None:
            return False
        s = self.state(d)
        s.roll(now)
        return s.full(d.rpm, d.tpm)

    def _order(self, warm: list[ResolvedDeployment]) -> list[ResolvedDeployment]:
        strategy = self.policy.strategy
        if strategy == "round-robin":
            return strategies.rotate(warm, next(self._rr))
        if strategy == "least-busy":
            return strategies.least_busy(warm, self.state, self._rng)
        if strategy == "latency-based-routing":
            return strategies.lowest_latency(warm, self.state, self._rng)
        if strategy == "usage-based-routing":
            return strategies.most_headroom(warm, self.state, self._rng)
        return strategies.weighted_shuffle(warm, self._rng)

    def _groups(self, model: str, kind: str) -> tuple[str, ...]:
        """The fallback model groups for a failure of `kind` (see `fallback_kind`)."""
        if kind == "context_window" and model in self.policy.context_window_fallbacks:
            return self.policy.context_window_fallbacks[model]
        if kind == "content_policy" and model in self.policy.content_policy_fallbacks:
            return self.policy.content_policy_fallbacks[model]
        return self.policy.fallbacks.get(model, ()) if kind else ()

    # --- trying them ----------------------------------------------------------------------------

    async def first_success(
        self,
        model: str,
        attempt: Callable[[ResolvedDeployment, Provider], Awaitable[T]],
        record: CallRecord | None = None,
    ) -> T:
        """Run `attempt` on deployments in turn until one succeeds or a failure is final. `record`
        (the call's) learns who served and what it took, and is the current one while attempts run."""
        token = CURRENT.set(record) if record is not None else None
        try:
            try:
                return await self._group(model, attempt, record)
            except GatewayError as first:
                last = first
            for fallback in self._groups(model, fallback_kind(last)):
                if record is not None:
                    record.fallbacks += 1
                metrics.observe_fallback(model, fallback)
                try:
                    return await self._group(fallback, attempt, record)
                except GatewayError as e:
                    if fallback_kind(e) == "":
                        raise
                    last = e
            raise last
        finally:
            if token is not None:
                CURRENT.reset(token)

    async def _group(
        self,
        model: str,
        attempt: Callable[[ResolvedDeployment, Provider], Awaitable[T]],
        record: CallRecord | None,
    ) -> T:
        order = self.deployments(model, record)
        retries = self.policy.num_retries
        if record is not None and record.num_retries is not None:
            retries = record.num_retries
        previous: ResolvedDeployment | None = None
        same = 0  # tries in a row on `previous`
        last: GatewayError | None = None
        budget = 1 + retries
        i = 0
        while budget > 0:
            deployment = order[i % len(order)]
            if last is not None and deployment is previous:
                same += 1
                await backoff_sleep(self._backoff(same, last))
            else:
                same = 0
            try:
                return await self._try(model, deployment, attempt, record)
            except GatewayError as e:
                if e.reason not in RETRYABLE:
                    raise
                last, previous = e, deployment
                # The deployment's own num_retries: tried again here before the router moves on.
                if same >= (deployment.num_retries or 0):
                    i += 1
                    budget -= 1
                if budget > 0:
                    metrics.observe_retry(model, e.reason.value)
        assert last is not None
        raise last

    def _backoff(self, n: int, error: GatewayError) -> float:
        """Seconds before try n + 1 on the same deployment: the upstream's Retry-After when it sent
        one, else base * 2^(n-1) with jitter (never below router_settings.retry_after); capped."""
        p = self.policy
        if error.retry_after is not None:
            return min(error.retry_after, p.backoff_max)
        wait = p.backoff_base * (2.0 ** (n - 1)) * (0.5 + 0.5 * self._rng.random())
        return min(max(wait, p.retry_after), p.backoff_max)

    async def _try(
        self,
        model: str,
        deployment: ResolvedDeployment,
        attempt: Callable[[ResolvedDeployment, Provider], Awaitable[T]],
        record: CallRecord | None,
    ) -> T:
        s = self.state(deployment)
        start = time.monotonic()
        s.roll(start)
        s.requests += 1
        s.in_flight += 1
        done = False

        def release(ended: CallRecord | None) -> None:
            # Once per attempt: when it failed, or when the response it began ended. A unary call
            # over a stream ends its response inside the attempt, so the hook is in place first.
            nonlocal done
            if done:
                return
            done = True
            s.in_flight -= 1
            if ended is not None:
                s.roll(time.monotonic())
                s.tokens += ended.input_tokens + ended.output_tokens

        if record is not None:
            record.attempts += 1
            record.upstream_started = record.upstream_started or start
            record.on_end.append(release)
            self._served(record, deployment)
        try:
            result = await attempt(deployment, self.providers.get(deployment))
        except BaseException as e:
            release(None)
            if isinstance(e, GatewayError) and e.reason in RETRYABLE:
                s.observe_latency(time.monotonic() - start)  # a slow failure makes it look slow too
                self._failed(deployment, s)
            raise
        now = time.monotonic()
        s.fails = 0
        s.observe_latency(now - start)
        if record is None:
            release(None)
        else:
            record.first_event = record.first_event or now
        return result

    @staticmethod
    def _served(record: CallRecord, deployment: ResolvedDeployment) -> None:
        """Set when the attempt starts: the domain settles the cost inside the attempt (a unary call
        over a stream), so the serving deployment must be known by then."""
        record.deployment = deployment.deployment_id
        record.served_model = deployment.model_name
        record.upstream_model = deployment.upstream_model
        record.provider = str(deployment.provider or "")

    def _failed(self, deployment: ResolvedDeployment, s: DeploymentState) -> None:
        s.fails += 1
        if s.fails >= self.policy.allowed_fails:
            s.cool_until = time.monotonic() + self.policy.cooldown_time
            s.fails = 0
            metrics.observe_cooldown(deployment.deployment_id)
