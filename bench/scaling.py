"""The multi-worker scaling line: REST unary throughput at concurrency 16 through `serve --workers 1`
and `serve --workers 2` (SQLite store on, no CPU pinning: the kernel spreads the workers), and the
ratio. The target (issue 13) is >= 1.8x with two workers on two cores of their own; on a machine
whose cores the load generator and the upstream share with the gateway, the ratio says less."""

from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path

import orjson

from bench import load, procs


async def _throughput(http_port: int, model: str, requests: int, concurrency: int, budget: float) -> float:
    url = f"http://127.0.0.1:{http_port}/v1/responses"
    # More connections than concurrent calls: each opens its own, which SO_REUSEPORT spreads.
    client = load.http_client()
    body = orjson.dumps({"model": model, "input": "Say hello."})
    try:
        call = load.rest_call(client, url, body, stream=False)
        await load.run(call, max(50, requests // 5), concurrency, budget / 4)
        gc.collect()
        samples = await load.run(call, requests, concurrency, budget)
        return samples.rps
    finally:
        await client.aclose()


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
    rps: dict[int, float] = {}
    for workers in (1, 2):
        gateway = procs.start_gateway(None, config, workdir, None, workers=workers)
        try:
            rps[workers] = asyncio.run(_throughput(gateway.ports[1], model, requests, concurrency, budget))
        finally:
            procs.stop(gateway)
    ratio = rps[2] / rps[1] if rps[1] else 0.0
    return (
        f"multi-worker scaling (REST unary, c={concurrency}, SQLite): 1 worker {rps[1]:,.0f} rps, "
        f"2 workers {rps[2]:,.0f} rps, ratio {ratio:.2f}x (target >= 1.8x with 2 cores for the gateway; "
        f"this machine: {len(os.sched_getaffinity(0))} CPUs shared with the load generator and upstream)"
    )
