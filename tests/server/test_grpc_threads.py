"""grpc.aio's poller and EventEngine threads run at a lower priority than the gateway's event loop
(transport/grpc/threads.py, SCHED_IDLE), seen from outside the gateway process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from responses_gateway.transport.grpc.threads import IO_THREAD_POLICY
from responses_gateway.v1 import models_pb2

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread scheduling policies are Linux's")


def _threads(pid: int) -> dict[int, tuple[str, int]]:
    """tid -> (name, scheduling policy) of each thread of `pid`."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        tid = int(task.name)
        found[tid] = ((task / "comm").read_text().strip(), os.sched_getscheduler(tid))
    return found


def test_grpc_io_threads_run_below_the_event_loop(gateway, models_stub):
    models_stub.ListModels(models_pb2.ListModelsRequest(), timeout=10)  # a call served: threads busy
    assert gateway.proc is not None
    pid = gateway.proc.pid
    threads = _threads(pid)
    lowered = {tid: name for tid, (name, policy) in threads.items() if policy == IO_THREAD_POLICY}
    # The loop thread is the process's main thread: it keeps the policy it started with.
    assert threads[pid][1] == os.SCHED_OTHER
    # Every EventEngine thread is lowered, and so is the completion-queue poller, a Python thread
    # whose OS-level name is the interpreter's: it is the one lowered thread that is not event_engine,
    # so no other thread (the store's, the REST shim's) was touched.
    engine = [tid for tid, (name, _) in threads.items() if name.startswith("event_engine")]
    assert engine and all(tid in lowered for tid in engine)
    others = [tid for tid, name in lowered.items() if not name.startswith("event_engine")]
    assert len(others) == 1 and others[0] != pid
