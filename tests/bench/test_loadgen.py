"""bench/loadgen, the scaling line's Go load generator: built with `go build` as the bench builds it, run
briefly against a real gateway (`serve`, one worker) in front of the real fast upstream, and against a
port nothing listens on. Its JSON line's counts are asserted, never its timings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench import procs
from tests.bench.conftest import MODEL, free_port, run_generator
from tests.support.process import GatewayProcess


@pytest.fixture(scope="module")
def loadgen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # No skip when `go` is missing: the bench needs it, and it is on every machine that runs this.
    return procs.go_build("loadgen", tmp_path_factory.mktemp("go") / "loadgen")


@pytest.fixture(scope="module")
def gateway_url(bench_gateway: GatewayProcess) -> str:
    return f"{bench_gateway.http_base}/v1/responses"


def run(binary: Path, url: str, *args: str) -> dict[str, Any]:
    return run_generator([str(binary), "-url", url, *args])


def test_every_request_is_answered_through_the_gateway(loadgen: Path, gateway_url: str) -> None:
    body = json.dumps({"model": MODEL, "input": "Say hello."})
    result = run(loadgen, gateway_url, "-body", body, "-n", "300", "-c", "4", "-warmup", "20")
    assert result["requests"] == 300  # the timed phase only: the 20 warm-up requests are not counted
    assert result["errors"] == 0 and result["first_error"] == ""
    assert result["wall_s"] > 0 and result["rps"] > 0 and result["cpu_s"] >= 0
    assert 0 < result["p50_ms"] <= result["p90_ms"] <= result["p99_ms"]


def test_a_rejected_request_counts_as_an_error_with_its_status(loadgen: Path, gateway_url: str) -> None:
    body = json.dumps({"model": "no-such-model", "input": "Say hello."})
    result = run(loadgen, gateway_url, "-body", body, "-n", "10", "-c", "2")
    assert result["requests"] == 10 and result["errors"] == 10
    assert result["first_error"].startswith("HTTP 4"), result  # the gateway's status, then its body
    assert result["p50_ms"] is None  # no successful request to take a percentile of


def test_an_unreachable_url_gives_transport_errors(loadgen: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/responses"
    result = run(loadgen, url, "-n", "20", "-c", "4")
    assert result["requests"] == 20 and result["errors"] == 20 and result["rps"] == 0
    assert "connection refused" in result["first_error"], result


def test_bad_flags_exit_2_without_a_json_line(loadgen: Path) -> None:
    done = subprocess.run([str(loadgen), "-n", "5"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert "-url is required" in done.stderr
