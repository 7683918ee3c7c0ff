"""bench/grpcload, the saturated lines' gRPC load generator: built with `go build` as the bench builds it
(its own module, the repo's Go client through a `replace`), run briefly against a real gateway (`serve`,
one worker) in front of the real fast upstream, and against a port nothing listens on. Its JSON line's
counts and errors are asserted, never its timings."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench import procs
from tests.bench.conftest import MODEL, free_port, run_generator
from tests.support.process import GatewayProcess


@pytest.fixture(scope="module")
def grpcload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # No skip when `go` is missing: the bench needs it, and it is on every machine that runs this.
    return procs.go_build("grpcload", tmp_path_factory.mktemp("go") / "grpcload")


@pytest.fixture(scope="module")
def gateway_target(bench_gateway: GatewayProcess) -> str:
    return bench_gateway.grpc_target


def run(binary: Path, target: str, *args: str) -> dict[str, Any]:
    return run_generator([str(binary), "-target", target, *args])


@pytest.mark.parametrize("conns", ["1", "2"])
def test_every_call_is_answered_by_the_gateway(grpcload: Path, gateway_target: str, conns: str) -> None:
    result = run(
        grpcload, gateway_target, "-model", MODEL, "-n", "300", "-c", "4", "-warmup", "20", "-conns", conns
    )
    assert result["requests"] == 300  # the timed phase only: the 20 warm-up calls are not counted
    assert result["errors"] == 0 and result["first_error"] == ""
    assert result["wall_s"] > 0 and result["rps"] > 0 and result["cpu_s"] >= 0
    assert 0 < result["p50_ms"] <= result["p90_ms"] <= result["p99_ms"]


def test_an_unknown_model_counts_as_an_error_with_its_grpc_status(
    grpcload: Path, gateway_target: str
) -> None:
    result = run(grpcload, gateway_target, "-model", "no-such-model", "-n", "10", "-c", "2")
    assert result["requests"] == 10 and result["errors"] == 10 and result["rps"] == 0
    # The canonical code, then the gateway's ErrorInfo reason, then its message.
    assert result["first_error"].startswith("NOT_FOUND MODEL_NOT_FOUND: "), result
    assert "no-such-model" in result["first_error"]
    assert result["p50_ms"] is None  # no successful call to take a percentile of


def test_an_unreachable_port_gives_unavailable_errors(grpcload: Path) -> None:
    result = run(grpcload, f"127.0.0.1:{free_port()}", "-n", "20", "-c", "4")
    assert result["requests"] == 20 and result["errors"] == 20 and result["rps"] == 0
    assert result["first_error"].startswith("UNAVAILABLE: "), result
    assert "connection refused" in result["first_error"]


def test_bad_flags_exit_2_without_a_json_line(grpcload: Path) -> None:
    done = subprocess.run([str(grpcload), "-n", "5"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert "-target is required" in done.stderr
