"""The real server, booted with the exact command and config the chart renders, so chart and program
cannot drift apart: the rendered probes, a response, `/metrics`, SIGTERM, the store values, and the
liveness probe against a failing store. Needs the server installed in `.venv`.

The tests that take the module-scoped `booted` fixture share one server per boot case: keep them all
in this module, or the servers are booted again.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.helm.booting import (
    BOOT_CASES,
    VENV_PYTHON,
    Booted,
    boot,
    boot_values,
    grpc_health,
    rendered_config,
)
from tests.helm.chart import CHART, HEALTH_SERVICE, arg_value, gateway_container, one, render
from tests.support.sqlite_full import fill_up, make_room


@pytest.fixture(scope="module", params=BOOT_CASES)
def booted(
    request: pytest.FixtureRequest, helm: Path, example_chart: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Booted]:
    server = boot(helm, tmp_path_factory.mktemp(f"boot-{request.param}"), example_chart, request.param)
    yield server
    server.kill()


def test_boot_rendered_probes_pass(booted: Booted) -> None:
    """The probes exactly as rendered: grpc as kubelet sends them, exec run as in the container."""
    for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = booted.container[probe_name]
        if "grpc" in probe:
            assert grpc_health(booted.grpc_target, probe["grpc"].get("service", "")) == "SERVING", probe_name
        else:
            cmd = list(probe["exec"]["command"])
            assert cmd[0] == "python"
            cmd[0], cmd[3] = str(VENV_PYTHON), booted.grpc_target
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=probe["timeoutSeconds"] + 5)
            assert result.returncode == 0, f"{probe_name} failed: {result.stdout}{result.stderr}"
    assert grpc_health(booted.grpc_target, HEALTH_SERVICE) == "SERVING"


def test_boot_rest_healthz_and_a_response(booted: Booted) -> None:
    import httpx

    with httpx.Client(base_url=booted.http_base, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        reply = client.post("/v1/responses", json={"model": "mock", "input": "ping"})
        assert reply.status_code == 200, reply.text
        assert "pong from the chart" in reply.text
    # The store writes to the data volume (the only writable path besides /tmp).
    assert any(booted.data_dir.iterdir()), "nothing written under the data volume"


def test_boot_metrics_path_served(booted: Booted) -> None:
    """What the ServiceMonitor scrapes: metrics.serviceMonitor.path on the http port."""
    import httpx

    path = yaml.safe_load((CHART / "values.yaml").read_text())["metrics"]["serviceMonitor"]["path"]
    reply = httpx.get(booted.http_base + path, timeout=10)
    assert reply.status_code == 200, (
        f"GET {path} -> {reply.status_code}: the ServiceMonitor would scrape nothing"
    )
    assert reply.text.strip()


@pytest.mark.parametrize("case", BOOT_CASES)
def test_boot_sigterm_drains_and_exits_zero(
    helm: Path, tmp_path: Path, example_chart: Path, case: str
) -> None:
    """SIGTERM (what kubelet sends) ends the server cleanly within the rendered --grace."""
    server = boot(helm, tmp_path, example_chart, case)
    try:
        grace = float(arg_value(server.argv, "--grace"))
        # Fully up (REST answering too) before the signal: SERVING is reported a moment before the
        # server installs its SIGTERM handler, a window kubelet's startup probe makes moot.
        import httpx

        assert httpx.get(server.http_base + "/healthz", timeout=10).status_code == 200
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        try:
            code = server.proc.wait(timeout=grace + 10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {grace + 10:.0f}s after SIGTERM:\n{server.log()}", pytrace=False)
        assert code == 0, f"exit status {code} after SIGTERM:\n{server.log()}"
    finally:
        server.kill()


def test_boot_separate_metrics_port(helm: Path, tmp_path: Path, example_chart: Path) -> None:
    """metrics.port as rendered: /metrics answers there (what the ServiceMonitor's `metrics` port
    scrapes), and no longer on the REST port."""
    import httpx

    server = boot(helm, tmp_path, example_chart, "service", {"metrics": {"port": 9090}})
    try:
        port = server.config["gateway_settings"]["metrics"]["port"]
        path = yaml.safe_load((CHART / "values.yaml").read_text())["metrics"]["serviceMonitor"]["path"]
        reply = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
        assert reply.status_code == 200 and reply.text.strip(), reply.text
        assert httpx.get(server.http_base + path, timeout=10).status_code == 404
    finally:
        server.kill()


def test_boot_store_ttl_and_lease(helm: Path, tmp_path: Path, example_chart: Path) -> None:
    """store.ttl / store.leaseSeconds as rendered are keys the server accepts, and it serves."""
    import httpx

    server = boot(helm, tmp_path, example_chart, "service", {"store": {"ttl": "30d", "leaseSeconds": 15}})
    try:
        store = server.config["gateway_settings"]["store"]
        assert (store["ttl"], store["lease_seconds"]) == ("30d", 15)
        reply = httpx.post(
            server.http_base + "/v1/responses", json={"model": "mock", "input": "ping"}, timeout=10
        )
        assert reply.status_code == 200, reply.text
        assert (
            httpx.get(f"{server.http_base}/v1/responses/{reply.json()['id']}", timeout=10).status_code == 200
        )
    finally:
        server.kill()


def wait_for_status(target: str, service: str, want: str, seconds: float = 15) -> None:
    deadline, status = time.monotonic() + seconds, ""
    while time.monotonic() < deadline:
        status = grpc_health(target, service)
        if status == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"health of {service!r} is {status}, not {want}, after {seconds} s")


def test_liveness_probe_survives_a_failing_store(helm: Path, tmp_path: Path) -> None:
    """The probes' health services as rendered, against a gateway whose store fills up: readiness
    goes NOT_SERVING (the pod leaves the endpoints), liveness and start-up stay SERVING (no restart),
    and readiness comes back when the store does. An in-process gateway, so the test can reach its
    store; the health checks go over a real gRPC channel."""
    import httpx

    from tests.support.inprocess import InProcessGateway

    values = boot_values()
    values["config"]["gateway_settings"] = {"store": {"probe_seconds": 0.2}}  # passes through
    docs = render(helm, tmp_path, values)
    container = gateway_container(one(docs, "Deployment"))
    services = {
        p: container[p]["grpc"].get("service", "")
        for p in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config = rendered_config(docs, container, data_dir)
    assert config["gateway_settings"]["store"]["probe_seconds"] == 0.2
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(yaml.safe_dump(config))

    gw = InProcessGateway(config_path)
    try:
        for service in services.values():
            assert grpc_health(gw.grpc_target, service) == "SERVING"
        gw.run(gw.gw.store.run_raw(fill_up))
        wait_for_status(gw.grpc_target, services["readinessProbe"], "NOT_SERVING")
        assert httpx.get(gw.http_base + "/healthz", timeout=10).status_code == 503
        assert grpc_health(gw.grpc_target, services["livenessProbe"]) == "SERVING"
        assert grpc_health(gw.grpc_target, services["startupProbe"]) == "SERVING"
        gw.run(gw.gw.store.run_raw(make_room))
        wait_for_status(gw.grpc_target, services["readinessProbe"], "SERVING")
    finally:
        gw.close()
