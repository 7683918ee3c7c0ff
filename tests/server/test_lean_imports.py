"""Libraries only some gateways use load in the code path that needs them: a gateway started with the
default SQLite store and an OpenAI deployment, which then serves a request, never imports them (every
worker process would hold them otherwise: ~60 MB, and most of its start-up time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.process import REPO

OPTIONAL = ("mcp", "botocore", "google.auth", "lark", "tiktoken", "cryptography", "asyncpg", "redis")

_PROBE = """
import asyncio, json, sys, urllib.request
from responses_gateway.app import Gateway, Listen
from responses_gateway.config import load_config
from responses_gateway.store.factory import key_store
import responses_gateway.cli

async def main():
    gw = Gateway(load_config(sys.argv[1]), Listen("127.0.0.1", 0, 0, grace_seconds=1))
    await gw.start()
    key_store(gw.store)
    body = json.dumps({"model": "m", "input": "hi", "mock_response": "hello"}).encode()
    def post():
        request = urllib.request.Request(
            f"http://127.0.0.1:{gw.http_port}/v1/responses", body, {"content-type": "application/json"}
        )
        return json.load(urllib.request.urlopen(request, timeout=30))
    answer = await asyncio.to_thread(post)
    assert answer["status"] == "completed", answer
    await gw.stop()

asyncio.run(main())
loaded = sorted({m for m in sys.modules for name in json.loads(sys.argv[2]) if m == name or m.startswith(name + ".")})
print(json.dumps(loaded))
"""


def test_a_plain_gateway_imports_no_optional_library(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        json.dumps(
            {
                "model_list": [
                    {
                        "model_name": "m",
                        "litellm_params": {
                            "model": "openai/gpt-4.1",
                            "api_base": "http://127.0.0.1:9/v1",
                            "api_key": "sk-x",
                        },
                    }
                ],
                "gateway_settings": {"store": {"path": str(tmp_path / "r.db")}},
            }
        )
    )
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(config), json.dumps(OPTIONAL)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
