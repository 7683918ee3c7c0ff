"""Picks deployments for a model, retries and falls back — only before anything reached the client.

Order of attempts for a request: the model's deployments (load-balanced by the routing strategy), tried
`1 + num_retries` times in all, then each fallback model's deployments the same way. A deployment that
failed `allowed_fails` times in a row is cooled down for `cooldown_time` seconds.
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
from responses_gateway.errors import RETRYABLE, GatewayError, Reason, echo
from responses_gateway.providers.base import Provider
from responses_gateway.providers.registry import ProviderRegistry

T = TypeVar("T")

# Never sleep longer than this for an upstream's Retry-After before trying again.
_MAX_RETRY_WAIT = 5.0


class Router:
    def __init__(self, config: LoadedConfig, providers: ProviderRegistry) -> None:
        self.config = config
        self.policy = config.routing
        self.providers = providers
        self._rr = itertools.count()
        self._fails: dict[str, int] = {}
        self._cool_until: dict[str, float] = {}

    def deployments(self, model: str) -> list[ResolvedDeployment]:
        """The enabled deployments serving `model`, in the order to try them; raises when there are none."""
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
        warm = [d for d in enabled if self._cool_until.get(d.deployment_id, 0.0) <= now] or enabled
        if self.policy.strategy == "round-robin" and len(warm) > 1:
            start = next(self._rr) % len(warm)
            return warm[start:] + warm[:start]
        if len(warm) > 1:
            return random.sample(warm, len(warm))
        return warm

    def _attempts(self, model: str) -> list[tuple[str, ResolvedDeployment]]:
        primary = self.deployments(model)
        tries = 1 + self.policy.num_retries
        plan = [(model, primary[i % len(primary)]) for i in range(tries)]
        for fallback in self.policy.fallbacks.get(model, ()):
            try:
                group = self.deployments(fallback)
            except GatewayError:
                continue
            plan.extend((fallback, group[i % len(group)]) for i in range(tries))
        return plan

    async def first_success(
        self, model: str, attempt: Callable[[ResolvedDeployment, Provider], Awaitable[T]]
    ) -> T:
        """Run `attempt` on deployments in turn until one succeeds or a non-retryable error occurs."""
        plan = self._attempts(model)
        last: GatewayError | None = None
        for i, (_, deployment) in enumerate(plan):
            if last is not None and plan[i - 1][1] is deployment:
                # Same deployment again: honour the upstream's Retry-After (capped) or the configured wait.
                await asyncio.sleep(min(last.retry_after or self.policy.retry_after, _MAX_RETRY_WAIT))
            try:
                result = await attempt(deployment, self.providers.get(deployment))
            except GatewayError as e:
                if e.reason not in RETRYABLE:
                    raise
                self._failed(deployment)
                last = e
                continue
            self._fails.pop(deployment.deployment_id, None)
            return result
        assert last is not None
        raise last

    def _failed(self, deployment: ResolvedDeployment) -> None:
        n = self._fails.get(deployment.deployment_id, 0) + 1
        self._fails[deployment.deployment_id] = n
        if n >= self.policy.allowed_fails:
            self._cool_until[deployment.deployment_id] = time.monotonic() + self.policy.cooldown_time
            self._fails[deployment.deployment_id] = 0
