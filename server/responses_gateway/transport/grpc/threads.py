"""grpc.aio's own threads give way to the event loop's (Linux; elsewhere nothing changes).

grpc.aio runs two kinds of threads beside the loop: a poller, which takes each completion from gRPC
core's queue and wakes the loop for it (one byte on a socket per completion), and gRPC core's
EventEngine threads, which do the sockets' reads and writes. At their default policy their wake-ups
preempted the loop thread ~8 times per unary call when they shared a core, and the loop then
handled one completion per turn. Under SCHED_IDLE their wake-ups never preempt a normal thread,
they run while the loop waits, completions queue up meanwhile, and the kernel counts a CPU that runs
only them as idle when it places the loop thread. They still run whenever the loop waits for
anything, and the loop waits for them whenever it has no work, so they are not starved. Chosen by
measurement (`make bench`'s saturated lines, and p99 at saturation) over nice 19, and over a poller
at a normal thread's weight, which cut CPU per call further but doubled p99.

On Linux the scheduling policy is a thread's own (sched_setscheduler on a thread id): the loop
thread, and every other thread of the process, keep theirs. EventEngine grows its pool now and
then, so the threads are looked for again every `_RESCAN_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from pathlib import Path

from responses_gateway.aio import cancel_and_wait

log = logging.getLogger(__name__)

IO_THREAD_POLICY: int = getattr(os, "SCHED_IDLE", -1)  # Linux only; `lower` does nothing elsewhere
_RESCAN_SECONDS = 30.0
# Names gRPC gives its threads: core's EventEngine pool names them itself; the poller is a Python
# thread, named after its target by `threading` (grpc/_cython/_cygrpc/aio/completion_queue.pyx.pxi).
_EVENT_ENGINE = "event_engine"
_POLLER_TARGET = "(_poll_wrapper)"
_TASKS = Path("/proc/self/task")


def grpc_io_threads() -> set[int]:
    """The native ids of grpc.aio's poller and EventEngine threads running now."""
    found = {t.native_id for t in threading.enumerate() if t.name.endswith(_POLLER_TARGET) and t.native_id}
    with contextlib.suppress(OSError):
        for task in _TASKS.iterdir():
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                if (task / "comm").read_text().startswith(_EVENT_ENGINE):
                    found.add(int(task.name))
    return found


class IoThreads:
    """Lowers grpc.aio's I/O threads (those of the server started before `start`) and keeps
    lowering the ones gRPC starts later, until `stop`."""

    def __init__(self, rescan_seconds: float = _RESCAN_SECONDS) -> None:
        self.lowered: set[int] = set()
        self._rescan = rescan_seconds
        self._task: asyncio.Task[None] | None = None

    def lower(self) -> None:
        if sys.platform != "linux":
            return
        running = grpc_io_threads()
        self.lowered &= running  # an id that ended may be reused
        for tid in running - self.lowered:
            try:
                os.sched_setscheduler(tid, IO_THREAD_POLICY, os.sched_param(0))
            except OSError as e:  # ended meanwhile; or a sandbox that forbids it: they run as before
                log.debug("cannot lower gRPC thread %d: %s", tid, e)
                continue
            self.lowered.add(tid)

    def start(self) -> None:
        self.lower()
        self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._rescan)
            self.lower()

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
