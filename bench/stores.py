"""The response store's cost: the same REST calls through a gateway on each store backend.

For each backend (SQLite, PostgreSQL, Redis; servers started on loopback as the tests start them) a
gateway serves unary calls and short and long streams at concurrency 1, with the store on, and once
with `store: false` (no store operation at all): the store's cost per request is the difference in p50
latency and in gateway CPU from that baseline. Its cost per event is the per-event slope between the
short and the long stream, which must not depend on the backend: nothing on the path of a delta
waits for the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench import load, procs
from bench.load import Samples, percentile


@dataclass
class StoreRow:
    backend: str
    unary: Samples
    short: Samples
    long: Samples


def _store_yaml(backend: str, workdir: Path, url: str | None) -> str:
    if backend == "sqlite":
        return f"    type: sqlite\n    path: {workdir / 'bench-store.sqlite3'}\n"
    return f"    type: {backend}\n    url: {url}\n"


@contextlib.contextmanager
def _servers(backends: list[str], cpu: int | None) -> Iterator[dict[str, str]]:
    """The database servers these backends need, each with an empty database; pinned to `cpu` (the
    load generator's, idle at c=1 while a call is in flight), so they stand for a store on another
    machine rather than taking the gateway's CPU."""
    from tests.support.servers import new_database, postgres_server, redis_server

    with contextlib.ExitStack() as stack:
        urls: dict[str, str] = {}
        for backend, start in (("postgres", postgres_server), ("redis", redis_server)):
            if backend in backends:
                server = stack.enter_context(start())
                if cpu is not None:
                    _pin_tree(server.proc.pid, cpu)
                urls[backend] = new_database(server)
        yield urls


def _pin_tree(pid: int, cpu: int) -> None:
    """Pin a server and the processes it already forked (later ones inherit it)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    for p in pids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(p, {cpu})


async def _measure(
    http_port: int, pid: int, model: str, requests: int, long_deltas: int, *, store: bool
) -> tuple[Samples, Samples, Samples]:
    url = f"http://127.0.0.1:{http_port}/v1/responses"
    client = load.http_client()

    def body(stream: bool, deltas: int | None = None) -> bytes:
        b: dict[str, object] = {"model": model, "input": "Say hello.", "store": store}
        if stream:
            b["stream"] = True
        if deltas is not None:
            b["metadata"] = {"bench_deltas": str(deltas)}
        return orjson.dumps(b)

    async def one(payload: bytes, stream: bool, n: int) -> Samples:
        call = load.rest_call(client, url, payload, stream=stream)
        await load.run(call, max(20, n // 5), 1)
        gc.collect()
        cpu = load.cpu_seconds(pid)
        samples = await load.run(call, n, 1)
        samples.cpu = (load.cpu_seconds(pid) - cpu) / max(1, len(samples.latencies))
        return samples

    try:
        unary = await one(body(False), False, requests)
        short = await one(body(True), True, requests // 2)
        long = await one(body(True, long_deltas), True, requests // 2)
        return unary, short, long
    finally:
        await client.aclose()


def run(
    upstream_port: int,
    workdir: Path,
    model: str,
    *,
    backends: list[str],
    requests: int,
    long_deltas: int,
    cpu: int | None,
    load_cpu: int | None,
) -> list[StoreRow]:
    rows: list[StoreRow] = []
    with _servers(backends, load_cpu) as urls:
        for backend in ["none", *backends]:
            store = "sqlite" if backend == "none" else backend
            config = workdir / f"gateway-{backend}.yaml"
            base = procs.write_config(workdir, upstream_port, model).read_text()
            head = base.split("gateway_settings:")[0]
            config.write_text(
                f"{head}gateway_settings:\n  store:\n{_store_yaml(store, workdir, urls.get(store))}"
            )
            gateway = procs.start_gateway(cpu, config, workdir, None)
            try:
                measured = asyncio.run(
                    _measure(
                        gateway.ports[1], gateway.pid, model, requests, long_deltas, store=backend != "none"
                    )
                )
            finally:
                procs.stop(gateway)
            rows.append(StoreRow(backend, *measured))
    return rows


def report(rows: list[StoreRow], short_deltas: int, long_deltas: int) -> str:
    base = rows[0]
    sqlite = next((r for r in rows if r.backend == "sqlite"), base)

    def p50(s: Samples) -> float:
        return percentile(s.latencies, 50)

    def per_event(row: StoreRow, what: str) -> float:
        extra = (row.long.events and sum(row.long.events) / len(row.long.events)) or long_deltas
        fewer = (row.short.events and sum(row.short.events) / len(row.short.events)) or short_deltas
        if what == "cpu":
            return (row.long.cpu - row.short.cpu) / max(1.0, extra - fewer)
        return (p50(row.long) - p50(row.short)) / max(1.0, extra - fewer)

    lines = [
        "store backend | unary p50 | store +p50 | vs sqlite | gw CPU/req | store +CPU | stream p50 | per event p50"
        " | per event CPU",
        "------------- | --------- | ---------- | --------- | ---------- | ---------- | ---------- | -------------"
        " | -------------",
    ]
    for row in rows:
        name = "store: false" if row.backend == "none" else row.backend
        errors = row.unary.errors + row.short.errors + row.long.errors
        lines.append(
            f"{name:<13} | {p50(row.unary) * 1e3:7.3f}ms | {(p50(row.unary) - p50(base.unary)) * 1e3:+8.3f}ms"
            f" | {(p50(row.unary) - p50(sqlite.unary)) * 1e3:+7.3f}ms"
            f" | {row.unary.cpu * 1e3:8.3f}ms | {(row.unary.cpu - base.unary.cpu) * 1e3:+8.3f}ms"
            f" | {p50(row.short) * 1e3:8.3f}ms | {per_event(row, 'latency') * 1e6:9.1f} µs"
            f" | {per_event(row, 'cpu') * 1e6:9.1f} µs" + (f"  ({errors} errors)" if errors else "")
        )
    return "\n".join(lines)
