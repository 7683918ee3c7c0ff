"""Config reload without dropping what is in flight (SIGHUP, and `POST /config/reload`).

A reload reads the config file again (and the environment its os.environ/ references name), validates
it exactly as start-up does, and builds a new *generation*: a router over a fresh provider registry
(every enabled deployment's provider built now, so a deployment the gateway cannot serve refuses the
file instead of failing its first request). The service then routes NEW calls with it; a call in
flight keeps the router and the providers it started with (a run holds its `RunDeps`), so its stream,
its retries and its later turns carry on untouched. The old generation counts its calls
(`CountedRouter`); when the last one has ended, its providers — their HTTP pools — are closed.

A file that fails anywhere is refused as a whole: one log line naming the problem, the
`responses_gateway_config_last_reload_ok` gauge at 0, and the previous config keeps serving. What a
running process cannot change (listeners, the store, the master key: `config.loader.RESTART_ONLY`) is
reported as "needs a restart"; everything else applies. Per-deployment router state (cooldowns,
this minute's rpm / tpm counts, latency) carries over to deployments with the same id.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from responses_gateway import gc_policy
from responses_gateway.config.errors import ConfigError
from responses_gateway.config.loader import LoadedConfig, reload_config
from responses_gateway.config.resolve import ResolvedDeployment
from responses_gateway.domain.service import ResponsesService
from responses_gateway.errors import GatewayError
from responses_gateway.providers.base import Provider
from responses_gateway.providers.registry import ProviderRegistry
from responses_gateway.routing.router import Router
from responses_gateway.routing.state import DeploymentState
from responses_gateway.telemetry import metrics
from responses_gateway.telemetry import setup as telemetry_setup
from responses_gateway.telemetry.record import CallRecord

log = logging.getLogger("responses_gateway.reload")
T = TypeVar("T")
_IDLE_POLL = 0.1  # seconds between looks at a retiring generation's call count


class CountedRouter(Router):
    """A Router that counts the calls it serves, so a replaced config knows when its last call ended.

    A call counts from its first attempt until its response ended (`CallRecord.end`: a stream after
    its last event, a unary call when the transport is done), backoffs between retries and later
    turns included; a call without a record (token counts, compaction) until `first_success` returns.
    """

    def __init__(
        self,
        config: LoadedConfig,
        providers: ProviderRegistry,
        carried: Mapping[str, DeploymentState] | None = None,
    ) -> None:
        super().__init__(config, providers)
        self.calls = 0
        if carried:
            ids = {d.deployment_id for d in config.deployments}
            # Wildcard deployments' states are keyed "<template id>:<model>".
            self._states.update(
                (key, state) for key, state in carried.items() if key in ids or key.partition(":")[0] in ids
            )

    @property
    def states(self) -> Mapping[str, DeploymentState]:
        return self._states

    async def first_success(
        self,
        model: str,
        attempt: Callable[[ResolvedDeployment, Provider], Awaitable[T]],
        record: CallRecord | None = None,
    ) -> T:
        self.calls += 1
        left = False

        def leave(_: CallRecord | None = None) -> None:
            nonlocal left
            if not left:
                left = True
                self.calls -= 1

        try:
            result = await super().first_success(model, attempt, record)
        except BaseException:
            leave()
            raise
        if record is None:
            leave()
        else:
            record.on_end.append(leave)  # also run, with None, if the record is dropped unended
        return result


@dataclass
class Generation:
    number: int
    loaded: LoadedConfig
    router: CountedRouter

    @property
    def providers(self) -> ProviderRegistry:
        return self.router.providers


@dataclass(frozen=True)
class ReloadReport:
    """What a reload did: the admin endpoint's answer, and the log line's content."""

    applied: bool
    message: str  # one line
    generation: int  # the generation serving new calls now
    needs_restart: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "object": "config.reload",
            "applied": self.applied,
            "message": self.message,
            "generation": self.generation,
            "needs_restart": list(self.needs_restart),
            "warnings": list(self.warnings),
            "models": list(self.models),
        }


@dataclass
class Reloader:
    path: Path
    current: Generation
    service: ResponsesService
    on_swap: Callable[[Generation], None] = lambda _: None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _retiring: dict[asyncio.Task[None], Generation] = field(default_factory=dict)

    async def reload(self, source: str) -> ReloadReport:
        """Read, check and apply the config file; `source` ("SIGHUP", "admin API") is for the log.
        Reloads one at a time: a second waits for the first and then reads the file as it is then."""
        async with self._lock:
            try:
                reloaded = await asyncio.to_thread(
                    reload_config, self.path, self.current.loaded, dict(os.environ)
                )
                router = await self._build(reloaded.config)
            except ConfigError as e:
                return self._refused(source, "; ".join(e.problems))
            except GatewayError as e:
                return self._refused(source, e.message)
            except Exception as e:  # a bug must not take the serving config down with it
                log.exception("config reload (%s) failed unexpectedly", source)
                return self._refused(source, f"unexpected error: {e!r}")
            old = self.current
            new = Generation(old.number + 1, reloaded.config, router)
            os.environ.update(reloaded.env_updates)
            # One synchronous step, no await: every call from here on sees the new generation whole.
            self.service.use(router)
            self.current = new
            self.on_swap(new)
            if (
                old.loaded.config.gateway_settings.telemetry != new.loaded.config.gateway_settings.telemetry
                or (
                    old.loaded.config.litellm_settings.callbacks
                    != new.loaded.config.litellm_settings.callbacks
                )
            ):
                telemetry_setup.configure(new.loaded.config)
            self._retire(old)
            return self._applied(source, new, reloaded.needs_restart)

    async def _build(self, loaded: LoadedConfig) -> CountedRouter:
        """The new generation's router; every enabled deployment's provider built now (no I/O: their
        HTTP clients connect on first use)."""
        registry = ProviderRegistry()
        router = CountedRouter(loaded, registry, carried=self.current.router.states)
        try:
            for d in loaded.deployments:
                if d.enabled and not d.is_wildcard:
                    registry.get(d)
        except BaseException:
            await registry.aclose()
            raise
        return router

    def _refused(self, source: str, problem: str) -> ReloadReport:
        problem = " ".join(problem.split())  # one line, whatever the problem text holds
        log.error("config reload (%s) refused, the previous config keeps serving: %s", source, problem)
        metrics.CONFIG_RELOADS.labels("refused").inc()
        metrics.CONFIG_RELOAD_OK.set(0)
        return ReloadReport(False, problem, self.current.number)

    def _applied(self, source: str, new: Generation, needs_restart: tuple[str, ...]) -> ReloadReport:
        models = tuple(new.loaded.model_names())
        message = f"config reloaded from {self.path}: generation {new.number}, {len(models)} models"
        if needs_restart:
            message += f"; needs a restart to take effect: {', '.join(needs_restart)}"
        log.info("%s (%s)", message, source)
        for warning in new.loaded.warnings:
            log.warning("%s", warning)
        metrics.CONFIG_RELOADS.labels("applied").inc()
        metrics.CONFIG_RELOAD_OK.set(1)
        return ReloadReport(True, message, new.number, needs_restart, new.loaded.warnings, models)

    # --- retiring the replaced generation -------------------------------------------------------

    def _retire(self, old: Generation) -> None:
        task = asyncio.create_task(self._close_when_idle(old), name=f"retire-config-{old.number}")
        self._retiring[task] = old
        task.add_done_callback(self._forget)
        metrics.CONFIG_RETIRING.set(len(self._retiring))

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._retiring.pop(task, None)
        metrics.CONFIG_RETIRING.set(len(self._retiring))
        # Next turn: this callback's frame and the task still hold the generation until then.
        asyncio.get_running_loop().call_soon(gc_policy.refreeze)

    async def _close_when_idle(self, old: Generation) -> None:
        # Lookups of ids the gateway never stored use the providers without routing (so they are not
        # counted): they are bounded by native_lookup_timeout_seconds, so that long is waited first.
        await asyncio.sleep(old.loaded.config.gateway_settings.native_lookup_timeout_seconds)
        while old.router.calls > 0:
            await asyncio.sleep(_IDLE_POLL)
        await old.providers.aclose()
        log.info(
            "config generation %d retired: its last call ended, its upstream connections are closed",
            old.number,
        )

    async def aclose(self) -> None:
        """Shutdown (after the drain): close the providers of every generation still retiring."""
        retiring = dict(self._retiring)
        for task in retiring:
            task.cancel()
        await asyncio.gather(*retiring, return_exceptions=True)
        for old in retiring.values():
            await old.providers.aclose()  # a no-op for one its task closed already
