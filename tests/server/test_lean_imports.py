"""Libraries only some gateways use load in the code path that needs them: a gateway started with the
default SQLite store and an OpenAI deployment, which then serves a request, never imports them (every
worker process would hold them otherwise: ~60 MB, and most of its start-up time). A gateway whose
configuration uses one (a Bedrock deployment, MCP servers it may reach) loads it at start-up instead,
so that no first request waits for the import on the event loop."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.process import REPO

OPTIONAL = ("mcp", "botocore", "google.auth", "lark", "tiktoken", "cryptography", "asyncpg", "redis")

# Starts the gateway in process, optionally sends one request, prints which OPTIONAL modules loaded.
_PROBE = """
import asyncio, json, sys, urllib.request
from responses_gateway.app import Gateway, Listen
from responses_gateway.config import load_config
from responses_gateway.store.factory import key_store
import responses_gateway.cli

async def main(request):
    gw = Gateway(load_config(sys.argv[1]), Listen("127.0.0.1", 0, 0, grace_seconds=1))
    await gw.start()
    key_store(gw.store)
    if request:
        body = json.dumps({"model": "m", "input": "hi", "mock_response": "hello"}).encode()
        def post():
            r = urllib.request.Request(
                f"http://127.0.0.1:{gw.http_port}/v1/responses", body, {"content-type": "application/json"}
            )
            return json.load(urllib.request.urlopen(r, timeout=30))
        answer = await asyncio.to_thread(post)
        assert answer["status"] == "completed", answer
    await gw.stop()

asyncio.run(main(sys.argv[3] == "request"))
names = json.loads(sys.argv[2])
print(json.dumps(sorted({m.split(".")[0] if m.split(".")[0] != "google" else "google.auth"
                         for m in sys.modules for n in names if m == n or m.startswith(n + ".")})))
"""


def _openai() -> dict[str, Any]:
    return {
        "model_name": "m",
        "litellm_params": {"model": "openai/gpt-4.1", "api_base": "http://127.0.0.1:9/v1", "api_key": "sk-x"},
    }


def _loaded(tmp_path: Path, config: dict[str, Any], *, request: bool) -> list[str]:
    config.setdefault("gateway_settings", {})["store"] = {"path": str(tmp_path / "r.db")}
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(config))
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), json.dumps(OPTIONAL), "request" if request else "start"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def test_a_plain_gateway_imports_no_optional_library(tmp_path: Path) -> None:
    assert _loaded(tmp_path, {"model_list": [_openai()]}, request=True) == []


def test_what_the_configuration_uses_loads_at_start_up(tmp_path: Path) -> None:
    bedrock = {
        "model_name": "b",
        "litellm_params": {
            "model": "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
            "aws_access_key_id": "AKIDEXAMPLE",
            "aws_secret_access_key": "secret",
            "aws_region_name": "us-east-1",
        },
    }
    config = {
        "model_list": [_openai(), bedrock],
        "mcp_servers": {"docs": {"url": "http://docs.internal/mcp"}},
    }
    loaded = _loaded(tmp_path, config, request=False)
    assert "botocore" in loaded and "mcp" in loaded
    assert "google.auth" not in loaded and "lark" not in loaded
