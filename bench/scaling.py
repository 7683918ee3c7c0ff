"""The multi-worker scaling line: REST unary throughput at concurrency 16 through `serve --workers 1`
and `serve --workers 2` (SQLite store on), and the ratio. The target (issue 13) is >= 1.8x with two
workers on two cores of their own.

On a 2-core machine the gateway cannot have two cores of its own: the load generator and the upstream
need some too. So both are made cheap: the load comes from `bench/loadgen` (Go, one keep-alive
connection per concurrent call, so SO_REUSEPORT spreads them over the workers), built here once per
run; the upstream is the Python fast upstream, started by this line so it can read its CPU (a Go one
was tried: no cheaper per request at these rates). Only without `go` does the line fall back to the
Python load generator in this process (~0.9 core of its own), and says so.

Every process here gets every CPU the machine allows as its affinity: `python -m bench` pins itself
to CPU 0, and a child would inherit that, so "2 workers" would share one core. The line prints, per
worker count, the gateway's CPU per request summed over its workers (`/proc/<pid>/stat`; roughly
constant when the gateway scales and only the box runs out of cores), how the workers split it, and
the cores the gateway, the load generator, the upstream and anything else (another job on the machine)
kept busy, and those the hypervisor took from the CPUs (steal: another machine's turn)."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench import load, procs

Mark = Callable[[], None]  # called once the timed phase starts (after the warm-up)


@dataclass
class Timed:
    """The load generator's account of its timed phase."""

    requests: int  # answered with 200
    errors: int
    first_error: str
    wall: float
    load_cpu: float  # seconds, the load generator's own


# (url, body, requests, concurrency, budget, mark) -> the timed phase's account
Load = Callable[[str, bytes, int, int, float, Mark], Timed]


@dataclass
class Measured:
    """One worker count's timed run: what it did and the CPU it took (seconds)."""

    workers: int
    timed: Timed
    gateway_cpu: list[float]  # per worker
    upstream_cpu: float
    busy: float  # seconds the CPUs were busy, whoever used them
    steal: float  # seconds the hypervisor took from them (procs.cpu_ticks)

    def cores(self, seconds: float) -> float:
        return seconds / self.timed.wall if self.timed.wall > 0 else 0.0

    @property
    def rps(self) -> float:
        return self.cores(self.timed.requests)

    @property
    def per_request(self) -> float:
        return sum(self.gateway_cpu) / self.timed.requests if self.timed.requests else 0.0


def _go_load(binary: Path) -> Load:
    def measure(url: str, body: bytes, requests: int, concurrency: int, budget: float, mark: Mark) -> Timed:
        argv = [str(binary), "-url", url, "-body", body.decode(), "-n", str(requests)]
        argv += ["-c", str(concurrency), "-duration", f"{budget}s", "-warmup", str(max(50, requests // 5))]
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=procs.pinning(procs.all_cpus()),
        )
        assert proc.stderr is not None
        for line in proc.stderr:
            if "timed phase starts" in line:
                mark()
                break
        out, err = proc.communicate(timeout=budget * 2 + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"bench/loadgen exited {proc.returncode}: {err}")
        r = orjson.loads(out.splitlines()[-1])
        ok = r["requests"] - r["errors"]
        return Timed(ok, r["errors"], r["first_error"], r["wall_s"], r["cpu_s"])

    return measure


def _python_load(url: str, body: bytes, requests: int, concurrency: int, budget: float, mark: Mark) -> Timed:
    async def measure() -> Timed:
        client = load.http_client()  # more connections than calls: each call has its own
        me = os.getpid()
        try:
            call = load.rest_call(client, url, body, stream=False)
            await load.run(call, max(50, requests // 5), concurrency, budget / 4)
            gc.collect()
            mark()
            cpu = load.cpu_seconds(me)
            samples = await load.run(call, requests, concurrency, budget)
            load_cpu = load.cpu_seconds(me) - cpu
        finally:
            await client.aclose()
        n = len(samples.latencies)
        return Timed(n, samples.errors, samples.first_error, samples.wall, load_cpu)

    return asyncio.run(measure())


def _cpu_list(cpus: Iterable[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def _line(m: Measured) -> str:
    split = ""
    if m.workers > 1:
        total = sum(m.gateway_cpu) or 1.0
        share = "/".join(f"{c / total:.0%}" for c in m.gateway_cpu)
        split = f" summed over both workers (split {share})"
    t = m.timed
    others = m.busy - sum(m.gateway_cpu) - t.load_cpu - m.upstream_cpu
    errors = f", {t.errors} errors (first: {t.first_error})" if t.errors else ""
    return (
        f"  {m.workers} worker{'s' if m.workers > 1 else ' '}: {m.rps:,.0f} rps, "
        f"gateway CPU {m.per_request * 1000:.3f} ms/request{split}; busy cores: "
        f"gateway {m.cores(sum(m.gateway_cpu)):.2f}, load generator {m.cores(t.load_cpu):.2f}, "
        f"upstream {m.cores(m.upstream_cpu):.2f}, other processes {m.cores(max(0.0, others)):.2f}; "
        f"taken by the host (steal) {m.cores(m.steal):.2f}{errors}"
    )


def _workers(
    workers: int,
    config: Path,
    workdir: Path,
    upstream: procs.Proc,
    cpus: set[int],
    measure: Load,
    body: bytes,
    requests: int,
    concurrency: int,
    budget: float,
) -> Measured:
    gateway = procs.start_gateway(procs.all_cpus(), config, workdir, None, workers=workers)
    try:
        watched = [*procs.worker_pids(gateway, workers), upstream.pid]

        def readings() -> list[float]:
            return [*(load.cpu_seconds(p) for p in watched), *procs.cpu_ticks(cpus)]

        before: list[float] = []
        url = f"http://127.0.0.1:{gateway.ports[1]}/v1/responses"
        timed = measure(url, body, requests, concurrency, budget, lambda: before.extend(readings()))
        after = readings()
    finally:
        procs.stop(gateway)
    *gateway_cpu, upstream_cpu, busy, steal = (a - b for a, b in zip(after, before, strict=True))
    return Measured(workers, timed, gateway_cpu, upstream_cpu, busy, steal)


def run(
    upstream_port: int,
    workdir: Path,
    model: str,
    *,
    requests: int,
    concurrency: int = 16,
    budget: float = 8.0,
) -> str:
    """`upstream_port` is the bench's own upstream, which is pinned to CPU 0 and whose pid is not known
    here: this line starts an upstream of its own instead, so it can read its CPU."""
    del upstream_port
    measure: Load = _python_load
    load_name = "Python httpx in this process (`go` not found: its ~0.9 core competes with the gateway)"
    if shutil.which("go"):
        measure = _go_load(procs.go_build("loadgen", workdir / "loadgen"))
        load_name = "Go bench/loadgen, one keep-alive connection per call"
    upstream = procs.start_upstream(procs.all_cpus(), 20, workdir)
    try:
        config = procs.write_config(workdir, upstream.ports[0], model)
        cpus = os.sched_getaffinity(upstream.pid)  # what the kernel granted: the cpuset narrows it
        body = orjson.dumps({"model": model, "input": "Say hello."})
        one, two = (
            _workers(w, config, workdir, upstream, cpus, measure, body, requests, concurrency, budget)
            for w in (1, 2)
        )
    finally:
        procs.stop(upstream)
    ratio = two.rps / one.rps if one.rps else 0.0
    cpu_ratio = two.per_request / one.per_request if one.per_request else 0.0
    # What the 2-worker run left the gateway, over what one worker used: the ratio this box can show.
    left = len(cpus) - two.cores(two.busy - sum(two.gateway_cpu) + two.steal)
    ceiling = left / one.cores(sum(one.gateway_cpu)) if one.gateway_cpu[0] > 0 else 0.0
    return "\n".join(
        [
            f"multi-worker scaling (REST unary, c={concurrency}, SQLite; load: {load_name}; upstream: "
            f"the Python fast upstream; gateway, load generator and upstream all on CPUs {_cpu_list(cpus)}, "
            "all this machine allows):",
            _line(one),
            _line(two),
            f"  ratio {ratio:.2f}x (target >= 1.8x with 2 cores for the gateway alone); gateway CPU per "
            f"request 2 vs 1 workers {cpu_ratio:.2f}x: near 1 with rps not doubling means the cores ran "
            "out (contention), not that the workers got slower",
            f"  with 2 workers everything else left the gateway {left:.2f} of {len(cpus)} cores, against "
            f"the {one.cores(sum(one.gateway_cpu)):.2f} one worker used: the most this box could show "
            f"was ~{ceiling:.2f}x",
        ]
    )
