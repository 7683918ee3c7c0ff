"""A request feature the provider cannot honour: a 400 naming the parameter and the provider, or — with
`drop_params: true` on the deployment — dropped, the request served, and the drop reported in the
`x-gateway-dropped-params` header (REST) / trailer (gRPC)."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest

from responses_gateway import codec
from responses_gateway.v1 import request_pb2, response_pb2
from tests.providers.conftest import PREFIXES, Env, stream

DROPPED = "x-gateway-dropped-params"
PARAMS: dict[str, dict[str, Any]] = {
    "tools": {"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]},  # mapped nowhere
    "top_logprobs": {"top_logprobs": 3},
}
PROVIDER_NAMES = {"anthropic": "Anthropic", "gemini": "Gemini", "chat": "hosted_vllm"}
# Chat Completions servers do take top_logprobs (as `logprobs` + `top_logprobs`).
CASES = [("anthropic", "tools"), ("anthropic", "top_logprobs"), ("gemini", "tools")]
CASES += [("gemini", "top_logprobs"), ("chat", "tools")]


def _body(provider: str, param: str, *, drop: bool) -> dict[str, Any]:
    prefix = ("d" if drop else "") + PREFIXES[provider]
    return {"model": f"{prefix}-text", "input": "hi", **PARAMS[param]}


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize(("provider", "param"), CASES)
def test_unsupported_parameter_is_a_400(
    env: Env, http: httpx.Client, provider: str, param: str, streaming: bool
) -> None:
    body = _body(provider, param, drop=False)
    resp = stream(http, body)[0] if streaming else http.post("/responses", json=body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == param and error["code"] == "unsupported_parameter"
    assert error["type"] == "invalid_request_error"
    assert PROVIDER_NAMES[provider] in error["message"] and "drop_params" in error["message"]
    assert env.adapters[provider].calls() == []  # refused before anything went upstream
    assert DROPPED not in resp.headers


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize(("provider", "param"), CASES)
def test_drop_params_drops_and_says_so(
    env: Env, http: httpx.Client, provider: str, param: str, streaming: bool
) -> None:
    body = _body(provider, param, drop=True)
    if streaming:
        resp, events = stream(http, body)
        assert events[-1]["type"] == "response.completed"
    else:
        resp = http.post("/responses", json=body)
        assert resp.json()["status"] == "completed"
    assert resp.status_code == 200, resp.text
    assert resp.headers[DROPPED] == param
    (sent,) = env.adapters[provider].calls()
    assert "tools" not in sent and "top_logprobs" not in sent and "logprobs" not in sent


def test_drop_params_lists_every_dropped_parameter(env: Env, http: httpx.Client) -> None:
    body = {"model": "dclaude-text", "input": "hi", **PARAMS["tools"], **PARAMS["top_logprobs"]}
    resp = http.post("/responses", json=body)
    assert resp.status_code == 200
    assert sorted(resp.headers[DROPPED].split(",")) == ["tools", "top_logprobs"]


def test_function_tools_survive_a_dropped_hosted_tool(env: Env, http: httpx.Client) -> None:
    fn = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    resp = http.post(
        "/responses",
        json={
            "model": "dgem-text",
            "input": "hi",
            "tools": [{"type": "code_interpreter", "container": {"type": "auto"}}, fn],
        },
    )
    assert resp.status_code == 200 and resp.headers[DROPPED] == "tools"
    (sent,) = env.adapters["gemini"].calls()
    assert [d["name"] for d in sent["tools"][0]["functionDeclarations"]] == ["get_weather"]


def test_dropped_params_trailer_over_grpc(env: Env, stub: Any) -> None:
    request = codec.from_json(
        request_pb2.CreateResponseRequest(), _body("anthropic", "top_logprobs", drop=True)
    )
    response, call = stub.CreateResponse.with_call(request, timeout=20)
    assert response.status == response_pb2.RESPONSE_STATUS_COMPLETED and response.output
    assert dict(call.trailing_metadata())[DROPPED] == "top_logprobs"
    bad = codec.from_json(request_pb2.CreateResponseRequest(), _body("anthropic", "top_logprobs", drop=False))
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateResponse(bad, timeout=20)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "top_logprobs" in info.value.details()


def test_chat_completions_reports_its_own_and_the_adapters_drops(env: Env, http: httpx.Client) -> None:
    """Chat-only knobs (`seed`) and what the deployment dropped (`top_logprobs`) share the one header."""
    body = {"model": "dclaude-text", "messages": [{"role": "user", "content": "hi"}], "seed": 1}
    body |= {"logprobs": True, "top_logprobs": 2}
    for streaming in (False, True):
        resp = http.post("/chat/completions", json={**body, "stream": streaming})
        assert resp.status_code == 200, resp.text
        assert sorted(resp.headers[DROPPED].split(",")) == ["seed", "top_logprobs"]
