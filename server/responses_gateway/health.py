"""Readiness, as both transports report it: the process's lifecycle and the response store's state.

REST `GET /healthz` and the standard gRPC health service (for "" and every service name) read the
same `Health`: SERVING / 200 while the gateway is started and its store works; NOT_SERVING / 503 with
a reason otherwise. Nothing on the request path waits for it.

How the store's state is known, cheaply:

* A store operation that fails for the store's own reason (`StoreUnavailable`: disk full, I/O error, a
  corrupted, read-only or locked file) marks the store unavailable at once, with that reason.
* `StoreProbe` runs `ResponseStore.probe()` (a read of the schema and a one-row write of a few pages,
  queued on the store's thread like any operation) every `probe_seconds`. A failing probe marks the
  store unavailable too: a disk that filled up or a file that broke while no request came. A passing
  probe marks it available again, but only when no store operation failed since the previous probe,
  so a store that fails under load stays NOT_SERVING instead of flapping on every probe.
* Successful requests never flip it back: a read that works says nothing about the next write.

Start-up checks the file more thoroughly once (`PRAGMA quick_check` in the store's `open`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from responses_gateway.aio import cancel_and_wait
from responses_gateway.store.base import ResponseStore, StoreUnavailable

log = logging.getLogger(__name__)

NOT_STARTED = "the gateway is starting or shutting down"


class Health:
    def __init__(self) -> None:
        self.serving = False  # the lifecycle: set once both servers listen, cleared on shutdown
        self.store_problem: str | None = None
        self._failed_since_probe = False
        self._watchers: list[Callable[[], None]] = []

    @property
    def reason(self) -> str | None:
        """Why the gateway is not ready, or None when it is."""
        if self.store_problem is not None:
            return self.store_problem
        return None if self.serving else NOT_STARTED

    def watch(self, callback: Callable[[], None]) -> None:
        """Call `callback` (on the event loop) whenever `reason` may have changed."""
        self._watchers.append(callback)

    def set_serving(self, serving: bool) -> None:
        if serving != self.serving:
            self.serving = serving
            self._changed()

    def store_failed(self, error: StoreUnavailable) -> None:
        self._failed_since_probe = True
        if error.message != self.store_problem:
            if self.store_problem is None:
                log.warning("%s Health checks say NOT_SERVING until it recovers.", error.message)
            self.store_problem = error.message
            self._changed()

    def store_probe_passed(self) -> None:
        failed, self._failed_since_probe = self._failed_since_probe, False
        if self.store_problem is not None and not failed:
            log.info("The response store works again; health checks say SERVING.")
            self.store_problem = None
            self._changed()

    def _changed(self) -> None:
        for callback in self._watchers:
            callback()


class StoreProbe:
    """Probes the store every `interval` seconds in a task of its own and tells `health`."""

    def __init__(self, store: ResponseStore, health: Health, interval: float) -> None:
        self.store = store
        self.health = health
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="store-probe")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def check(self) -> None:
        try:
            await self.store.probe()
        except StoreUnavailable as e:
            self.health.store_failed(e)
        else:
            self.health.store_probe_passed()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:
                # A bug in a probe must not end the probing (health would then never recover).
                log.exception("store probe failed unexpectedly")
