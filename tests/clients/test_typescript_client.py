"""The TypeScript client (`clients/typescript`) against a real gateway process and the fake OpenAI upstream.

Installs the client's locked npm dependencies when `node_modules` is missing or older than the lock (`npm ci`), builds it
(`npm run build`), starts the fake upstream and the gateway (see test_python_client.run_gateway), then runs
`node --test` on the compiled tests with the gateway's address and key in the environment
(GATEWAY_ADDR, GATEWAY_KEY, plus two extra models whose upstream rate-limits / streams an error event).
Node and npm are required: without them the test fails, it is not skipped.
"""

from __future__ import annotations

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


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd, cwd=TS_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )
    if result.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` in {TS_DIR} exited {result.returncode}:\n{result.stdout}")
    return result


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
    node, npm = _tool("node"), _tool("npm")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    major = int(re.match(r"v(\d+)", version).group(1))  # type: ignore[union-attr]
    if major < 20:
        pytest.fail(f"the TypeScript client needs Node.js >= 20, found {version}")

    quiet = ["--no-audit", "--no-fund", "--loglevel=error"]
    installed = TS_DIR / "node_modules" / ".package-lock.json"  # written by npm after each install
    if not installed.exists() or installed.stat().st_mtime < (TS_DIR / "package-lock.json").stat().st_mtime:
        _run([npm, "ci", "--ignore-scripts", *quiet], _NPM_TIMEOUT)
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
