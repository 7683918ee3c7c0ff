"""The real gateway as a subprocess (`responses-gateway serve`, ports picked by the OS), for the client
tests: started from a config file, yielded once its gRPC health check says SERVING, stopped after."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"serving gRPC on (\S+):(\d+)")
_START_TIMEOUT = 30.0


@dataclass
class GatewayProcess:
    target: str  # host:port of the gRPC server
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)


def serve_command(config: Path) -> list[str]:
    args = ["serve", "--config", str(config), "--host", "127.0.0.1", "--grpc-port", "0", "--http-port", "0"]
    console_script = ROOT / ".venv" / "bin" / "responses-gateway"
    if console_script.exists():
        return [str(console_script), *args, "--grace", "1"]
    return [sys.executable, "-m", "responses_gateway.cli", *args, "--grace", "1"]


def wait_serving(target: str, deadline: float) -> None:
    """Poll the standard gRPC health check until the gateway reports SERVING."""
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway at {target} is not SERVING")
            time.sleep(0.05)


@contextlib.contextmanager
def run_gateway(config: Path) -> Iterator[GatewayProcess]:
    """Start the gateway; yield it once healthy; stop it (SIGTERM, then SIGKILL) after."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "server"), str(ROOT / "clients/python/src"), str(ROOT), env.get("PYTHONPATH", "")]
    )
    process = subprocess.Popen(
        serve_command(config), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output: list[str] = []
    found: list[str] = []
    listening = threading.Event()

    def pump() -> None:  # keep draining the pipe so the gateway never blocks on a full buffer
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            match = _LISTENING.search(line)
            if match and not found:
                found.append(f"{match.group(1)}:{match.group(2)}")
                listening.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while not listening.wait(0.05):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start:\n" + "".join(output))
        try:
            wait_serving(found[0], deadline)
        except RuntimeError as e:
            raise RuntimeError(f"{e}:\n" + "".join(output)) from None
        yield GatewayProcess(found[0], process, output)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
