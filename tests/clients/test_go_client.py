"""The Go client (clients/go) against a real gateway process and the fake OpenAI upstream.

Starts `tests/fakes/openai_upstream.py` and the gateway (`responses-gateway serve`, OS-picked loopback ports,
master key `sk-gw`), waits for its gRPC health check, then runs `go test ./...` in clients/go with
GATEWAY_ADDR / GATEWAY_KEY / GATEWAY_MODEL / GATEWAY_RATE_LIMITED_MODEL set (see clients/go/gateway/gateway_test.go).

Needs the Go toolchain (`go` on PATH, or $GO); without it the test fails rather than skips. The first run
downloads the client's modules and compiles grpc-go (about a minute on a 2-core machine); the default Go
module and build caches (GOMODCACHE / GOCACHE, override them through the environment) keep later runs fast.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.fakes.openai_upstream import serve_openai
from tests.support.process import run_gateway

ROOT = Path(__file__).resolve().parents[2]
GO_MODULE = ROOT / "clients" / "go"
MASTER_KEY = "sk-gw"
UPSTREAM_KEY = "sk-fake-upstream-key-000000000000"
MODEL = "gpt-4.1"
RATE_LIMITED_MODEL = "rate-limited"  # upstream model `scenario-error-429`: the fake always answers 429
_GO_TEST_TIMEOUT = 900.0  # first run: module download + compiling grpc-go


def go_binary() -> str:
    go = os.environ.get("GO") or shutil.which("go")
    if not go or not (shutil.which(go) or Path(go).is_file()):
        pytest.fail(
            "the Go toolchain is required for the Go client tests but `go` was not found on PATH "
            "(install Go >= the `go` line of clients/go/go.mod, or set GO=/path/to/go)",
            pytrace=False,
        )
    return go


def write_config(path: Path, api_base: str) -> None:
    params = f"api_base: '{api_base}', api_key: '{UPSTREAM_KEY}'"
    path.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        f"    litellm_params: {{model: openai/{MODEL}, {params}}}\n"
        f"  - model_name: {RATE_LIMITED_MODEL}\n"
        f"    litellm_params: {{model: openai/scenario-error-429, {params}}}\n"
        f"general_settings: {{master_key: {MASTER_KEY}}}\n"
        f"gateway_settings: {{store: {{path: '{path.parent / 'db.sqlite'}'}}}}\n"
    )


def run_go(
    go: str, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run `go ARGS` in clients/go; return the result and a printable transcript."""
    started = time.monotonic()
    result = subprocess.run(
        [go, *args], cwd=GO_MODULE, env=env, capture_output=True, text=True, timeout=_GO_TEST_TIMEOUT
    )
    elapsed = time.monotonic() - started
    return (
        result,
        f"$ go {' '.join(args)}  ({elapsed:.1f}s, exit {result.returncode})\n{result.stdout}\n{result.stderr}",
    )


def test_go_client(tmp_path: Path) -> None:
    go = go_binary()
    # Build first (downloads modules, compiles grpc-go on a cold cache), so that a build failure is reported
    # as one and the gateway is not left idle meanwhile; the run below reuses the built test binary.
    build, report = run_go(go, "test", "-count=1", "-run=^$", "./...")
    assert build.returncode == 0, f"building the Go client failed:\n{report}"
    vet, report = run_go(go, "vet", "./...")
    assert vet.returncode == 0, f"go vet failed:\n{report}"
    gofmt = Path(go).resolve().parent / "gofmt"
    if gofmt.exists():
        unformatted = subprocess.run([str(gofmt), "-l", "."], cwd=GO_MODULE, capture_output=True, text=True)
        assert unformatted.returncode == 0 and not unformatted.stdout, (
            f"gofmt: not formatted:\n{unformatted.stdout}"
        )

    config = tmp_path / "gateway.yaml"
    with serve_openai(api_key=UPSTREAM_KEY) as fake:  # no fake.scenario: it would override `scenario-<name>`
        write_config(config, fake.api_base)
        with run_gateway(config) as gateway:
            env = dict(os.environ)
            env.update(
                GATEWAY_ADDR=gateway.target,
                GATEWAY_KEY=MASTER_KEY,
                GATEWAY_MODEL=MODEL,
                GATEWAY_RATE_LIMITED_MODEL=RATE_LIMITED_MODEL,
            )
            # -count=1: never reuse a cached result, the live gateway is the point.
            result, report = run_go(go, "test", "-count=1", "-timeout=300s", "-v", "./...", env=env)
    assert result.returncode == 0, f"go test failed:\n{report}"
    # The live tests must have run, not skipped: GATEWAY_ADDR was set.
    assert "--- SKIP" not in result.stdout, f"some Go tests were skipped:\n{report}"
    assert "--- PASS: TestStream " in result.stdout, report
