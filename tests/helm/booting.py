"""Booting the real server with what the chart renders: its command (the image ENTRYPOINT and the
rendered args), its config file and its environment, on loopback ports; health checks over gRPC.

Needs the server installed in `.venv` (make setup).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import CHART, ROOT, arg_value, dockerfile_instruction, gateway_container, one, render

SERVER = ROOT / ".venv" / "bin" / "responses-gateway"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def grpc_health(target: str, service: str, timeout: float = 2.0) -> str:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def remap_paths(node: Any, old_prefix: str, new_prefix: str) -> Any:
    if isinstance(node, dict):
        return {k: remap_paths(v, old_prefix, new_prefix) for k, v in node.items()}
    if isinstance(node, list):
        return [remap_paths(v, old_prefix, new_prefix) for v in node]
    if isinstance(node, str) and (node == old_prefix or node.startswith(old_prefix.rstrip("/") + "/")):
        return new_prefix + node[len(old_prefix.rstrip("/")) :]
    return node


MOCK_MODEL = {
    "model_name": "mock",
    "litellm_params": {"model": "openai/mock", "mock_response": "pong from the chart"},
}


def boot_values() -> dict[str, Any]:
    """Chart defaults plus existingSecret, and a keyless mock model so that a response can round-trip."""
    config = yaml.safe_load((CHART / "values.yaml").read_text())["config"]
    config["model_list"].append(MOCK_MODEL)
    return {"existingSecret": "llm-provider-keys", "config": config}


BOOT_CASES = ("service", "sidecar")  # service: grpc probes, all interfaces; sidecar: loopback, exec probes


class Booted:
    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        log_path: Path,
        container: dict[str, Any],
        grpc_port: int,
        http_port: int,
        data_dir: Path,
        argv: list[str],
        config: dict[str, Any],
    ) -> None:
        self.proc, self.log_path, self.container = proc, log_path, container
        self.grpc_target = f"127.0.0.1:{grpc_port}"
        self.http_base = f"http://127.0.0.1:{http_port}"
        self.data_dir, self.argv, self.config = data_dir, argv, config

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def rendered_config(docs: list[dict[str, Any]], container: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """The rendered config file, with the data volume's mount path moved into `data_dir`."""
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config = yaml.safe_load(one(docs, "ConfigMap")["data"]["gateway.yaml"])
    return dict(remap_paths(config, mounts["gateway-data"], str(data_dir)))


def boot(
    helm: Path, tmp_path: Path, example_chart: Path, case: str, extra: dict[str, Any] | None = None
) -> Booted:
    """Start `.venv/bin/responses-gateway` with the args and the config the chart renders
    (`extra`: more values, service case). A metrics port in the config is moved to a free one.

    Needs the server (`responses-gateway serve`) installed in .venv; fails, never skips, without it.
    """
    if case == "service":
        docs = render(helm, tmp_path, {**boot_values(), **(extra or {})})
        container = gateway_container(one(docs, "Deployment"))
    else:
        values = {"responses-gateway": {"mode": "sidecar", **boot_values()}}
        docs = render(helm, tmp_path, values, "1.29.0", chart=example_chart, release="shop")
        container = gateway_container(one(docs, "Deployment"), "responses-gateway")

    # The command kubelet runs: the container's command, else the image ENTRYPOINT, then args.
    argv = list(container.get("command") or dockerfile_instruction("ENTRYPOINT")) + list(container["args"])
    assert argv[0] == "responses-gateway"
    if not SERVER.exists():
        pytest.fail(
            f"{SERVER} does not exist: install the server into .venv (make setup) "
            "-- these tests boot the real program",
            pytrace=False,
        )
    argv[0] = str(SERVER)

    # Config: the rendered file, with the data volume's mount path moved into the temp dir.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert arg_value(argv, "--config") == mounts["gateway-config"].rstrip("/") + "/gateway.yaml"
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config = rendered_config(docs, container, data_dir)
    if config["gateway_settings"]["metrics"].get("port"):
        config["gateway_settings"]["metrics"]["port"] = free_port()
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(yaml.safe_dump(config))
    grpc_port, http_port = free_port(), free_port()
    for flag, value in (
        ("--config", str(config_path)),
        ("--host", "127.0.0.1"),
        ("--grpc-port", str(grpc_port)),
        ("--http-port", str(http_port)),
    ):
        argv[argv.index(flag) + 1] = value

    # Environment: what the Secret would provide, as dummies; no real provider key leaks in.
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "AZURE_API_KEY"):
        env[var] = "sk-test-not-a-key"
    for e in container.get("env", []):
        env[e["name"]] = e.get("value", "test-secret-value")
    env["TMPDIR"] = str(tmp_path)
    env["PATH"] = f"{SERVER.parent}{os.pathsep}{env.get('PATH', '')}"

    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, cwd=data_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    booted = Booted(proc, log_path, container, grpc_port, http_port, data_dir, argv, config)
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"server exited with {proc.returncode} during startup:\n{booted.log()}", pytrace=False
            )
        try:
            status = grpc_health(booted.grpc_target, "", timeout=1.0)
            if status == "SERVING":
                return booted
        except Exception:  # not listening yet
            pass
        time.sleep(0.25)
    booted.kill()
    pytest.fail(f"gRPC health never SERVING ({status!r}) within 60 s:\n{booted.log()}", pytrace=False)
