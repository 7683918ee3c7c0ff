"""`python -m bench`: the same requests direct to a fast loopback upstream and through the gateway.

Starts `bench.fast_upstream` and the gateway (`responses_gateway.cli serve`, SQLite store on) as separate
processes, then drives them from this one: REST and gRPC, unary and streaming, concurrency 1 and 16.
Prints per scenario p50/p99 latency, the latency the gateway adds over the direct call in the same mode
and concurrency (gRPC is compared with the direct REST call, which is what a client would otherwise
do), TTFB and requests per second; then the cost per streamed event, from a short and a long stream.
Unary scenarios also go through `bench.floor_proxy`, the least a proxy can add on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench import accounting, codec_calls, keys, load, procs, reference, saturated, scaling, stores
from bench.load import Call, Samples
from bench.report import Row, per_event, table
from responses_gateway import codec
from responses_gateway.v1 import request_pb2

MODEL = "bench-gpt"
UPSTREAM_MODEL = "gpt-4.1"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--requests-c1", type=int, default=300, help="requests per scenario at concurrency 1")
    p.add_argument("--requests-c16", type=int, default=1000, help="requests per scenario at concurrency 16")
    p.add_argument("--concurrency", type=int, default=16, help="the higher concurrency level")
    p.add_argument("--deltas", type=int, default=20, help="output_text.delta events per stream")
    p.add_argument("--long-deltas", type=int, default=200, help="deltas of the long stream (per-event cost)")
    p.add_argument("--long-requests", type=int, default=100, help="requests per long-stream scenario")
    p.add_argument("--warmup", type=int, default=100, help="untimed requests before each scenario")
    p.add_argument(
        "--budget",
        type=float,
        default=8.0,
        help="seconds per scenario (warm-up: a quarter) before it stops early",
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument("--only", choices=["unary", "stream"], help="run only unary or only stream scenarios")
    p.add_argument("--profile", type=Path, help="run the gateway under cProfile; write the stats here")
    p.add_argument(
        "--stores",
        default="sqlite,postgres,redis",
        help="store backends whose cost is measured after the main run (comma-separated; '' for none)",
    )
    p.add_argument("--store-requests", type=int, default=400, help="unary requests per store backend")
    p.add_argument(
        "--saturated-requests",
        type=int,
        default=4000,
        help="requests per scenario of the saturated lines (Go load generators; 0: skip)",
    )
    p.add_argument(
        "--scaling-requests",
        type=int,
        default=2000,
        help="requests per worker count of the scaling line (0: skip)",
    )
    return p.parse_args(argv)


def _body(*, stream: bool, model: str, deltas: int | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "model": model,
        "instructions": "You are a terse assistant.",
        "input": [{"role": "user", "content": "Say hello and offer help in one short sentence."}],
        "temperature": 1.0,
    }
    if stream:
        body["stream"] = True
    if deltas is not None:
        body["metadata"] = {"bench_deltas": str(deltas)}
    return body


class Bench:
    def __init__(
        self,
        args: argparse.Namespace,
        upstream_port: int,
        grpc_port: int,
        http_port: int,
        gateway_pid: int,
        floor_port: int,
        grpc_floor: procs.Proc,
    ) -> None:
        self.args = args
        self.gateway_pid = gateway_pid
        self.grpc_floor = grpc_floor
        self.direct_url = f"http://127.0.0.1:{upstream_port}/v1/responses"
        self.floor_url = f"http://127.0.0.1:{floor_port}/v1/responses"
        self.tuned: list[Row] = []  # c=1 unary under `procs.shallow_idle`, where it can be held
        self.gateway_url = f"http://127.0.0.1:{http_port}/v1/responses"
        self.grpc_target = f"127.0.0.1:{grpc_port}"

    def calls(self, stream: bool, deltas: int | None) -> list[tuple[str, Call, int | None]]:
        """Each target's call, and the pid whose CPU it is charged to (None: not measured)."""
        direct = orjson.dumps(_body(stream=stream, model=UPSTREAM_MODEL, deltas=deltas))
        via = _body(stream=stream, model=MODEL, deltas=deltas)
        request = codec.from_json(request_pb2.CreateResponseRequest(), via)
        # A floor for each gateway line the issue sets a target on: REST unary (framing only) and gRPC
        # streams (bare grpc.aio, canned events), the per-event slope being what the stream target reads.
        floor = (
            [("floor gRPC", load.grpc_call(self.floor_stub, request, stream=True), self.grpc_floor.pid)]
            if stream
            else [("floor REST", load.rest_call(self.client, self.floor_url, direct, stream=False), None)]
        )
        gateway = self.gateway_pid
        return [
            ("direct REST", load.rest_call(self.client, self.direct_url, direct, stream=stream), None),
            *floor,
            (
                "gateway REST",
                load.rest_call(self.client, self.gateway_url, orjson.dumps(via), stream=stream),
                gateway,
            ),
            ("gateway gRPC", load.grpc_call(self.stub, request, stream=stream), gateway),
        ]

    async def scenario(
        self, mode: str, concurrency: int, requests: int, deltas: int | None = None
    ) -> list[Row]:
        rows: list[Row] = []
        baseline: Samples | None = None
        for target, call, pid in self.calls(mode == "stream", deltas):
            await load.run(call, self.args.warmup, concurrency, budget=self.args.budget / 4)
            gc.collect()
            cpu = load.cpu_seconds(pid) if pid is not None else 0.0
            samples = await load.run(call, requests, concurrency, budget=self.args.budget)
            if pid is not None:
                samples.cpu = (load.cpu_seconds(pid) - cpu) / max(1, len(samples.latencies))
            if samples.errors:
                print(
                    f"  ! {target} {mode} c={concurrency}: {samples.errors} errors, first: {samples.first_error}"
                )
            baseline = baseline or samples
            rows.append(Row(target, mode, concurrency, samples, None if samples is baseline else baseline))
        return rows

    async def run(self) -> tuple[list[Row], list[Row], list[Row]]:
        self.client = load.http_client()
        channel, self.stub = load.grpc_stub(self.grpc_target)
        floor_channel, self.floor_stub = load.grpc_stub(f"127.0.0.1:{self.grpc_floor.ports[0]}")
        a = self.args
        modes = [a.only] if a.only else ["unary", "stream"]
        try:
            rows: list[Row] = []
            for mode in modes:
                for c, n in ((1, a.requests_c1), (a.concurrency, a.requests_c16)):
                    rows += await self.scenario(mode, c, n)
                    _progress(rows[-3:])
                    if mode == "unary" and c == 1:  # before c=16 leaves the clients' pools wide
                        with procs.shallow_idle() as held:
                            if held:
                                self.tuned = await self.scenario(mode, c, n)
            short: list[Row] = []
            long: list[Row] = []
            if "stream" in modes:
                short = [r for r in rows if r.mode == "stream" and r.concurrency == 1]
                long = await self.scenario("stream", 1, a.long_requests, a.long_deltas)
                _progress(long)
            return rows, short, long
        finally:
            await self.client.aclose()
            await channel.close(None)
            await floor_channel.close(None)


def _progress(rows: list[Row]) -> None:
    done = ", ".join(f"{r.target} {r.samples.rps:.0f} rps" for r in rows)
    print(f"  done: {rows[0].mode} c={rows[0].concurrency}: {done}", file=sys.stderr, flush=True)


def _placement(pin: bool, upstream: procs.Proc, gateway: procs.Proc) -> str:
    me = os.getpid()
    if not pin:
        return (
            f"unpinned: load generator pid {me}, fast upstream pid {upstream.pid}, gateway pid {gateway.pid}"
        )
    return (
        f"pinned: load generator (pid {me}) + fast upstream (pid {upstream.pid}) share CPU 0; "
        f"gateway (pid {gateway.pid}: event loop, gRPC core threads, SQLite thread) has CPU 1 to itself"
    )


def _print_profile(path: Path) -> None:
    print(f"\ngateway profile ({path}), top 30 by own time:")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(30)
    print("top 40 by cumulative time:")
    stats.sort_stats("cumulative").print_stats(40)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    cpus = sorted(os.sched_getaffinity(0))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rg-bench-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        upstream = procs.start_upstream(cpus[0] if pin else None, args.deltas, workdir)
        stack.callback(procs.stop, upstream)
        config = procs.write_config(workdir, upstream.ports[0], MODEL)
        gateway = procs.start_gateway(cpus[1] if pin else None, config, workdir, args.profile)
        stack.callback(procs.stop, gateway)
        floor = procs.start_floor_proxy(cpus[1] if pin else None, upstream.ports[0], workdir)
        stack.callback(procs.stop, floor)
        grpc_floor = procs.start_grpc_floor(cpus[1] if pin else None, workdir, args.deltas)
        stack.callback(procs.stop, grpc_floor)
        if pin:
            os.sched_setaffinity(0, {cpus[0]})
        print(f"Responses Gateway benchmark — {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
        print(reference.report())
        print(_placement(pin, upstream, gateway))
        print(
            f"fast upstream: raw asyncio HTTP/1.1 on 127.0.0.1:{upstream.ports[0]}, "
            f"streams of {args.deltas} deltas; gateway: SQLite store on, REST :{gateway.ports[1]}, "
            f"gRPC :{gateway.ports[0]}{', under cProfile' if args.profile else ''}"
        )
        print(
            f"requests per scenario: {args.requests_c1} at c=1, {args.requests_c16} at c={args.concurrency} "
            f"(after {args.warmup} warm-up; each stops early after {args.budget:g}s); clients: httpx.AsyncClient (HTTP/1.1 keep-alive), grpc.aio\n"
        )
        bench = Bench(
            args,
            upstream.ports[0],
            gateway.ports[0],
            gateway.ports[1],
            gateway.pid,
            floor.ports[0],
            grpc_floor,
        )
        rows, short, long = asyncio.run(bench.run())
        print(table(rows))
        print(
            "\n+p50/+p99/+ttfb: gateway minus the direct REST call in the same mode and concurrency. "
            "TTFB: first body byte (REST), first message (gRPC; a unary reply is one message). "
            "gw CPU: the gateway process's CPU time (all threads) per request, from /proc: unlike latency, "
            "it does not depend on what else the machine is running. floor REST: bench/floor_proxy.py, "
            "a raw asyncio forwarder on the gateway's CPU (framing only: no JSON, no store); its +p50 is "
            "what the extra hop itself costs on this machine, the part of the gateway's +p50 no proxy avoids."
        )
        if bench.tuned:
            print(
                "\nc=1 again with idle CPUs held in their shallowest state (/dev/cpu_dma_latency at 0, what "
                "tuned's latency-performance profile sets on a node): what the same code adds on a node tuned "
                "for latency, without this machine's wake-up cost:"
            )
            print(table(bench.tuned))
        if long:
            print(f"\nper streamed event (c=1, p50 of {args.deltas}- vs {args.long_deltas}-delta streams):")
            print(per_event(short, long))
        procs.stop(gateway)
        procs.stop(floor)
        procs.stop(grpc_floor)
        if args.saturated_requests:
            print(
                "\n"
                + saturated.run(
                    upstream.ports[0],
                    workdir,
                    MODEL,
                    requests=args.saturated_requests,
                    concurrency=args.concurrency,
                    gateway_cpu=cpus[1] if pin else None,
                    load_cpu=cpus[0] if pin else None,
                    budget=args.budget,
                )
            )
        backends = [b for b in args.stores.split(",") if b]
        if backends:
            rows_by_store = stores.run(
                upstream.ports[0],
                workdir,
                MODEL,
                backends=backends,
                requests=args.store_requests,
                long_deltas=args.long_deltas,
                cpu=cpus[1] if pin else None,
                load_cpu=cpus[0] if pin else None,
            )
            print(
                f"\nthe store's cost (REST, c=1; a gateway per backend; +: minus `store: false`, which does no "
                f"store operation; per event: {args.deltas}- vs {args.long_deltas}-delta streams):"
            )
            print(stores.report(rows_by_store, args.deltas, args.long_deltas))
        if args.scaling_requests:
            print("\n" + scaling.run(upstream.ports[0], workdir, MODEL, requests=args.scaling_requests))
    if args.profile is not None:
        _print_profile(args.profile)
    print("\n" + accounting.report())
    print(keys.report())
    print(codec_calls.report())
    print(reference.report() + " (again, at the end)")
    print(f"\nbench took {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
