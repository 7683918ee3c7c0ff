"""Fixtures of the tool tests: one real gateway process (tests/support/process.py) in front of a
scripted Anthropic model, an OpenAI upstream with hosted tool search, the recorded-transcript OpenAI
fake (hosted tools), and a real MCP server (tests/mcp/mcp_server.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from responses_gateway.v1 import responses_service_pb2_grpc
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import serve_app
from tests.mcp.mcp_server import McpFixture, mcp_server
from tests.support.process import GatewayProcess, clean_env
from tests.tools.models import HostedSearchOpenAI, StoppingAnthropic

OPENAI_KEY = "sk-test-openai-0123456789"


@dataclass
class Env:
    gateway: GatewayProcess
    mcp: McpFixture
    anthropic: StoppingAnthropic
    hosted: HostedSearchOpenAI  # deployment "gpt-search"
    openai: FakeOpenAI  # deployment "gpt-hosted": recorded transcripts (fake.scenario)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp: Path = tmp_path_factory.mktemp("tools")
    anthropic, hosted, openai = StoppingAnthropic(), HostedSearchOpenAI(OPENAI_KEY), FakeOpenAI(OPENAI_KEY)
    with (
        mcp_server() as mcp,
        anthropic.serve() as anth_base,
        serve_app(hosted.app) as hosted_base,
        openai.serve() as openai_base,
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
                    "model_name": "gpt-search",
                    "litellm_params": {
                        "model": "openai/gpt-5.4",
                        "api_base": f"{hosted_base}/v1",
                        "api_key": OPENAI_KEY,
                    },
                },
                {
                    "model_name": "gpt-hosted",
                    "litellm_params": {
                        "model": "openai/gpt-5",
                        "api_base": f"{openai_base}/v1",
                        "api_key": OPENAI_KEY,
                    },
                },
            ],
            "gateway_settings": {
                "store": {"type": "sqlite", "path": str(tmp / "store.db")},
                "mcp": {"allowed_server_urls": ["http://127.0.0.1:*/mcp"], "max_rounds": 3},
            },
        }
        (tmp / "gateway.json").write_text(json.dumps(config))
        gw = GatewayProcess(tmp / "gateway.json", cwd=tmp, env=clean_env(), grace=1)
        gw.start()
        try:
            yield Env(gw, mcp, anthropic, hosted, openai)
        finally:
            gw.stop()


@pytest.fixture
def http(env: Env) -> Iterator[httpx.Client]:
    env.mcp.calls.clear()
    env.anthropic.requests.clear()
    env.anthropic.stops.clear()
    env.hosted.requests.clear()
    env.openai.reset()
    with httpx.Client(base_url=f"{env.gateway.http_base}/v1", timeout=30) as client:
        yield client


@pytest.fixture
def stub(env: Env) -> Iterator[responses_service_pb2_grpc.ResponsesServiceStub]:
    with grpc.insecure_channel(env.gateway.grpc_target) as channel:
        yield responses_service_pb2_grpc.ResponsesServiceStub(channel)
