"""One gateway subprocess for the telemetry suite: a priced model (the price table), one with the
deployment's own prices, and a mock without any price."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_upstream import FakeOpenAI, make_openai_app
from tests.fakes.server import serve_app
from tests.support.process import GatewayProcess

KEY = "sk-fake-telemetry-0123456789abcdef"
CUSTOM = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "cache_read_input_token_cost": 2.5e-7}


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeOpenAI]:
    with serve_app(f := make_openai_app(KEY)) as url:
        f.base_url = url
        yield f


@pytest.fixture
def upstream(fake: FakeOpenAI) -> Iterator[FakeOpenAI]:
    fake.reset()
    fake.scenario = "text"
    yield fake
    fake.reset()


def config(path: Path, api_base: str, store: Path, **gateway_settings: object) -> Path:
    def deployment(name: str, ident: str, **params: object) -> dict[str, object]:
        return {
            "model_name": name,
            "litellm_params": {"model": "openai/gpt-4.1", "api_base": api_base, "api_key": KEY, **params},
            "model_info": {"id": ident},
        }

    body = {
        "model_list": [
            deployment("priced", "priced-1"),
            deployment("custom", "custom-1", **CUSTOM),
            {"model_name": "mock", "litellm_params": {"model": "openai/mock", "mock_response": "hi there"}},
        ],
        "router_settings": {"num_retries": 1},
        "gateway_settings": {"store": {"type": "sqlite", "path": str(store)}, **gateway_settings},
    }
    path.write_text(json.dumps(body))
    return path


@pytest.fixture(scope="session")
def gateway(fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("telemetry")
    gw = GatewayProcess(config(tmp / "gateway.yaml", fake.api_base, tmp / "r.db"), cwd=tmp).start()
    yield gw
    gw.stop()
