"""The processes under test: the fast upstream and the gateway, each pinned to a CPU when asked."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
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


def _spawn(name: str, argv: list[str], cpu: int | None, log: Path, ready: re.Pattern[str]) -> Proc:
    """Start `argv` and wait until it prints a line matching `ready` (whose groups are its ports)."""

    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    err = log.open("w")
    popen = subprocess.Popen(
        argv, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=err, text=True, preexec_fn=pin
    )
    assert popen.stdout is not None
    for line in popen.stdout:
        match = ready.search(line)
        if match:
            return Proc(name, popen, tuple(int(g) for g in match.groups()), log)
    popen.wait()
    raise RuntimeError(f"{name} exited ({popen.returncode}) before it was ready:\n{log.read_text()[-3000:]}")


def start_upstream(cpu: int | None, deltas: int, workdir: Path) -> Proc:
    argv = [sys.executable, "-m", "bench.fast_upstream", "--port", "0", "--deltas", str(deltas)]
    return _spawn("fast upstream", argv, cpu, workdir / "upstream.log", re.compile(r"listening on .*:(\d+)"))


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


def start_gateway(
    cpu: int | None, config: Path, workdir: Path, profile: Path | None, *, workers: int = 1
) -> Proc:
    serve = ["serve", "--config", str(config), "--host", "127.0.0.1", "--grpc-port", "0", "--http-port", "0"]
    serve += ["--grace", "2", "--log-level", "warning", "--workers", str(workers)]
    runner = ["-m", "cProfile", "-o", str(profile), "-m"] if profile is not None else ["-m"]
    argv = [sys.executable, *runner, "responses_gateway.cli", *serve]
    ready = re.compile(r"serving gRPC on .*:(\d+), REST on http://.*:(\d+)/")
    return _spawn("gateway", argv, cpu, workdir / "gateway.log", ready)


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
