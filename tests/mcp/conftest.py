"""Fixtures of the MCP tests: the test MCP servers (one open, one that wants a secret header), the
scripted model upstreams, and one real gateway process in front of them (tests/support/process.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes.server import serve_app
from tests.mcp.mcp_server import McpFixture, mcp_server
from tests.mcp.models import ScriptedAnthropic, ScriptedOpenAI
from tests.support.process import GatewayProcess, clean_env

SECRET = "mcp-secret-7f3a9c1d2e"
OPENAI_KEY = "sk-test-openai-0123456789"


@dataclass
class Env:
    gateway: GatewayProcess
    mcp: McpFixture  # open, allowed by gateway_settings.mcp.allowed_server_urls
    secured: McpFixture  # registered as mcp_servers.secured, wants X-Api-Key
    sse: McpFixture  # registered as mcp_servers.sse, over the SSE transport
    anthropic: ScriptedAnthropic
    openai: ScriptedOpenAI
    anthropic_base: str


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp: Path = tmp_path_factory.mktemp("mcp")
    anthropic, openai = ScriptedAnthropic(), ScriptedOpenAI(OPENAI_KEY)
    with (
        mcp_server() as mcp,
        mcp_server(secret=SECRET) as secured,
        mcp_server(sse=True) as over_sse,
        anthropic.serve() as anth_base,
        serve_app(openai.app) as oai_base,
    ):
        config = {
            "model_list": [
                {
                    "model_name": "claude",
                    "litellm_params": {
                        "model": "anthropic/claude-test",
                        "api_base": anth_base,
                        "api_key": "test-key",
                    },
                },
                {
                    "model_name": "gpt",
                    "litellm_params": {
                        "model": "openai/gpt-test",
                        "api_base": f"{oai_base}/v1",
                        "api_key": OPENAI_KEY,
                        "mcp_execution": "gateway",
                    },
                },
            ],
            "gateway_settings": {
                "store": {"type": "sqlite", "path": str(tmp / "store.db")},
                "mcp": {
                    # Any loopback MCP endpoint, and (to show they are refused anyway) a metadata IP.
                    "allowed_server_urls": ["http://127.0.0.1:*/mcp", "http://169.254.169.254/*"],
                    "max_rounds": 3,
                    "call_timeout_seconds": 2,
                    "max_output_bytes": 50_000,
                },
            },
            "mcp_servers": {
                "secured": {
                    "url": secured.url,
                    "transport": "http",
                    "auth_type": "api_key",
                    "authentication_token": "os.environ/TEST_MCP_SECRET",
                },
                "sse": {"url": over_sse.sse_url, "transport": "sse"},
            },
        }
        (tmp / "gateway.json").write_text(json.dumps(config))
        gw = GatewayProcess(tmp / "gateway.json", cwd=tmp, env=clean_env(TEST_MCP_SECRET=SECRET), grace=1)
        gw.start()
        try:
            yield Env(gw, mcp, secured, over_sse, anthropic, openai, anth_base)
        finally:
            gw.stop()


@pytest.fixture
def http(env: Env) -> Iterator[httpx.Client]:
    env.mcp.calls.clear()
    env.secured.calls.clear()
    env.sse.calls.clear()
    env.anthropic.requests.clear()
    env.openai.requests.clear()
    with httpx.Client(base_url=f"{env.gateway.http_base}/v1", timeout=30) as client:
        yield client
