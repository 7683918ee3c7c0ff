"""`python -m bench.soak`: does a multi-worker gateway stay flat under hours of load? (issue 13)

Starts the fast upstream (`bench.fast_upstream`) and the gateway (`serve --workers 2`, SQLite store on,
nothing pinned), then keeps 16 REST streams (and a few gRPC streams) running back to back for
`--minutes`. Every `--interval` seconds it prints, per worker process (the supervisor's children, from
/proc): RSS (`VmRSS`), open file descriptors, the requests it answered (REST responses name their worker
in `x-gateway-worker`) and the errors. At the end: RSS after start, after warm-up and at the end, the
growth from warm-up to end against the target (<= 100 MB per worker, flat within 5%), and whether the
file descriptors came back to their count after each worker's first request once the load generator
closed its connections (the kept-alive upstream connections apart, bounded instead). Exit status 0
unless the gateway died (2) or a request failed (1); the targets are reported, not enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from bench import load, procs
from responses_gateway import codec
from responses_gateway.v1 import request_pb2

MODEL = "bench-gpt"
TARGET_MB = 100.0
TARGET_GROWTH = 5.0  # percent, warm-up to end
_TCP_ESTABLISHED = "01"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="how long the load runs")
    p.add_argument("--seconds", type=float, help="how long the load runs, in seconds (overrides --minutes)")
    p.add_argument("--interval", type=float, default=30.0, help="seconds between the progress lines")
    p.add_argument(
        "--warmup",
        type=float,
        default=60.0,
        help="seconds of load before the warm-up RSS is taken (at most a fifth of the run)",
    )
    p.add_argument("--streams", type=int, default=16, help="concurrent REST streams")
    p.add_argument("--grpc-streams", type=int, default=2, help="concurrent gRPC streams (one channel each)")
    p.add_argument("--workers", type=int, default=2, help="`serve --workers N`")
    p.add_argument("--deltas", type=int, default=20, help="output_text.delta events per stream")
    p.add_argument(
        "--settle",
        type=float,
        default=15.0,
        help="seconds to wait, after the load stops, for the workers' file descriptors to come back",
    )
    return p.parse_args(argv)


# ---- what /proc says about a worker -------------------------------------------------------------


def memory(pid: int) -> tuple[int, int]:
    """(RSS, its anonymous part) in bytes, from `/proc/<pid>/status`. The rest of RSS is file-backed
    pages, mostly the shared libraries (grpc's core, ...), which every worker counts though they are
    in memory once."""
    kb = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon"):
            kb[name] = int(value.split()[0])  # the kernel reports kB
    return kb["VmRSS"] * 1024, kb["RssAnon"] * 1024


def _tcp_table() -> dict[str, tuple[int, int, str]]:
    """Socket inode -> (local port, remote port, state) of every TCP socket in this network namespace."""
    table: dict[str, tuple[int, int, str]] = {}
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
                cols = line.split()
                local, remote, state, inode = cols[1], cols[2], cols[3], cols[9]
                table[inode] = (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16), state)
    return table


@dataclass
class Fds:
    """A worker's open file descriptors, and which of them are TCP connections to what."""

    total: int
    clients: int  # established connections on the gateway's REST / gRPC ports (the load generator's)
    upstream: int  # established connections to the fast upstream (the gateway's keep-alive pool)

    @property
    def own(self) -> int:
        """Everything but the connections: what should come back to its count before the load."""
        return self.total - self.clients - self.upstream


def fds(pid: int, gateway_ports: tuple[int, ...], upstream_port: int) -> Fds:
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed between the listing and the readlink
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    table = _tcp_table()
    clients = upstream = 0
    for link in links:
        if not link.startswith("socket:["):
            continue
        local, remote, state = table.get(link[8:-1], (0, 0, ""))
        if state != _TCP_ESTABLISHED:
            continue
        if local in gateway_ports:
            clients += 1
        elif remote == upstream_port:
            upstream += 1
    return Fds(len(links), clients, upstream)


@dataclass
class Sample:
    rss: int
    anon: int  # the anonymous part of `rss`
    fds: Fds
    cpu: float  # CPU seconds so far


def sample(pid: int, gateway_ports: tuple[int, ...], upstream_port: int) -> Sample:
    rss, anon = memory(pid)
    return Sample(rss, anon, fds(pid, gateway_ports, upstream_port), load.cpu_seconds(pid))


# ---- the load ------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the load generator saw; REST requests and errors by the worker that answered."""

    default: str = "?"  # whom a response without `x-gateway-worker` came from (one worker: itself)
    requests: Counter[str] = field(default_factory=Counter)  # worker pid (or "gRPC") -> completed
    errors: Counter[str] = field(default_factory=Counter)  # worker pid, "gRPC" or "?" (no response)
    first_errors: list[str] = field(default_factory=list)

    def error(self, where: str, what: str) -> None:
        self.errors[where] += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(f"{where}: {what}"[:300])


def _body(model: str) -> dict[str, object]:
    return {
        "model": model,
        "instructions": "You are a terse assistant.",
        "input": [{"role": "user", "content": "Say hello and offer help in one short sentence."}],
        "stream": True,
    }


async def _rest_stream(client: httpx.AsyncClient, url: str, body: bytes, tally: Tally) -> None:
    """One stream, read raw (the client's cost stays small): ok once `response.completed` went by."""
    headers = {"content-type": "application/json", "accept": "text/event-stream"}
    where = "?"
    try:
        async with client.stream("POST", url, content=body, headers=headers) as resp:
            where = resp.headers.get("x-gateway-worker", tally.default)
            tail = b""
            completed = False
            async for chunk in resp.aiter_raw():
                completed = completed or b"event: response.completed" in tail + chunk
                tail = chunk[-32:]
        if resp.status_code != 200:
            tally.error(where, f"HTTP {resp.status_code}")
        elif not completed:
            tally.error(where, f"stream without response.completed, ending {tail!r}")
        else:
            tally.requests[where] += 1
    except Exception as e:
        tally.error(where, f"{type(e).__name__}: {e}")


async def _rest_loop(
    client: httpx.AsyncClient, url: str, body: bytes, tally: Tally, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        await _rest_stream(client, url, body, tally)


async def _grpc_loop(call: load.Call, tally: Tally, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await call()
        except Exception as e:
            tally.error("gRPC", f"{type(e).__name__}: {e}")
        else:
            tally.requests["gRPC"] += 1


# ---- the run -------------------------------------------------------------------------------------


def _mb(n: int) -> str:
    return f"{n / 1e6:6.1f} MB"


class Soak:
    def __init__(
        self, args: argparse.Namespace, gateway: procs.Proc, upstream: procs.Proc, duration: float
    ) -> None:
        self.args, self.gateway, self.upstream, self.duration = args, gateway, upstream, duration
        self.warmup = min(args.warmup, duration / 5)
        self.interval = min(args.interval, max(duration / 2, 0.5))
        self.pids = procs.worker_pids(gateway, args.workers)
        self.tally = Tally(str(self.pids[0]) if args.workers == 1 else "?")
        self.samples: dict[str, dict[int, Sample]] = {}
        self.died = ""
        self.last_cpu: dict[int, tuple[float, float]] = {}

    def take(self, name: str) -> dict[int, Sample]:
        grpc_port, http_port = self.gateway.ports
        taken = {}
        for pid in self.pids:
            try:
                taken[pid] = sample(pid, (grpc_port, http_port), self.upstream.ports[0])
            except (OSError, KeyError):  # its /proc entry went away: it died
                self.died = self.died or f"worker {pid} is gone"
        self.samples[name] = taken
        return taken

    def check_alive(self) -> bool:
        """False (and why, in `died`) once the supervisor exited or a worker was replaced."""
        if self.died:
            pass
        elif self.gateway.popen.poll() is not None:
            self.died = f"the gateway (pid {self.gateway.pid}) exited with {self.gateway.popen.returncode}"
        elif (
            self.args.workers > 1 and (now := procs.worker_pids(self.gateway, self.args.workers)) != self.pids
        ):
            self.died = f"the workers changed from {self.pids} to {now} (one died and was restarted)"
        return not self.died

    def progress(self, elapsed: float) -> None:
        """One line per worker; CPU is in cores since the previous line."""
        taken = self.take("progress")
        now = time.monotonic()
        t = self.tally
        for pid, s in taken.items():
            cpu_then, t_then = self.last_cpu.get(pid, (s.cpu, now))
            cores = (s.cpu - cpu_then) / (now - t_then) if now > t_then else 0.0
            self.last_cpu[pid] = (s.cpu, now)
            print(
                f"[{elapsed:5.0f}s] worker {pid}: RSS {_mb(s.rss)}, fds {s.fds.total:3d} "
                f"({s.fds.clients:2d} client + {s.fds.upstream:2d} upstream connections), "
                f"REST requests {t.requests[str(pid)]:7,d}, "
                f"errors {t.errors[str(pid)]}, CPU {cores:4.2f} cores"
            )
        if self.args.grpc_streams or t.errors["?"]:
            print(
                f"[{elapsed:5.0f}s] gRPC requests {t.requests['gRPC']:,d} "
                f"(a gRPC reply does not name its worker), errors {t.errors['gRPC']}; errors without a response {t.errors['?']}"
            )
        sys.stdout.flush()

    async def prime(self) -> None:
        """A request answered by each worker before the fd baseline: a worker opens its prometheus
        multiprocess files (`metrics/counter_<pid>.db`, ...) at its first metric write, once, and those
        are no leak. A fresh connection each time, until the kernel gave one to every worker."""
        url = f"http://127.0.0.1:{self.gateway.ports[1]}/v1/responses"
        body = orjson.dumps(_body(MODEL))
        seen = Tally(self.tally.default)
        for _ in range(50 * len(self.pids)):
            async with httpx.AsyncClient(timeout=30.0) as client:
                await _rest_stream(client, url, body, seen)
            if all(seen.requests[str(pid)] for pid in self.pids) or seen.errors:
                break
        for where, n in seen.errors.items():
            self.tally.errors[where] += n
        self.tally.first_errors += seen.first_errors
        self.take("primed")

    async def drive(self) -> None:
        a = self.args
        grpc_port, http_port = self.gateway.ports
        url = f"http://127.0.0.1:{http_port}/v1/responses"
        body = _body(MODEL)
        client = load.http_client()
        request = codec.from_json(request_pb2.CreateResponseRequest(), body)
        # A channel per gRPC stream: each is one HTTP/2 connection, which SO_REUSEPORT gives a worker.
        channels = [load.grpc_stub(f"127.0.0.1:{grpc_port}") for _ in range(a.grpc_streams)]
        stop = asyncio.Event()
        tasks = [
            *(
                asyncio.create_task(_rest_loop(client, url, orjson.dumps(body), self.tally, stop))
                for _ in range(a.streams)
            ),
            *(
                asyncio.create_task(_grpc_loop(load.grpc_call(stub, request, stream=True), self.tally, stop))
                for _, stub in channels
            ),
        ]
        started = time.monotonic()
        next_progress = started
        warmed = False
        try:
            while self.check_alive():
                elapsed = time.monotonic() - started
                if not warmed and elapsed >= self.warmup:
                    self.take("warm-up")
                    warmed = True
                if elapsed >= next_progress - started:
                    self.progress(elapsed)
                    next_progress += self.interval
                if elapsed >= self.duration:
                    self.take("end")
                    break
                await asyncio.sleep(min(0.25, max(0.0, self.duration - elapsed)))
        finally:
            stop.set()
            # Each loop ends after its request in flight; a stuck one is what the timeout is for.
            _, pending = await asyncio.wait(tasks, timeout=30)
            for task in pending:
                task.cancel()
            await client.aclose()
            for channel, _ in channels:
                await channel.close(grace=None)
        if pending:
            self.tally.error("?", f"{len(pending)} requests still running 30 s after the load stopped")

    def fds_back(self, pid: int) -> bool:
        """Back to the count after the first request, besides the connections to the upstream (which the
        gateway keeps alive, idle, until it reuses them), and those bounded by the most calls in flight."""
        primed, after = self.samples["primed"][pid].fds, self.samples["after"][pid].fds
        return after.own <= primed.own and after.clients == 0 and after.upstream <= self.concurrency

    @property
    def concurrency(self) -> int:
        return int(self.args.streams + self.args.grpc_streams)

    async def settle(self) -> float:
        """Seconds until every worker's fds are back (`fds_back`; at most `--settle`)."""
        started = time.monotonic()
        while True:
            after = self.take("after")
            back = all(self.fds_back(pid) for pid in after)
            waited = time.monotonic() - started
            if back or waited >= self.args.settle or not self.check_alive():
                return waited
            await asyncio.sleep(0.25)

    async def run(self) -> float:
        self.take("start")
        await self.prime()
        await self.drive()
        return await self.settle() if not self.died else 0.0


def _rss_verdict(end: int, growth: float) -> str:
    missed = [
        *([f"over {TARGET_MB:.0f} MB"] if end > TARGET_MB * 1e6 else []),
        *([f"grew over {TARGET_GROWTH:.0f}%"] if growth > TARGET_GROWTH else []),
    ]
    return "MISSED: " + ", ".join(missed) if missed else "ok"


def report(soak: Soak, waited: float) -> tuple[list[str], bool]:
    """The closing lines, and whether RSS and fds met their targets (informative: not the exit status)."""
    s = soak.samples
    lines = [
        f"\nRSS per worker (target <= {TARGET_MB:.0f} MB per worker, flat within {TARGET_GROWTH:.0f}% "
        f"from the warm-up at {soak.warmup:.0f}s to the end at {soak.duration:.0f}s of load):"
    ]
    ok = True
    for pid in soak.pids:
        start, warm, end = s["start"][pid].rss, s["warm-up"][pid].rss, s["end"][pid].rss
        growth = (end - warm) / warm * 100
        verdict = _rss_verdict(end, growth)
        ok = ok and verdict == "ok"
        lines.append(
            f"  worker {pid}: after start (before load) {_mb(start)}, after warm-up {_mb(warm)}, at the end "
            f"{_mb(end)} ({_mb(s['end'][pid].anon).strip()} anonymous); "
            f"warm-up -> end {growth:+.1f}%: {verdict}"
        )
    if soak.args.workers > 1:
        rss, anon = memory(soak.gateway.pid)
        lines.append(
            f"  (the supervisor, pid {soak.gateway.pid}, serves nothing: RSS {_mb(rss).strip()}, "
            f"{_mb(anon).strip()} anonymous)"
        )
    lines.append(
        "file descriptors per worker: before any request / after the first (which opens its prometheus "
        f"multiprocess files, once) / at the end of the load / {waited:.1f}s after the load generator closed "
        "its connections; back = the count after the first request, besides kept-alive upstream connections "
        f"(at most the {soak.concurrency} calls that were in flight at once) and no client connection left:"
    )
    for pid in soak.pids:
        before, primed, loaded, after = (s[k][pid].fds for k in ("start", "primed", "end", "after"))
        back = soak.fds_back(pid)
        ok = ok and back
        lines.append(
            f"  worker {pid}: fds {before.total} / {primed.total} / {loaded.total} / {after.total} = "
            f"{after.own} + {after.upstream} idle upstream + {after.clients} client connections: "
            f"{'back' if back else 'NOT BACK'}"
        )
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    duration = args.seconds if args.seconds is not None else args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="rg-soak-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        upstream = procs.start_upstream(None, args.deltas, workdir)
        stack.callback(procs.stop, upstream)
        config = procs.write_config(workdir, upstream.ports[0], MODEL)
        gateway = procs.start_gateway(None, config, workdir, None, workers=args.workers)
        stack.callback(procs.stop, gateway)
        soak = Soak(args, gateway, upstream, duration)
        print(
            f"Responses Gateway soak: {duration:.0f}s of {args.streams} REST + {args.grpc_streams} gRPC "
            f"concurrent streams ({args.deltas} deltas each), back to back, through `serve --workers "
            f"{args.workers}` (SQLite store on, nothing pinned); {os.cpu_count()} CPUs, Python "
            f"{sys.version.split()[0]}"
        )
        print(
            f"supervisor pid {gateway.pid}, workers {', '.join(map(str, soak.pids))}; fast upstream pid "
            f"{upstream.pid}; load generator pid {os.getpid()} (httpx.AsyncClient, grpc.aio)",
            flush=True,
        )
        waited = asyncio.run(soak.run())
        t = soak.tally
        print(
            f"\nrequests: {sum(t.requests.values()):,d} completed ({t.requests['gRPC']:,d} over gRPC), "
            f"{sum(t.errors.values())} errors"
        )
        for first in t.first_errors:
            print(f"  ! {first}")
        if soak.died:
            # The log's lines besides the per-call records (one JSON object per request) say why.
            said = [
                line for line in gateway.log.read_text().splitlines() if not line.startswith('{"request_id"')
            ]
            print(f"GATEWAY DIED: {soak.died}; the gateway's log besides the call records:")
            print("\n".join(said[-30:]))
            return 2
        lines, met = report(soak, waited)
        print("\n".join(lines))
        print(f"targets: {'met' if met else 'MISSED'}")
        return 1 if sum(t.errors.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
