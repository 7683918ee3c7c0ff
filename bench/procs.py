"""The processes under test: the fast upstream and the gateway, each pinned to a CPU (or a set of CPUs)
when asked; and what /proc says about them (a supervisor's workers, how busy the CPUs were)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PYTHONPATH = os.pathsep.join(str(ROOT / p) for p in ("", "server", "clients/python/src"))


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[str]
    ports: tuple[int, ...]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PYTHONPATH, env.get("PYTHONPATH", "")) if p)
    return env


Cpus = int | Iterable[int] | None  # one CPU, a set of them, or None: inherit this process's affinity


def pinning(cpu: Cpus) -> Callable[[], None]:
    """A `preexec_fn` that gives the child `cpu` as its affinity (None: keeps this process's)."""
    cpus = None if cpu is None else {cpu} if isinstance(cpu, int) else set(cpu)

    def pin() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    return pin


def _spawn(name: str, argv: list[str], cpu: Cpus, log: Path, ready: re.Pattern[str]) -> Proc:
    """Start `argv` and wait until it prints a line matching `ready` (whose groups are its ports)."""
    err = log.open("w")
    popen = subprocess.Popen(
        argv, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=err, text=True, preexec_fn=pinning(cpu)
    )
    assert popen.stdout is not None
    for line in popen.stdout:
        match = ready.search(line)
        if match:
            return Proc(name, popen, tuple(int(g) for g in match.groups()), log)
    popen.wait()
    raise RuntimeError(f"{name} exited ({popen.returncode}) before it was ready:\n{log.read_text()[-3000:]}")


def start_upstream(cpu: Cpus, deltas: int, workdir: Path) -> Proc:
    argv = [sys.executable, "-m", "bench.fast_upstream", "--port", "0", "--deltas", str(deltas)]
    return _spawn("fast upstream", argv, cpu, workdir / "upstream.log", re.compile(r"listening on .*:(\d+)"))


def go_build(package: str, out: Path) -> Path:
    """`go build` the Go program in `bench/<package>` (its own module, standard library only) to `out`.
    GOTOOLCHAIN=local: never try to download a toolchain (the bench runs offline); a failed build
    raises with the compiler's output."""
    go = shutil.which("go")
    if go is None:
        raise FileNotFoundError("`go` is not on PATH")
    env = dict(os.environ, GOTOOLCHAIN="local", CGO_ENABLED="0")
    argv = [go, "build", "-o", str(out.resolve()), "."]
    built = subprocess.run(argv, cwd=ROOT / "bench" / package, env=env, capture_output=True, text=True)
    if built.returncode != 0:
        raise RuntimeError(f"go build bench/{package} failed:\n{built.stdout}{built.stderr}")
    return out


def start_floor_proxy(cpu: Cpus, upstream_port: int, workdir: Path) -> Proc:
    argv = [sys.executable, "-m", "bench.floor_proxy", "--upstream-port", str(upstream_port), "--port", "0"]
    return _spawn("floor proxy", argv, cpu, workdir / "floor.log", re.compile(r"listening on .*:(\d+)"))


def start_grpc_floor(cpu: Cpus, workdir: Path, deltas: int = 20) -> Proc:
    argv = [sys.executable, "-m", "bench.grpc_floor", "--port", "0", "--deltas", str(deltas)]
    return _spawn("gRPC floor", argv, cpu, workdir / "grpc_floor.log", re.compile(r"listening on .*:(\d+)"))


def write_config(workdir: Path, upstream_port: int, model: str) -> Path:
    config = workdir / "gateway.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {model}\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4.1\n"
        f"      api_base: http://127.0.0.1:{upstream_port}/v1\n"
        "      api_key: sk-bench\n"
        "gateway_settings:\n"
        "  store:\n"
        f"    path: {workdir / 'responses.sqlite3'}\n"
    )
    return config


def start_gateway(cpu: Cpus, config: Path, workdir: Path, profile: Path | None, *, workers: int = 1) -> Proc:
    serve = ["serve", "--config", str(config), "--host", "127.0.0.1", "--grpc-port", "0", "--http-port", "0"]
    serve += ["--grace", "2", "--log-level", "warning", "--workers", str(workers)]
    runner = ["-m", "cProfile", "-o", str(profile), "-m"] if profile is not None else ["-m"]
    argv = [sys.executable, *runner, "responses_gateway.cli", *serve]
    ready = re.compile(r"serving gRPC on .*:(\d+), REST on http://.*:(\d+)/")
    return _spawn("gateway", argv, cpu, workdir / "gateway.log", ready)


def all_cpus() -> set[int]:
    """Every CPU the machine has: as an affinity, the kernel narrows it to those the cgroup's cpuset
    allows, which is what a process not pinned by us would get (see `os.sched_getaffinity(pid)`)."""
    return set(range(os.cpu_count() or 1))


def children(pid: int) -> list[int]:
    """The direct children of `pid` (a supervisor's workers), from every thread's `children` list."""
    found: set[int] = set()
    with contextlib.suppress(OSError):  # none once `pid` is gone
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):  # a thread that just ended
                found.update(int(c) for c in (task / "children").read_text().split())
    return sorted(found)


def worker_pids(gateway: Proc, workers: int) -> list[int]:
    """The processes that serve: the gateway itself with one worker, else its supervisor's children."""
    return [gateway.pid] if workers == 1 else children(gateway.pid)


def cpu_ticks(cpus: Iterable[int], stat: Path = Path("/proc/stat")) -> tuple[float, float]:
    """(busy, steal) CPU seconds of the given CPUs since boot, from `stat`'s `cpuN` lines. Busy: what
    everything on them ran, ours or not. Steal: time the hypervisor gave their turn to another
    machine (they had work and did not run); not busy, since nothing of this machine ran then."""
    wanted = {f"cpu{c}" for c in cpus}
    busy = steal = 0
    for line in stat.read_text().splitlines():
        name, *values = line.split()
        if name in wanted:
            # user nice system idle iowait irq softirq steal (guest time is already inside user)
            ticks = [int(v) for v in values[:8]]
            busy += sum(ticks) - ticks[3] - ticks[4] - ticks[7]
            steal += ticks[7]
    hz = os.sysconf("SC_CLK_TCK")
    return busy / hz, steal / hz


def loop_waits(pid: int) -> int:
    """Voluntary context switches of `pid`'s main thread, the gateway's event loop: each is the thread
    blocking (the loop waiting in epoll for something to wake it). Its CPU: `load.cpu_seconds(pid, pid)`."""
    status = Path(f"/proc/{pid}/task/{pid}/status")
    for line in status.read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise ValueError(f"no voluntary_ctxt_switches in {status}")


@contextlib.contextmanager
def shallow_idle() -> Iterator[bool]:
    """While open, idle CPUs stay in their shallowest state: `/dev/cpu_dma_latency` held at 0 (PM QoS;
    what tuned's `latency-performance` profile sets on a node). Yields False, doing nothing, where the
    file cannot be written (not root, or no such device)."""
    try:
        fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
    except OSError:
        yield False
        return
    try:
        os.write(fd, (0).to_bytes(4, sys.byteorder))
        yield True
    finally:
        os.close(fd)  # the kernel drops the request with its last descriptor


def stop(proc: Proc) -> None:
    """SIGTERM (the gateway shuts down gracefully, which also writes a cProfile file), then SIGKILL."""
    if proc.popen.poll() is None:
        proc.popen.send_signal(signal.SIGTERM)
        try:
            proc.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait()
    with contextlib.suppress(Exception):
        if proc.popen.stdout is not None:
            proc.popen.stdout.close()


@contextlib.contextmanager
def running(procs: list[Proc]) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in reversed(procs):
            stop(proc)
