"""A gateway subprocess with a master key in front of a fake OpenAI upstream with the deployment's own
prices (so every response has a known cost), and helpers to make virtual keys through the admin API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, make_openai_app
from tests.fakes.server import serve_app
from tests.support.process import GatewayProcess

UPSTREAM_KEY = "sk-fake-platform-0123456789abcdef"
MASTER = "sk-platform-master-0123456789"
PRICES = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}


def config(path: Path, api_base: str, store: dict[str, Any]) -> Path:
    def deployment(name: str) -> dict[str, Any]:
        return {
            "model_name": name,
            "litellm_params": {
                "model": "openai/gpt-4.1",
                "api_base": api_base,
                "api_key": UPSTREAM_KEY,
                **PRICES,
            },
        }

    body = {
        "model_list": [deployment("m1"), deployment("m2")],
        "general_settings": {"master_key": MASTER},
        "gateway_settings": {"store": store},
    }
    path.write_text(json.dumps(body))
    return path


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeOpenAI]:
    with serve_app(f := make_openai_app(UPSTREAM_KEY)) as url:
        f.base_url = url
        yield f


@pytest.fixture(scope="session")
def gateway(fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("platform")
    path = config(tmp / "gateway.json", fake.api_base, {"type": "sqlite", "path": str(tmp / "r.db")})
    gw = GatewayProcess(path, cwd=tmp).start()
    yield gw
    gw.stop()


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {}


def admin(gw: GatewayProcess, method: str, path: str, key: str = MASTER, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{gw.http_base}{path}", headers=auth(key), timeout=30, **kw)


def new_key(gw: GatewayProcess, **fields: Any) -> dict[str, Any]:
    r = admin(gw, "POST", "/key/generate", json=fields)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def create(gw: GatewayProcess, key: str, model: str = "m1", **body: Any) -> httpx.Response:
    return httpx.post(
        f"{gw.http_base}/v1/responses",
        json={"model": model, "input": "hi", **body},
        headers=auth(key),
        timeout=30,
    )
