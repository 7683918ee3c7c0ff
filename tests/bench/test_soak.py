"""`python -m bench.soak` end to end, for a few seconds: the real fast upstream, a real `serve --workers 2`
and the load generator in a subprocess, as `make bench-soak` runs them. The report names both workers,
gives each one's RSS at the three points and its fds back at their count; a worker killed mid-run makes
the soak fail. No timing is asserted: the figures depend on the machine."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from tests.support.process import REPO, clean_env

SHORT = ["--seconds", "6", "--interval", "2", "--warmup", "2", "--streams", "4", "--grpc-streams", "1"]
_WORKERS = re.compile(r"supervisor pid (\d+), workers (\d+), (\d+);")


def soak(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.soak", *args],
        cwd=REPO,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def workers_from(line: str) -> list[int]:
    match = _WORKERS.search(line)
    assert match, line
    return [int(match.group(2)), int(match.group(3))]


def test_a_short_soak_reports_rss_and_fds_per_worker() -> None:
    proc = soak(*SHORT)
    out, _ = proc.communicate(timeout=100)
    assert proc.returncode == 0, out
    workers = workers_from(out)
    answered = 0  # REST requests the workers answered, by the last progress line
    for pid in workers:
        progress = re.findall(
            rf"\] worker {pid}: RSS +([\d.]+) MB, fds +(\d+) .*REST requests +([\d,]*\d)", out
        )
        assert len(progress) >= 2, out  # at the start, and at least once under load
        assert all(float(rss) > 0 and int(n) > 0 for rss, n, _ in progress)
        # Which worker the kernel gives the 4 connections is its choice: only the sum is asserted.
        answered += int(progress[-1][2].replace(",", ""))
        summary = re.search(
            rf"worker {pid}: after start \(before load\) +([\d.]+) MB, after warm-up +([\d.]+) MB, "
            rf"at the end +([\d.]+) MB .*warm-up -> end ([+-][\d.]+)%",
            out,
        )
        assert summary, out
        assert all(float(v) > 0 for v in summary.groups()[:3])
        fds = re.search(
            rf"worker {pid}: fds (\d+) / (\d+) / (\d+) / (\d+) = (\d+) \+ (\d+) idle upstream \+ 0 client connections: back\b",
            out,
        )
        assert fds, out
        start, primed, end, after, own, upstream = (int(v) for v in fds.groups())
        # Back: no more than after the first request besides the upstream pool, which stays within the
        # calls in flight at once (4 REST + 1 gRPC): the connections add up, and nothing grew.
        assert after == own + upstream and own <= primed and upstream <= 5 and start <= primed
        assert end >= after  # under load it held the client connections too
    completed = re.search(r"requests: ([\d,]+) completed \(([\d,]+) over gRPC\), 0 errors", out)
    assert completed, out
    total, over_grpc = (int(v.replace(",", "")) for v in completed.groups())
    # The requests still in flight at the last line completed after it; none was counted twice.
    assert over_grpc > 0 and 0 < answered <= total - over_grpc, out


def test_a_worker_that_dies_fails_the_soak() -> None:
    proc = soak("--seconds", "60", "--interval", "2", "--streams", "4", "--grpc-streams", "0")
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "] worker " in line:  # the load is about to start: both workers serve
            break
    victim = workers_from("".join(lines))[0]
    time.sleep(1)
    os.kill(victim, signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    out = "".join(lines) + out
    assert proc.returncode == 2, out
    assert "GATEWAY DIED" in out and str(victim) in out.split("GATEWAY DIED", 1)[1], out
