"""The real gateway as a subprocess (`responses-gateway serve`, ports picked by the OS and read from
its output), yielded once its gRPC health check says SERVING, stopped with SIGTERM (then SIGKILL).
The one runner of every suite that needs a process of its own; `tests/support/inprocess.py` is the
in-process one, for tests that look inside."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
_SERVING = re.compile(r"serving gRPC on (\S+):(\d+), REST on http://(\S+):(\d+)/v1")
# Provider keys a developer may have exported: the gateway under test must never see them.
_KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GATEWAY_MASTER_KEY")


def gateway_command() -> list[str]:
    exe = REPO / ".venv" / "bin" / "responses-gateway"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "responses_gateway.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _KEY_VARS}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "server"), str(REPO / "clients" / "python" / "src"), str(REPO)]
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class GatewayProcess:
    """`responses-gateway serve` on loopback; ports are picked by the OS (0) and read from its output."""

    def __init__(
        self,
        config: Path,
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        grace: float = 10,
        workers: int = 1,
    ) -> None:
        # One worker unless a suite asks for more (tests/workers): the default, one per CPU, would
        # make every suite's process a supervisor on a multi-core machine.
        self.config, self.cwd, self.grace, self.workers = config, cwd, grace, workers
        self.env = env if env is not None else clean_env()
        self.lines: list[str] = []
        self.grpc_port = self.http_port = 0
        self.proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_for_log(self, text: str, timeout: float = 10) -> str:
        """The log once it has `text` (lines arrive through a reader thread, so a line the gateway
        wrote while answering a request may land a moment after the answer); the log as it is after
        `timeout` otherwise."""
        deadline = time.monotonic() + timeout
        while text not in self.log and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.log

    # The names the client suites use.
    @property
    def target(self) -> str:
        return self.grpc_target

    @property
    def process(self) -> subprocess.Popen[str]:
        assert self.proc is not None
        return self.proc

    @property
    def output(self) -> list[str]:
        return self.lines

    def start(self, timeout: float = 60) -> GatewayProcess:
        cmd = [
            *gateway_command(),
            "serve",
            "--config",
            str(self.config),
            "--host",
            "127.0.0.1",
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--grace",
            str(self.grace),
            "--workers",
            str(self.workers),
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the gateway did not start (rc={self.proc.returncode}):\n{self.log}")
        wait_serving(self.grpc_target, max(1.0, deadline - time.monotonic()))
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if (m := _SERVING.search(line)) and not self._ready.is_set():
                self.grpc_port, self.http_port = int(m.group(2)), int(m.group(4))
                self._ready.set()

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.terminate()
        try:
            self.proc.wait(self.grace + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def wait_serving(target: str, timeout: float, service: str = "") -> None:
    """Block until the gRPC health check of `target` answers SERVING."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as e:
                last = e
            time.sleep(0.05)
    raise RuntimeError(f"{target} never reported SERVING ({last})")


@contextlib.contextmanager
def run_gateway(config: Path, *, cwd: Path = REPO, grace: float = 1) -> Iterator[GatewayProcess]:
    """Start the gateway from `config`; yield it once healthy; stop it after."""
    gw = GatewayProcess(config, cwd=cwd, grace=grace).start()
    try:
        yield gw
    finally:
        gw.stop()
