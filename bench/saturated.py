"""The saturated lines: the gateway CPU per request of one busy worker, REST and gRPC unary.

A gateway whose core idles between requests pays for waking its event loop twice per request (the
client's request, the upstream's answer); one that never idles does not. The main table's Python load
generator cannot keep one worker busy (it tops out near 0.9 core itself), so this line drives one
one-worker gateway (SQLite store on) with the Go generators, `bench/loadgen` (REST, one keep-alive
connection per concurrent call) and `bench/grpcload` (gRPC, one channel), at concurrency 16, and
reads the gateway's CPU from /proc over their timed phase. Issue 13's targets (REST <= 350 µs, gRPC
<= 550 µs per request) are compared with that saturated figure, and the gRPC one with grpcio's own
cost, `bench/grpc_floor.py` under the same load on the same CPU, and each of those runs' CPU is split
between the event loop's thread and the others, with how often the loop blocked per call. For
reference the same at c=1, with the latency the gateway adds over a direct REST call to the upstream
made by the same generator.

The upstream is the bench's, already pinned to `load_cpu`; the generators join it there, and the
gateway has `gateway_cpu` to itself."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench import load, procs

# What procs.write_config maps the gateway's model to: the model a direct call names.
_UPSTREAM_MODEL = "gpt-4.1"
# The bench's request (bench/__main__.py `_body`), sent the same way over REST and gRPC.
_INSTRUCTIONS = "You are a terse assistant."
_INPUT = "Say hello and offer help in one short sentence."
_TARGETS = {"REST": 350, "gRPC": 550}  # issue 13, gateway CPU µs per request, saturated
_SATURATED = 0.9  # gateway busy cores below which the c=16 run did not saturate it


@dataclass
class Run:
    """One generator run's timed phase, as its JSON line reports it, plus the gateway's CPU."""

    ok: int  # requests answered successfully
    errors: int
    first_error: str
    wall: float
    p50_ms: float | None
    load_cpu: float  # seconds, the generator's own
    gateway_cpu: float  # seconds, the gateway process (all threads), over the same phase
    others: float | None  # seconds its pinned CPU was busy with anything else (None: not pinned)
    steal: float | None  # seconds the hypervisor took from its pinned CPU (None: not pinned)
    loop_cpu: float  # seconds, the gateway's main thread (its event loop) alone
    loop_waits: int  # times the main thread blocked (waited for something to wake it)

    def per_request_us(self, seconds: float) -> float:
        return seconds / self.ok * 1e6 if self.ok else 0.0

    @property
    def rps(self) -> float:
        return self.ok / self.wall if self.wall > 0 else 0.0

    @property
    def busy(self) -> float:
        return self.gateway_cpu / self.wall if self.wall > 0 else 0.0

    def errors_note(self) -> str:
        return f", {self.errors} errors (first: {self.first_error})" if self.errors else ""


def _rest_body(model: str) -> bytes:
    message = {"role": "user", "content": _INPUT}
    return orjson.dumps(
        {"model": model, "instructions": _INSTRUCTIONS, "input": [message], "temperature": 1.0}
    )


# The gateway's CPU seconds, (when pinned) its CPU's busy seconds, whoever used them, and the seconds
# the hypervisor took from it; its main thread's CPU seconds and voluntary context switches.
Readings = Callable[[], tuple[float, float, float, float, int]]


def _measure(argv: list[str], cpu: int | None, readings: Readings, pinned: bool, budget: float) -> Run:
    """Run a generator pinned to `cpu`; the gateway's CPU is read when the generator says its timed
    phase starts (after the warm-up) and once it has exited."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=procs.pinning(cpu)
    )
    assert proc.stderr is not None
    before = None
    for line in proc.stderr:
        if "timed phase starts" in line:
            before = readings()
            break
    out, err = proc.communicate(timeout=budget * 2 + 60)
    after = readings()
    if proc.returncode != 0 or before is None:
        raise RuntimeError(f"{Path(argv[0]).name} exited {proc.returncode}: {err}")
    r = orjson.loads(out.splitlines()[-1])
    ok = r["requests"] - r["errors"]
    gateway, busy, steal, loop = (a - b for a, b in zip(after[:4], before[:4], strict=True))
    others = max(0.0, busy - gateway) if pinned else None
    taken = steal if pinned else None
    return Run(
        ok,
        r["errors"],
        r["first_error"],
        r["wall_s"],
        r["p50_ms"],
        r["cpu_s"],
        gateway,
        others,
        taken,
        loop,
        after[4] - before[4],
    )


# (transport, concurrency, direct?) -> the run; a closure over the built binaries and the processes.
Measure = Callable[[str, int, bool], Run]


def _measurer(
    bins: dict[str, Path],
    urls: dict[str, str],
    gateway: procs.Proc,
    gateway_cpu: int | None,
    model: str,
    requests: int,
    cpu: int | None,
    budget: float,
) -> Measure:
    cpus = set() if gateway_cpu is None else {gateway_cpu}

    def readings() -> tuple[float, float, float, float, int]:
        pid = gateway.pid
        return (
            load.cpu_seconds(pid),
            *procs.cpu_ticks(cpus),
            load.cpu_seconds(pid, pid),
            procs.loop_waits(pid),
        )

    def measure(transport: str, concurrency: int, direct: bool = False) -> Run:
        common = ["-n", str(requests), "-c", str(concurrency), "-duration", f"{budget}s"]
        common += ["-warmup", str(max(50, requests // 5))]
        if transport == "gRPC":
            argv = [str(bins["grpcload"]), "-target", urls["grpc"], "-model", model]
            argv += ["-instructions", _INSTRUCTIONS, "-input", _INPUT]
        else:
            url, body = (urls["direct"], _UPSTREAM_MODEL) if direct else (urls["rest"], model)
            argv = [str(bins["loadgen"]), "-url", url, "-body", _rest_body(body).decode()]
        return _measure(argv + common, cpu, readings, gateway_cpu is not None, budget)

    return measure


def _saturated_line(transport: str, concurrency: int, r: Run) -> str:
    note = ""
    if r.busy < _SATURATED:
        # Either the load did not keep it busy, or something else on its CPU (or the host) took the time.
        others = ""
        if r.others is not None and r.steal is not None:
            others = f"; other processes on its CPU: {r.others / r.wall:.2f} cores, the host (steal) {r.steal / r.wall:.2f}"
        note = f" (not saturated: below {_SATURATED} core{others})"
    return (
        f"  {transport} unary, saturated (c={concurrency}, Go load generator): {r.rps:,.0f} rps, "
        f"gateway CPU {r.per_request_us(r.gateway_cpu):,.0f} µs/request (target <= {_TARGETS[transport]}), "
        f"gateway busy {r.busy:.2f} cores{note}, load generator {r.per_request_us(r.load_cpu):,.0f} "
        f"µs/request{r.errors_note()}"
    )


def _floor_line(concurrency: int, floor: Run, grpc: Run) -> str:
    """bench/grpc_floor under the same load: grpcio's own cost per call, with nothing of the gateway."""
    bare, gateway = floor.per_request_us(floor.gateway_cpu), grpc.per_request_us(grpc.gateway_cpu)
    note = "" if floor.busy >= _SATURATED else f" (not saturated: busy {floor.busy:.2f} cores)"
    return (
        f"  gRPC floor, saturated (c={concurrency}; bench/grpc_floor.py: bare grpc.aio, a canned reply, the "
        f"gateway's thread policy): {floor.rps:,.0f} rps, {bare:,.0f} µs/call{note}{floor.errors_note()}; "
        f"the gateway's gRPC line is {gateway - bare:,.0f} µs above it (target {_TARGETS['gRPC']} µs: "
        f"{_TARGETS['gRPC'] - bare:,.0f} µs left for the gateway's own work on this machine)"
    )


def _threads_line(busy: dict[str, Run], floor: Run) -> str:
    """Where the saturated calls' CPU went, by thread: the event loop's (main) thread against all the
    others (grpc.aio's poller and EventEngine threads; the store's, which runs only sweeps), and how
    often the loop blocked. A REST call wakes the loop only through sockets it polls itself; a gRPC
    call's completions come from grpc.aio's poller thread, one wake-up each, and on one CPU every
    such wait is the loop sleeping and being woken."""

    def split(r: Run) -> str:
        # Read a moment apart (and in clock ticks): the loop's share is capped at the whole.
        own = min(r.loop_cpu, r.gateway_cpu)
        loop, rest = r.per_request_us(own), r.per_request_us(r.gateway_cpu - own)
        waits = r.loop_waits / r.ok if r.ok else 0.0
        return (
            f"loop {loop:,.0f} µs + other threads {rest:,.0f} µs, the loop blocked {waits:.1f} times per call"
        )

    parts = [f"{t}: {split(r)}" for t, r in busy.items()]
    return (
        "  by thread, saturated (the event loop's own thread against the process's others, from /proc): "
        + "; ".join([*parts, f"gRPC floor: {split(floor)}"])
    )


def _idle_line(transport: str, r: Run, direct: Run) -> str:
    p50 = r.p50_ms if r.p50_ms is not None else float("nan")
    base = direct.p50_ms if direct.p50_ms is not None else float("nan")
    return (
        f"  {transport} unary, c=1 (for reference): gateway CPU {r.per_request_us(r.gateway_cpu):,.0f} "
        f"µs/request, p50 {p50:.2f} ms, +{p50 - base:.2f} ms over the direct REST call (p50 {base:.2f} ms)"
        f"{r.errors_note()}"
    )


def _build(workdir: Path) -> dict[str, Path]:
    """Both generators, into the bench's workdir; loadgen is reused when the scaling line built it."""
    bins = {}
    for package in ("loadgen", "grpcload"):
        out = workdir / package
        bins[package] = out if out.exists() else procs.go_build(package, out)
    return bins


def _where(cpu: int | None) -> str:
    return "unpinned" if cpu is None else f"CPU {cpu}"


def run(
    upstream_port: int,
    workdir: Path,
    model: str,
    *,
    requests: int,
    concurrency: int = 16,
    gateway_cpu: int | None,
    load_cpu: int | None,
    budget: float = 8.0,
) -> str:
    """The saturated lines (and the c=1 reference lines) as text; one line saying why not without Go.
    Each of the five runs stops early after `budget` seconds (its warm-up: after a quarter of it)."""
    if shutil.which("go") is None:
        return (
            "saturated lines: skipped, they need Go (`go` not on PATH) for bench/loadgen and bench/grpcload"
        )
    bins = _build(workdir)
    own = workdir / "saturated"  # its own config, store and log: the other lines' stay as they were
    own.mkdir(exist_ok=True)
    config = procs.write_config(own, upstream_port, model)
    gateway = procs.start_gateway(gateway_cpu, config, own, None)
    try:
        urls = {
            "direct": f"http://127.0.0.1:{upstream_port}/v1/responses",
            "rest": f"http://127.0.0.1:{gateway.ports[1]}/v1/responses",
            "grpc": f"127.0.0.1:{gateway.ports[0]}",
        }
        measure = _measurer(bins, urls, gateway, gateway_cpu, model, requests, load_cpu, budget)
        direct = measure("REST", 1, True)
        idle = {t: measure(t, 1, False) for t in ("REST", "gRPC")}
        busy = {t: measure(t, concurrency, False) for t in ("REST", "gRPC")}
    finally:
        procs.stop(gateway)
    floor = procs.start_grpc_floor(gateway_cpu, own)
    try:
        urls["grpc"] = f"127.0.0.1:{floor.ports[0]}"
        bare = _measurer(bins, urls, floor, gateway_cpu, model, requests, load_cpu, budget)(
            "gRPC", concurrency, False
        )
    finally:
        procs.stop(floor)
    return "\n".join(
        [
            f"saturated lines: one one-worker gateway (SQLite store on, {_where(gateway_cpu)}), driven by "
            f"bench/loadgen (REST) and bench/grpcload (gRPC, one channel) beside the upstream "
            f"({_where(load_cpu)}); issue 13's targets (REST <= {_TARGETS['REST']} µs, gRPC <= "
            f"{_TARGETS['gRPC']} µs gateway CPU per request) are compared with the saturated figure, where "
            "the worker never idles; at c=1 each request also pays for waking the idle loop twice:",
            *(_saturated_line(t, concurrency, r) for t, r in busy.items()),
            _floor_line(concurrency, bare, busy["gRPC"]),
            _threads_line(busy, bare),
            *(_idle_line(t, r, direct) for t, r in idle.items()),
        ]
    )
