"""`huggingface/` through the chat bridge: LiteLLM's URL rules (api_base / a model written as a URL ->
`{base}/v1/chat/completions`; otherwise the Hugging Face router, the provider as a `:provider` suffix),
`HUGGINGFACE_API_KEY` / `HF_TOKEN`, and requests served by a TGI-style fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from responses_gateway.config import Deployment
from responses_gateway.config.resolve import resolve_deployment
from tests.fakes.chat_upstream import FakeChat
from tests.providers.conftest import TOOLS
from tests.support.inprocess import InProcessGateway

HF_KEY = "hf_test_0123456789"


def _resolve(params: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    return resolve_deployment(
        Deployment.model_validate({"model_name": "m", "litellm_params": params}), env=env or {}
    )


@pytest.mark.parametrize(
    ("params", "base", "model"),
    [
        (
            {"model": "huggingface/meta-llama/Llama-3.3-70B-Instruct"},
            "https://router.huggingface.co/v1",
            "meta-llama/Llama-3.3-70B-Instruct",
        ),
        (
            {"model": "huggingface/together/deepseek-ai/DeepSeek-R1"},
            "https://router.huggingface.co/v1",
            "deepseek-ai/DeepSeek-R1:together",
        ),
        (
            {"model": "huggingface/tgi", "api_base": "https://x.endpoints.huggingface.cloud"},
            "https://x.endpoints.huggingface.cloud/v1",
            "tgi",
        ),
        (
            {"model": "huggingface/m", "api_base": "http://tgi:8080/v1/chat/completions"},
            "http://tgi:8080/v1",
            "m",
        ),
        (
            {"model": "huggingface/https://y.endpoints.huggingface.cloud/"},
            "https://y.endpoints.huggingface.cloud/v1",
            "tgi",
        ),
    ],
)
def test_url_rules(params: dict[str, Any], base: str, model: str) -> None:
    d = _resolve(params, {"HF_TOKEN": HF_KEY})
    assert (d.enabled, d.api_base, d.upstream_model, d.api_key) == (True, base, model, HF_KEY)


def test_the_router_needs_a_key_an_own_server_does_not() -> None:
    router = _resolve({"model": "huggingface/meta-llama/Llama-3.3-70B-Instruct"})
    assert not router.enabled and router.disabled_reason == "set HUGGINGFACE_API_KEY (or HF_TOKEN)"
    own = _resolve({"model": "huggingface/tgi"}, {"HF_API_BASE": "http://tgi:8080"})
    assert own.enabled and own.api_base == "http://tgi:8080/v1" and own.api_key is None


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeChat, openai.OpenAI]]:
    fake = FakeChat(api_key=HF_KEY)
    tmp = tmp_path_factory.mktemp("hf")
    with fake.serve() as base:
        models = [
            {
                "model_name": "hf-*",
                "litellm_params": {"model": "huggingface/scenario-*", "api_base": base, "api_key": HF_KEY},
            }
        ]
        store = {"type": "sqlite", "path": str(tmp / "r.db")}
        path = tmp / "gateway.json"
        path.write_text(json.dumps({"model_list": models, "gateway_settings": {"store": store}}))
        gw = InProcessGateway(path, grace_seconds=1)
        try:
            with openai.OpenAI(base_url=f"{gw.http_base}/v1", api_key="sk", max_retries=0) as client:
                yield fake, client
        finally:
            gw.close()


def test_text_reaches_the_endpoints_chat_api_with_the_hf_token(
    served: tuple[FakeChat, openai.OpenAI],
) -> None:
    fake, client = served
    assert client.responses.create(model="hf-text", input="Say hello.").output_text
    rec = fake.requests[-1]
    assert rec.path == "/v1/chat/completions" and rec.headers["authorization"] == f"Bearer {HF_KEY}"
    assert rec.body["model"] == "scenario-text" and rec.body["stream"] is True


def test_tool_loop_through_the_bridge(served: tuple[FakeChat, openai.OpenAI]) -> None:
    fake, client = served
    first = client.responses.create(model="hf-tool_calls", input="Weather and time?", tools=TOOLS)
    calls = [o for o in first.output if o.type == "function_call"]
    assert len(calls) == 2
    outputs = [{"type": "function_call_output", "call_id": c.call_id, "output": "ok"} for c in calls]
    second = client.responses.create(
        model="hf-text", previous_response_id=first.id, input=outputs, tools=TOOLS
    )
    assert second.output_text
    assert [m["role"] for m in fake.requests[-1].body["messages"]][-3:] == ["assistant", "tool", "tool"]


def test_an_upstream_error_is_relayed(served: tuple[FakeChat, openai.OpenAI]) -> None:
    fake, client = served
    fake.fail_next(429, retry_after=3)
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="hf-text", input="hi")
    fake.fail_next(401)
    with pytest.raises(openai.APIStatusError) as info:
        client.responses.create(model="hf-text", input="hi")
    assert info.value.status_code == 502  # the deployment's own token was refused


def test_unknown_scenario_model_is_a_404(served: tuple[FakeChat, openai.OpenAI]) -> None:
    _, client = served
    with httpx.Client(base_url=str(client.base_url), timeout=10) as http:
        r = http.post("responses", json={"model": "hf-nope", "input": "hi"})
    assert r.status_code == 404, r.text
