"""A gateway in front of Vertex AI as the fakes play it (tests/fakes/vertex_front.py), with credentials
minted by a fake Google token endpoint (tests/fakes/google_oauth.py), for the Vertex test modules.

The modules import these fixtures, which replace conftest's `env` / `http` / `client` / `stub` /
`adapter` for them, so the shared scenario suite (test_scenarios.py, test_errors.py), imported there,
runs over Vertex's Gemini and Claude:

    vgem-*     vertex_ai/scenario-*          Gemini, service-account key given as JSON text
    vclaude-*  vertex_ai/claude-scenario-*   Claude on Vertex, service-account key given as a file path
    vshort-* / vretry-*                      as vgem-*, with token caches of their own
    vraw-*     vertex_ai/scenario-*          a raw access token in api_key (never refreshed)
    vbad-*     vertex_ai/scenario-*          a key the token endpoint does not trust
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest

from responses_gateway.v1 import responses_service_pb2_grpc
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.google_oauth import FakeGoogleOAuth, ServiceAccount
from tests.fakes.server import serve_app
from tests.fakes.vertex_front import VertexFront
from tests.providers.conftest import ALIASES, KEY, Adapter
from tests.support.clients import openai_client, responses_stub, rest_client
from tests.support.inprocess import InProcessGateway

PROJECT, LOCATION = "test-project", "us-east5"
RAW_TOKEN = "ya29.raw-token-from-gcloud"


@dataclass
class VertexEnv:
    gw: InProcessGateway
    oauth: FakeGoogleOAuth
    front: VertexFront
    gemini: FakeGemini
    anthropic: FakeAnthropic
    accounts: dict[str, ServiceAccount]
    adapters: dict[str, Adapter] = field(default_factory=dict)

    def reset(self) -> None:
        self.oauth.reset()
        self.front.reset()
        self.gemini.reset()
        self.anthropic.reset()


def _vertex(name: str, model: str, base: str, **params: Any) -> dict[str, Any]:
    litellm = {"model": model, "api_base": base, "vertex_project": PROJECT, "vertex_location": LOCATION}
    return {"model_name": name, "litellm_params": {**litellm, **params}}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VertexEnv]:
    oauth = FakeGoogleOAuth()
    gem, anth = FakeGemini(api_key=KEY), FakeAnthropic(api_key=KEY)
    front = VertexFront(oauth, gem, anth, static_tokens={RAW_TOKEN})
    tmp = tmp_path_factory.mktemp("vertex")
    with serve_app(oauth.app) as oauth_base, serve_app(front) as base:
        accounts = {
            "json": ServiceAccount(f"{oauth_base}/token"),
            "file": ServiceAccount(
                f"{oauth_base}/token", email="claude@test-project.iam.gserviceaccount.com"
            ),
            "untrusted": ServiceAccount(
                f"{oauth_base}/token", email="nobody@elsewhere.iam.gserviceaccount.com"
            ),
        }
        oauth.trust(accounts["json"])
        oauth.trust(accounts["file"])
        key_file = tmp / "claude-key.json"
        key_file.write_text(accounts["file"].json())
        models = [
            _vertex("vgem-*", "vertex_ai/scenario-*", base, vertex_credentials=accounts["json"].json()),
            _vertex("vclaude-*", "vertex_ai/claude-scenario-*", base, vertex_credentials=str(key_file)),
            # own token caches, for the tests that need a deployment's first token to be short-lived
            _vertex("vshort-*", "vertex_ai/scenario-*", base, vertex_credentials=accounts["json"].json()),
            _vertex("vretry-*", "vertex_ai/scenario-*", base, vertex_credentials=accounts["json"].json()),
            _vertex("vraw-*", "vertex_ai/scenario-*", base, api_key=RAW_TOKEN),
            _vertex("vbad-*", "vertex_ai/scenario-*", base, vertex_credentials=accounts["untrusted"].json()),
        ]
        store = {"type": "sqlite", "path": str(tmp / "responses.db")}
        cfg = tmp / "gateway.json"
        cfg.write_text(json.dumps({"model_list": models, "gateway_settings": {"store": store}}))
        gw = InProcessGateway(cfg, grace_seconds=1)
        adapters = {
            "gemini": Adapter("gemini", "vgem", gem, ALIASES["gemini"]),
            "anthropic": Adapter("anthropic", "vclaude", anth, ALIASES["anthropic"]),
        }
        try:
            yield VertexEnv(gw, oauth, front, gem, anth, accounts, adapters)
        finally:
            gw.close()


@pytest.fixture(scope="module")
def client(env: VertexEnv) -> Iterator[openai.OpenAI]:
    with openai_client(env.gw) as c:
        yield c


@pytest.fixture(scope="module")
def http(env: VertexEnv) -> Iterator[httpx.Client]:
    with rest_client(env.gw) as c:
        yield c


@pytest.fixture(scope="module")
def stub(env: VertexEnv) -> Iterator[responses_service_pb2_grpc.ResponsesServiceStub]:
    with responses_stub(env.gw) as stub:
        yield stub
