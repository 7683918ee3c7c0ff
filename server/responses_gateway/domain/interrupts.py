"""Responses in flight in this process, so that a shutdown can end each of them properly.

On SIGTERM the transports stop taking calls and in-flight ones get the grace period. A stream that
would outlive it is interrupted shortly before the end: it ends with a terminal `response.failed`
that the store records, rather than being cut with no terminal event and left `in_progress` (the
store used to close before the recorders wrote).

An interruption cancels the run's task only while that task waits on its upstream, so the
cancellation lands in the upstream read and nowhere else; a run busy sending to its client sees the
flag after the send.
"""

from __future__ import annotations

import asyncio
import contextlib

SHUTDOWN_MESSAGE = "The gateway shut down before the response was complete."


class RunHandle:
    def __init__(self) -> None:
        self.reason: str | None = None
        # A client's cancel (the response ends `cancelled`) rather than a shutdown (it ends `failed`).
        self.cancelled = False
        # The task, while it waits for the upstream's next event (else None).
        self.waiting: asyncio.Task[object] | None = None

    def interrupt(self, reason: str, *, cancel: bool = False) -> None:
        if self.reason is not None:
            return
        self.reason, self.cancelled = reason, cancel
        if self.waiting is not None:
            self.waiting.cancel()

    def take_cancel(self) -> bool:
        """After a CancelledError: True when it was this handle's interruption (now absorbed)."""
        task = asyncio.current_task()
        if self.reason is None or task is None:
            return False
        task.uncancel()
        return True


class Interrupts:
    def __init__(self) -> None:
        self._runs: set[RunHandle] = set()
        self._writes: set[asyncio.Future[None]] = set()
        self._changed = asyncio.Event()
        self.closing: str | None = None

    def open(self, handle: RunHandle) -> RunHandle:
        """Count `handle`'s run as in flight (a run shutting down already is told at once)."""
        if self.closing is not None:
            handle.interrupt(self.closing)
        self._runs.add(handle)
        return handle

    def close(self, handle: RunHandle) -> None:
        self._runs.discard(handle)
        self._changed.set()

    def keep(self, write: asyncio.Future[None]) -> asyncio.Future[None]:
        """A store write that must land before the store closes, even if its caller was cancelled."""
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        return write

    @property
    def busy(self) -> bool:
        return bool(self._runs or self._writes)

    async def wait_idle(self, seconds: float) -> bool:
        """Until no run is in flight and every kept write has landed, or `seconds` passed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                while self._runs:
                    self._changed.clear()
                    await self._changed.wait()
                if self._writes:
                    await asyncio.wait(list(self._writes))
        return not self.busy

    def interrupt_all(self, reason: str = SHUTDOWN_MESSAGE) -> None:
        self.closing = reason
        for handle in list(self._runs):
            handle.interrupt(reason)
