"""Azure AI Foundry (`azure_ai/<model>`): the chat bridge on the resource's base (`/models/chat/completions`
with `api-version` on `*.services.ai.azure.com`), `api-key` on Azure's hosts or Bearer elsewhere, an
Entra ID token instead of the key, `AZURE_AI_API_KEY` / `AZURE_AI_API_BASE`; and `azure_ai/responses/...`
on the resource's v1 Responses API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from responses_gateway.config import AdapterKind, Deployment
from responses_gateway.config.resolve import resolve_deployment
from responses_gateway.providers.azure_ai.adapter import auth_headers, chat_target
from tests.fakes.chat_upstream import FakeChat
from tests.fakes.openai_upstream import make_openai_app
from tests.fakes.server import serve_app
from tests.support.inprocess import InProcessGateway

KEY, ENTRA = "az-ai-key-0123456789", "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.entra"


def _resolve(params: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    return resolve_deployment(
        Deployment.model_validate({"model_name": "m", "litellm_params": params}), env=env or {}
    )


def test_chat_urls() -> None:
    assert chat_target("https://res.services.ai.azure.com", None) == (
        "https://res.services.ai.azure.com/models",
        {"api-version": "2024-05-01-preview"},
    )
    assert chat_target(
        "https://res.services.ai.azure.com/models/chat/completions?api-version=2025-01-01", None
    ) == (
        "https://res.services.ai.azure.com/models",
        {"api-version": "2025-01-01"},
    )
    assert chat_target("https://Llama-3-70B.eastus2.models.ai.azure.com/v1/", "2024-08-01") == (
        "https://Llama-3-70B.eastus2.models.ai.azure.com/v1",
        {"api-version": "2024-08-01"},
    )
    assert chat_target("https://proxy.internal/chat/completions", None) == ("https://proxy.internal", {})


def test_env_auth_and_header_rules() -> None:
    env = {"AZURE_AI_API_KEY": KEY, "AZURE_AI_API_BASE": "https://res.services.ai.azure.com"}
    d = _resolve({"model": "azure_ai/Phi-4"}, env)
    assert (d.enabled, d.adapter, d.upstream_model) == (True, AdapterKind.CHAT_COMPLETIONS, "Phi-4")
    assert auth_headers(d) == {"api-key": KEY}
    serverless = _resolve(
        {"model": "azure_ai/m", "api_base": "https://m.eastus2.models.ai.azure.com", "api_key": KEY}
    )
    assert auth_headers(serverless) == {"authorization": f"Bearer {KEY}"}
    entra = _resolve(
        {"model": "azure_ai/m"}, {"AZURE_AI_API_BASE": env["AZURE_AI_API_BASE"], "AZURE_AD_TOKEN": ENTRA}
    )
    assert entra.enabled and auth_headers(entra) == {"authorization": f"Bearer {ENTRA}"}
    missing = _resolve({"model": "azure_ai/m"})
    assert not missing.enabled
    assert (
        missing.disabled_reason == "set AZURE_AI_API_KEY; set AZURE_AI_API_BASE (or litellm_params.api_base)"
    )
    responses = _resolve({"model": "azure_ai/responses/gpt-4.1"}, env)
    assert (responses.adapter, responses.upstream_model) == (AdapterKind.RESPONSES, "gpt-4.1")


class PrefixFront:
    """The Foundry resource's `/openai/v1/...` over the OpenAI fake (which serves `/v1/...`)."""

    def __init__(self, app: Any) -> None:
        self.app, self.seen = app, []  # type: ignore[var-annotated]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["path"], {k.decode(): v.decode() for k, v in scope["headers"]}))
            path = scope["path"].removeprefix("/openai")
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeChat, PrefixFront, openai.OpenAI]]:
    chat = FakeChat(api_key=ENTRA)
    oa = make_openai_app(KEY)
    front = PrefixFront(oa)
    tmp = tmp_path_factory.mktemp("azure_ai")
    with chat.serve() as chat_base, serve_app(front) as oa_base:
        oa.base_url = oa_base
        models = [
            {
                "model_name": "foundry-*",
                "litellm_params": {
                    "model": "azure_ai/scenario-*",
                    "api_base": f"{chat_base}/v1",
                    "azure_ad_token": ENTRA,
                    "api_version": "2024-05-01-preview",
                },
            },
            {
                "model_name": "foundry-responses",
                "litellm_params": {
                    "model": "azure_ai/responses/scenario-text",
                    "api_base": oa_base,
                    "api_key": KEY,
                },
            },
        ]
        store = {"type": "sqlite", "path": str(tmp / "r.db")}
        path = tmp / "gateway.json"
        path.write_text(json.dumps({"model_list": models, "gateway_settings": {"store": store}}))
        gw = InProcessGateway(path, grace_seconds=1)
        try:
            with openai.OpenAI(base_url=f"{gw.http_base}/v1", api_key="sk", max_retries=0) as client:
                yield chat, front, client
        finally:
            gw.close()


def test_chat_with_an_entra_token_and_api_version(
    served: tuple[FakeChat, PrefixFront, openai.OpenAI],
) -> None:
    chat, _, client = served
    assert client.responses.create(model="foundry-text", input="Say hello.").output_text
    rec = chat.requests[-1]
    assert rec.path == "/v1/chat/completions" and rec.query == {"api-version": "2024-05-01-preview"}
    assert rec.headers["authorization"] == f"Bearer {ENTRA}" and "api-key" not in rec.headers
    assert rec.body["model"] == "scenario-text"


def test_chat_stream_and_error(served: tuple[FakeChat, PrefixFront, openai.OpenAI]) -> None:
    chat, _, client = served
    with client.responses.stream(model="foundry-text", input="hi") as s:
        final = s.get_final_response()
    assert final.status == "completed" and final.output_text
    chat.fail_next(429, retry_after=2)
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="foundry-text", input="hi")


def test_responses_api_on_the_resource(served: tuple[FakeChat, PrefixFront, openai.OpenAI]) -> None:
    _, front, client = served
    first = client.responses.create(model="foundry-responses", input="Say hello.")
    assert first.output_text
    path, headers = front.seen[-1]
    assert path == "/openai/v1/responses" and headers["authorization"] == f"Bearer {KEY}"
    # the upstream keeps the response: a follow-up hands it the id
    second = client.responses.create(model="foundry-responses", input="again", previous_response_id=first.id)
    assert second.previous_response_id == first.id
