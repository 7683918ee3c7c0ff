"""bench/procs' reading of /proc/stat: steal (the hypervisor running another machine on the vCPU) is
not counted as busy, since no process of this machine used it; it is read on its own. And a main
thread's CPU and waits (voluntary switches), as the saturated lines split a gateway's CPU by thread."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench import load, procs

STAT = """cpu  300 0 60 480 6 0 14 29 0 0
cpu0 100 5 20 300 4 1 3 19 0 0
cpu1 200 0 40 180 2 0 11 10 7 0
intr 12345 0 0
"""


def test_busy_leaves_out_idle_iowait_and_steal_which_is_read_apart(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(STAT)
    hz = os.sysconf("SC_CLK_TCK")
    # cpu0: user nice system irq softirq; guest (7 on cpu1) is inside user already and not added
    assert procs.cpu_ticks({0}, stat) == ((100 + 5 + 20 + 1 + 3) / hz, 19 / hz)
    assert procs.cpu_ticks({0, 1}, stat) == ((129 + 200 + 40 + 11) / hz, 29 / hz)
    assert procs.cpu_ticks({5}, stat) == (0.0, 0.0)  # a CPU the file does not list


def test_the_live_readings_only_grow() -> None:
    cpus = procs.all_cpus()
    before = procs.cpu_ticks(cpus)
    sum(i * i for i in range(200_000))  # some CPU time, so busy has something to count
    after = procs.cpu_ticks(cpus)
    assert after[0] >= before[0] > 0 and after[1] >= before[1] >= 0


def test_the_main_thread_reading_counts_its_cpu_and_its_waits() -> None:
    me = os.getpid()
    cpu, waits = load.cpu_seconds(me, me), procs.loop_waits(me)
    time.sleep(0.01)  # blocks: one voluntary switch at least
    sum(i * i for i in range(2_000_000))  # and some CPU time, more than a clock tick of it
    after_cpu, after_waits = load.cpu_seconds(me, me), procs.loop_waits(me)
    assert after_waits > waits >= 0 and after_cpu > cpu >= 0
    # A thread's CPU is part of its process's.
    assert after_cpu <= load.cpu_seconds(me)
