"""grpc.aio's poller and EventEngine threads run at a lower priority than the gateway's event loop
(transport/grpc/threads.py), seen from outside the gateway process in /proc."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from responses_gateway.transport.grpc.threads import IO_THREAD_NICE
from responses_gateway.v1 import models_pb2

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")


def _threads(pid: int) -> dict[int, tuple[str, int]]:
    """tid -> (name, nice) of each thread of `pid`."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        stat = (task / "stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(task.name)] = ((task / "comm").read_text().strip(), int(fields[16]))  # field 19
    return found


def test_grpc_io_threads_run_below_the_event_loop(gateway, models_stub):
    models_stub.ListModels(models_pb2.ListModelsRequest(), timeout=10)  # a call served: threads busy
    assert gateway.proc is not None
    pid = gateway.proc.pid
    threads = _threads(pid)
    lowered = {tid: name for tid, (name, nice) in threads.items() if nice == IO_THREAD_NICE}
    # The loop thread is the process's main thread: it keeps the priority it started with.
    assert threads[pid][1] == 0
    # Every EventEngine thread is lowered, and so is the completion-queue poller, a Python thread
    # whose OS-level name is the interpreter's: it is the one lowered thread that is not event_engine,
    # so no other thread (the store's, the REST shim's) was touched.
    engine = [tid for tid, (name, _) in threads.items() if name.startswith("event_engine")]
    assert engine and all(tid in lowered for tid in engine)
    others = [tid for tid, name in lowered.items() if not name.startswith("event_engine")]
    assert len(others) == 1 and others[0] != pid
