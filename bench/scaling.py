"""The multi-worker scaling line: REST unary throughput at concurrency 16 through `serve --workers 1`
and `serve --workers 2` (SQLite store on), and the ratio. The target (issue 13) is >= 1.8x with two
workers on two cores of their own.

The gateways get every CPU the machine allows as their affinity: `python -m bench` pins itself (the
load generator) to CPU 0, and a child would inherit that, so "2 workers" would share one core. The
load generator and the fast upstream keep their own affinity, so on a 2-core machine all three compete
for the same cores; rps alone cannot tell scaling from contention. So the line also prints, per worker
count, the gateway's CPU per request summed over its workers (`/proc/<pid>/stat`; roughly constant when
the gateway scales and only the box runs out of cores), the cores the gateway, the load generator and
everything together kept busy, and the CPUs each of them had."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench import load, procs


@dataclass
class Measured:
    """One worker count's timed run (after warm-up): what it did and the CPU it took."""

    workers: int
    requests: int
    errors: int
    wall: float
    gateway_cpu: float  # seconds, summed over the workers
    load_cpu: float  # seconds, this process (the load generator)
    busy: float  # seconds the gateway's CPUs were busy, whoever used them

    @property
    def rps(self) -> float:
        return self.requests / self.wall if self.wall > 0 else 0.0

    def cores(self, seconds: float) -> float:
        return seconds / self.wall if self.wall > 0 else 0.0


def _cpu(pids: list[int]) -> float:
    return sum(load.cpu_seconds(pid) for pid in pids)


async def _measure(
    http_port: int,
    pids: list[int],
    cpus: set[int],
    model: str,
    requests: int,
    concurrency: int,
    budget: float,
) -> tuple[load.Samples, float, float, float]:
    url = f"http://127.0.0.1:{http_port}/v1/responses"
    # More connections than concurrent calls: each opens its own, which SO_REUSEPORT spreads.
    client = load.http_client()
    body = orjson.dumps({"model": model, "input": "Say hello."})
    me = os.getpid()
    try:
        call = load.rest_call(client, url, body, stream=False)
        await load.run(call, max(50, requests // 5), concurrency, budget / 4)
        gc.collect()
        before = (_cpu(pids), load.cpu_seconds(me), procs.busy_seconds(cpus))
        samples = await load.run(call, requests, concurrency, budget)
        after = (_cpu(pids), load.cpu_seconds(me), procs.busy_seconds(cpus))
        gateway, load_cpu, busy = (a - b for a, b in zip(after, before, strict=True))
        return samples, gateway, load_cpu, busy
    finally:
        await client.aclose()


def _cpu_list(cpus: Iterable[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def _line(m: Measured) -> str:
    per_request = m.gateway_cpu / m.requests * 1000 if m.requests else float("nan")
    summed = " summed over both workers" if m.workers > 1 else ""
    errors = f", {m.errors} errors" if m.errors else ""
    return (
        f"  {m.workers} worker{'s' if m.workers > 1 else ' '}: {m.rps:,.0f} rps, "
        f"gateway CPU {per_request:.3f} ms/request{summed}; busy cores: gateway {m.cores(m.gateway_cpu):.2f}, "
        f"load generator {m.cores(m.load_cpu):.2f}, everything on those CPUs {m.cores(m.busy):.2f}{errors}"
    )


def run(
    upstream_port: int,
    workdir: Path,
    model: str,
    *,
    requests: int,
    concurrency: int = 16,
    budget: float = 8.0,
) -> str:
    config = procs.write_config(workdir, upstream_port, model)
    measured: list[Measured] = []
    gateway_cpus: set[int] = set()
    for workers in (1, 2):
        gateway = procs.start_gateway(procs.all_cpus(), config, workdir, None, workers=workers)
        try:
            # What the kernel granted (the cpuset narrows what we asked for); the workers inherit it.
            gateway_cpus = os.sched_getaffinity(gateway.pid)
            pids = procs.worker_pids(gateway, workers)
            samples, gateway_cpu, load_cpu, busy = asyncio.run(
                _measure(gateway.ports[1], pids, gateway_cpus, model, requests, concurrency, budget)
            )
            n = len(samples.latencies)
            measured.append(Measured(workers, n, samples.errors, samples.wall, gateway_cpu, load_cpu, busy))
        finally:
            procs.stop(gateway)
    one, two = measured
    ratio = two.rps / one.rps if one.rps else 0.0
    per_request = [m.gateway_cpu / m.requests if m.requests else 0.0 for m in measured]
    cpu_ratio = per_request[1] / per_request[0] if per_request[0] else 0.0
    return "\n".join(
        [
            f"multi-worker scaling (REST unary, c={concurrency}, SQLite; the gateways on CPUs "
            f"{_cpu_list(gateway_cpus)}, all this machine allows; the load generator on CPUs "
            f"{_cpu_list(os.sched_getaffinity(0))}, the fast upstream where `python -m bench` put it; "
            f"{len(gateway_cpus)} CPUs in all, shared by the three):",
            _line(one),
            _line(two),
            f"  ratio {ratio:.2f}x (target >= 1.8x with 2 cores for the gateway alone); gateway CPU per "
            f"request 2 vs 1 workers {cpu_ratio:.2f}x: near 1 with rps not doubling means the cores ran "
            "out (contention), not that the workers got slower",
        ]
    )
