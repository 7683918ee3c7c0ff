"""The Go client (clients/go) against a real gateway process and the fake OpenAI upstream.

Starts `tests/fakes/openai_upstream.py` and the gateway (`responses-gateway serve`, OS-picked loopback ports,
master key `sk-gw`), waits for its gRPC health check, then runs `go test ./...` in clients/go with
GATEWAY_ADDR / GATEWAY_KEY / GATEWAY_MODEL / GATEWAY_RATE_LIMITED_MODEL set (see clients/go/gateway/gateway_test.go).

test_go_client_from_a_new_project uses the client as another project must while the module is unpublished
(clients/go/README.md): fresh modules in a temp directory, one with a `replace` to clients/go, one in a go.work
with it, each building a copy of clients/go/examples/newproject/main.go and running it against a gateway.

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


# ------------------------------------------------------------------------------- from a brand-new project
MODULE_PATH = "github.com/responses-gateway/responses-gateway/clients/go"
EXAMPLE = GO_MODULE / "examples" / "newproject"
MOCK_TEXT = "Hello from the new project test."


def run_in(
    go: str, cwd: Path, *args: str, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run `go ARGS` in `cwd`; return the result and a printable transcript."""
    result = subprocess.run(
        [go, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=_GO_TEST_TIMEOUT
    )
    return (
        result,
        f"$ (cd {cwd} && go {' '.join(args)})  exit {result.returncode}\n{result.stdout}\n{result.stderr}",
    )


def new_project(go: str, root: Path, name: str, env: dict[str, str]) -> Path:
    """A fresh module outside the repository holding a copy of examples/newproject/main.go."""
    project = root / name
    project.mkdir()
    shutil.copy(EXAMPLE / "main.go", project / "main.go")
    result, report = run_in(go, project, "mod", "init", f"example.com/{name}", env=env)
    assert result.returncode == 0, report
    return project


def test_go_client_from_a_new_project(tmp_path: Path) -> None:
    """The two ways clients/go/README.md gives to use the unpublished module, done as a user would."""
    go = go_binary()
    base = {k: v for k, v in os.environ.items() if k != "GOWORK"}
    # The example as committed: its go.mod (replace => ../..) and go.sum are complete.
    vet, report = run_in(go, EXAMPLE, "vet", ".", env={**base, "GOWORK": "off"})
    assert vet.returncode == 0, f"examples/newproject does not build in place:\n{report}"

    projects = tmp_path / "projects"  # outside the repository: nothing of it is found by walking up
    projects.mkdir()
    binaries: dict[str, Path] = {}

    # 1. A replace directive to the checkout, then `go mod tidy` fills in the require and the sums.
    env = {**base, "GOWORK": "off"}
    project = new_project(go, projects, "withreplace", env)
    for args in (
        ("mod", "edit", f"-replace={MODULE_PATH}={GO_MODULE}"),
        ("mod", "tidy"),
        ("build", "-o", "app", "."),
    ):
        result, report = run_in(go, project, *args, env=env)
        assert result.returncode == 0, report
    go_mod = (project / "go.mod").read_text()
    assert f"replace {MODULE_PATH} => {GO_MODULE}" in go_mod and f"\t{MODULE_PATH} v0.0.0-" in go_mod, go_mod
    binaries["replace"] = project / "app"

    # 2. A go.work listing the project and the checkout (no require needed; `go mod tidy` would fail).
    project = new_project(go, projects, "withworkspace", base)
    for args in (("work", "init", ".", str(GO_MODULE)), ("build", "-o", "app", ".")):
        result, report = run_in(go, project, *args, env=base)
        assert result.returncode == 0, report
    binaries["workspace"] = project / "app"

    config = tmp_path / "gateway.yaml"
    config.write_text(
        "model_list:\n"
        f"  - {{model_name: mock, litellm_params: {{model: openai/mock, mock_response: '{MOCK_TEXT}'}}}}\n"
        f"general_settings: {{master_key: {MASTER_KEY}}}\n"
        f"gateway_settings: {{store: {{path: '{tmp_path / 'db.sqlite'}'}}}}\n"
    )
    with run_gateway(config) as gateway:
        env = {**base, "GATEWAY_ADDR": gateway.target, "GATEWAY_KEY": MASTER_KEY, "GATEWAY_MODEL": "mock"}
        runs = {
            how: subprocess.run([str(app)], env=env, capture_output=True, text=True, timeout=120)
            for how, app in binaries.items()
        }
    for how, run in runs.items():
        assert run.returncode == 0, f"{how}: exit {run.returncode}\n{run.stdout}\n{run.stderr}"
        lines = run.stdout.splitlines()
        assert len(lines) == 4, f"{how}:\n{run.stdout}"
        created, streamed, final, error = lines
        assert created.startswith("created: resp_") and created.endswith(
            f" RESPONSE_STATUS_COMPLETED {MOCK_TEXT}"
        ), run.stdout
        assert streamed == f"streamed: {MOCK_TEXT}", run.stdout
        assert final.startswith("final: resp_") and final.endswith(" RESPONSE_STATUS_COMPLETED"), run.stdout
        assert error == "error: NotFound MODEL_NOT_FOUND model", run.stdout
