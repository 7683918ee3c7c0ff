"""The TypeScript client (`clients/typescript`) against a real gateway process and the fake OpenAI upstream.

Installs the client's locked npm dependencies when `node_modules` is missing or older than the lock (`npm ci`), builds it
(`npm run build`), starts the fake upstream and the gateway (see test_python_client.run_gateway), then runs
`node --test` on the compiled tests with the gateway's address and key in the environment
(GATEWAY_ADDR, GATEWAY_KEY, plus two extra models whose upstream rate-limits / streams an error event).
Node and npm are required: without them the test fails, it is not skipped.

test_typescript_client_from_a_new_project installs the package as clients/typescript/README.md tells another
project to: `npm pack` (which builds it), then `npm install <tarball>` in fresh projects in a temp directory
(and, the other way, `npm install <path to clients/typescript>`), type-checks a copy of examples/newproject and
runs it against a gateway. npm's own cache is reused (`--prefer-offline`), so only cache misses reach the registry.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fakes.openai_upstream import serve_openai
from tests.support.process import run_gateway

ROOT = Path(__file__).resolve().parents[2]
TS_DIR = ROOT / "clients" / "typescript"
MASTER_KEY = "sk-gw"
UPSTREAM_KEY = "sk-fake-upstream-key-000000000000"
# Extra routes to the fake's error scenarios (it picks the scenario from the model `scenario-<name>`).
RATE_LIMITED_MODEL = "ts-rate-limited"
ERROR_EVENT_MODEL = "ts-error-event"
_NPM_TIMEOUT = 600
_TEST_TIMEOUT = 300


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: the TypeScript client test needs Node.js >= 20 and npm on PATH"
        )
    return path


def _run(cmd: list[str], timeout: float, cwd: Path = TS_DIR) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )
    if result.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` in {cwd} exited {result.returncode}:\n{result.stdout}")
    return result


def _node_and_npm() -> tuple[str, str]:
    node, npm = _tool("node"), _tool("npm")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    major = int(re.match(r"v(\d+)", version).group(1))  # type: ignore[union-attr]
    if major < 20:
        pytest.fail(f"the TypeScript client needs Node.js >= 20, found {version}")
    return node, npm


QUIET = ["--no-audit", "--no-fund", "--loglevel=error"]


def _install_locked(npm: str) -> None:
    """`npm ci` when node_modules is missing or older than the lock."""
    installed = TS_DIR / "node_modules" / ".package-lock.json"  # written by npm after each install
    if not installed.exists() or installed.stat().st_mtime < (TS_DIR / "package-lock.json").stat().st_mtime:
        _run([npm, "ci", "--ignore-scripts", *QUIET], _NPM_TIMEOUT)


def _write_config(path: Path, api_base: str) -> None:
    params = f"api_base: '{api_base}', api_key: '{UPSTREAM_KEY}'"
    path.write_text(
        "model_list:\n"
        f"  - {{model_name: gpt-4.1, litellm_params: {{model: openai/gpt-4.1, {params}}}}}\n"
        f"  - {{model_name: {RATE_LIMITED_MODEL}, litellm_params: {{model: openai/scenario-error-429, {params}}}}}\n"
        f"  - {{model_name: {ERROR_EVENT_MODEL}, litellm_params: {{model: openai/scenario-error_event, {params}}}}}\n"
        f"general_settings: {{master_key: {MASTER_KEY}}}\n"
        f"gateway_settings: {{store: {{path: '{path.parent / 'db.sqlite'}'}}}}\n"
    )


def test_typescript_client_against_live_gateway(tmp_path: Path) -> None:
    node, npm = _node_and_npm()
    _install_locked(npm)
    _run([npm, "run", "build", "--silent"], _NPM_TIMEOUT)
    tests = sorted(str(p.relative_to(TS_DIR)) for p in (TS_DIR / "dist" / "test").glob("*.test.js"))
    assert tests, "the build produced no dist/test/*.test.js"

    config = tmp_path / "gateway.yaml"
    with serve_openai(api_key=UPSTREAM_KEY) as fake:
        _write_config(config, fake.api_base)
        with run_gateway(config) as gateway:
            env = dict(os.environ)
            env.update(
                GATEWAY_ADDR=f"http://{gateway.target}",
                GATEWAY_KEY=MASTER_KEY,
                GATEWAY_RATE_LIMITED_MODEL=RATE_LIMITED_MODEL,
                GATEWAY_ERROR_EVENT_MODEL=ERROR_EVENT_MODEL,
            )
            result = subprocess.run(
                [node, "--test", "--test-reporter=tap", *tests],
                cwd=TS_DIR,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=_TEST_TIMEOUT,
            )
    output = result.stdout
    assert result.returncode == 0, (
        f"node --test failed:\n{output}\n--- gateway output ---\n{''.join(gateway.output)}"
    )
    # Every live test ran: none skipped (a skip would mean GATEWAY_* did not reach the tests).
    counts = {
        k: int(v) for k, v in re.findall(r"^# (tests|pass|fail|skipped|cancelled) (\d+)$", output, re.M)
    }
    assert counts.get("fail") == 0 and counts.get("cancelled") == 0, output
    assert counts.get("skipped") == 0, f"some tests were skipped:\n{output}"
    assert counts.get("pass", 0) >= 12 and counts["pass"] == counts["tests"], output


# ------------------------------------------------------------------------------- from a brand-new project
EXAMPLE = TS_DIR / "examples" / "newproject"
PACKAGE = "@responses-gateway/client"
MOCK_TEXT = "Hello from the new project test."


def _new_project(npm: str, root: Path, name: str, install: str) -> Path:
    """A fresh project holding a copy of examples/newproject (less its dependency on the client), into which
    `npm install <install>` puts the client, then compiled with its own TypeScript."""
    project = root / name
    project.mkdir()
    shutil.copy(EXAMPLE / "main.ts", project)
    shutil.copy(EXAMPLE / "tsconfig.json", project)
    manifest = json.loads((EXAMPLE / "package.json").read_text())
    assert PACKAGE in manifest.pop("dependencies"), "examples/newproject/package.json does not use the client"
    manifest["name"] = name
    (project / "package.json").write_text(json.dumps(manifest, indent=2))
    _run([npm, "install", "--prefer-offline", *QUIET, install], _NPM_TIMEOUT, cwd=project)
    spec = json.loads((project / "package.json").read_text())["dependencies"][PACKAGE]
    assert spec.startswith("file:"), spec
    _run([str(project / "node_modules" / ".bin" / "tsc"), "-p", "."], _NPM_TIMEOUT, cwd=project)
    return project


def test_typescript_client_from_a_new_project(tmp_path: Path) -> None:
    node, npm = _node_and_npm()
    _install_locked(npm)  # the build run by `npm pack` (prepack) needs the dev dependencies
    packs = tmp_path / "packs"
    packs.mkdir()
    packed = _run([npm, "pack", "--json", "--pack-destination", str(packs), "--loglevel=error"], _NPM_TIMEOUT)
    # The lifecycle scripts' output precedes the JSON on stdout.
    info = json.loads(packed.stdout[packed.stdout.index("[\n") :])[0]
    tarball = packs / info["filename"]
    files = {f["path"] for f in info["files"]}
    assert {"dist/src/index.js", "dist/src/index.d.ts", "package.json"} <= files, sorted(files)
    assert not any(f.startswith("dist/test/") for f in files), sorted(files)

    projects = tmp_path / "projects"  # outside the repository
    projects.mkdir()
    installed = {
        "tarball": _new_project(npm, projects, "from-tarball", str(tarball)),
        # A `file:` path to the (built) checkout: npm links it, so it runs on the checkout's node_modules.
        "path": _new_project(npm, projects, "from-path", str(TS_DIR)),
    }
    assert not (installed["tarball"] / "node_modules" / PACKAGE).is_symlink()  # unpacked, self-contained

    config = tmp_path / "gateway.yaml"
    config.write_text(
        "model_list:\n"
        f"  - {{model_name: mock, litellm_params: {{model: openai/mock, mock_response: '{MOCK_TEXT}'}}}}\n"
        f"general_settings: {{master_key: {MASTER_KEY}}}\n"
        f"gateway_settings: {{store: {{path: '{tmp_path / 'db.sqlite'}'}}}}\n"
    )
    with run_gateway(config) as gateway:
        env = {**os.environ, "GATEWAY_ADDR": f"http://{gateway.target}", "GATEWAY_KEY": MASTER_KEY}
        runs = {
            how: subprocess.run(
                [node, "dist/main.js"], cwd=project, env=env, capture_output=True, text=True, timeout=60
            )
            for how, project in installed.items()
        }
    for how, run in runs.items():
        assert run.returncode == 0, f"{how}: exit {run.returncode}\n{run.stdout}\n{run.stderr}"
        created, streamed, final, error = run.stdout.splitlines()
        assert re.fullmatch(rf"created: resp_\w+ COMPLETED {MOCK_TEXT}", created), run.stdout
        assert streamed == f"streamed: {MOCK_TEXT}", run.stdout
        assert re.fullmatch(r"final: resp_\w+ COMPLETED", final), run.stdout
        assert error == "error: true NOT_FOUND MODEL_NOT_FOUND model", run.stdout
