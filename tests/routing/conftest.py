"""Fixtures of the routing suite: several fake OpenAI upstreams on loopback, a port nothing listens on,
and a gateway subprocess over a config of the test's own."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_upstream import FakeOpenAI, make_openai_app
from tests.fakes.server import serve_app
from tests.support.process import GatewayProcess

KEY = "sk-fake-routing-0123456789abcdef"


@pytest.fixture(scope="session")
def fakes() -> Iterator[dict[str, FakeOpenAI]]:
    """Three independent upstreams, "a", "b" and "c"."""
    out: dict[str, FakeOpenAI] = {}
    a, b, c = make_openai_app(KEY), make_openai_app(KEY), make_openai_app(KEY)
    with serve_app(a) as url_a, serve_app(b) as url_b, serve_app(c) as url_c:
        for name, fake, url in (("a", a, url_a), ("b", b, url_b), ("c", c, url_c)):
            fake.base_url = url
            out[name] = fake
        yield out


@pytest.fixture
def upstreams(fakes: dict[str, FakeOpenAI]) -> Iterator[dict[str, FakeOpenAI]]:
    for f in fakes.values():
        f.reset()
        f.scenario = "text"
    yield fakes
    for f in fakes.values():
        f.reset()


@pytest.fixture(scope="session")
def dead_base() -> str:
    """An api_base whose port refuses connections (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/v1"


def entry(name: str, ident: str, api_base: str, model: str = "gpt-4.1", **params: Any) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {"model": f"openai/{model}", "api_base": api_base, "api_key": KEY, **params},
        "model_info": {"id": ident},
    }


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    started: list[GatewayProcess] = []

    def start(models: list[dict[str, Any]], **sections: Any) -> GatewayProcess:
        sections.setdefault("gateway_settings", {})
        sections["gateway_settings"].setdefault("store", {"type": "sqlite", "path": str(tmp_path / "r.db")})
        path = tmp_path / "gateway.yaml"
        path.write_text(json.dumps({"model_list": models, **sections}))
        gw = GatewayProcess(path, cwd=tmp_path).start()
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()
