"""Upstream failures, per adapter: HTTP errors before the stream (REST status + OpenAI error JSON, gRPC
status), and breaks after it started (a well-formed `response.failed`, stored as failed)."""

from __future__ import annotations

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from responses_gateway import codec
from responses_gateway.v1 import request_pb2
from tests.providers.conftest import Adapter, Env, Spec, check_stream, stream

# upstream status -> (gateway status, OpenAI error type)
STATUSES = {
    400: (400, "invalid_request_error"),
    # The upstream refused the deployment's own key: the operator's problem, a bad gateway.
    401: (502, "server_error"),
    403: (502, "server_error"),
    404: (404, "invalid_request_error"),
    413: (413, "invalid_request_error"),
    429: (429, "rate_limit_error"),
    500: (500, "server_error"),
    503: (503, "server_error"),
}
NAMES = {"openai": "OpenAI", "azure": "Azure OpenAI", "chat": "hosted_vllm", "anthropic": "Anthropic"}


def _check_error(resp: httpx.Response, adapter: Adapter, status: int, etype: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == etype
    assert NAMES.get(adapter.name, "Gemini") in error["message"]


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("upstream", list(STATUSES))
def test_upstream_http_error(adapter: Adapter, http: httpx.Client, upstream: int, streaming: bool) -> None:
    adapter.fail_next(upstream, retry_after=7 if upstream == 429 else None)
    body = {"model": adapter.model(), "input": "hi"}
    if streaming:
        resp, events = stream(http, body)
        assert events == []
    else:
        resp = http.post("/responses", json=body)
    status, etype = STATUSES[upstream]
    _check_error(resp, adapter, status, etype)
    if upstream == 429:
        assert resp.headers["retry-after"] == "7"
    assert len(adapter.calls()) == 1  # no retries by default


def test_anthropic_529_overloaded(env: Env, http: httpx.Client) -> None:
    adapter = env.adapters["anthropic"]
    adapter.fail_next(529)
    resp = http.post("/responses", json={"model": adapter.model(), "input": "hi"})
    _check_error(resp, adapter, 503, "server_error")
    assert "overloaded_error" in resp.json()["error"]["message"]


def test_gemini_retry_info_in_the_body(env: Env, http: httpx.Client) -> None:
    """Google puts the retry delay in the error's RetryInfo detail rather than a Retry-After header."""
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}
    error = {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED", "details": [retry]}
    env.gemini.fail_next(429, body={"error": error})
    resp = http.post("/responses", json={"model": "gem-text", "input": "hi"})
    assert resp.status_code == 429 and resp.headers["retry-after"] == "13"


def _request(model: str) -> request_pb2.CreateResponseRequest:
    return codec.from_json(request_pb2.CreateResponseRequest(), {"model": model, "input": "hi"})


@pytest.mark.parametrize("method", ["CreateResponse", "StreamResponse"])
def test_rate_limit_over_grpc(adapter: Adapter, stub, method: str) -> None:
    adapter.fail_next(429, retry_after=7)
    with pytest.raises(grpc.RpcError) as info:
        result = getattr(stub, method)(_request(adapter.model()), timeout=20)
        if method == "StreamResponse":
            list(result)
    err = info.value
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(err)
    assert status is not None
    delays = []
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            delays.append(retry.retry_delay.seconds)
    assert delays == [7]


# ------------------------------------------------------------------------------------------ mid-stream
def test_mid_stream_disconnect(adapter: Adapter, http: httpx.Client, spec: Spec) -> None:
    resp, events = stream(http, {"model": adapter.model("disconnect"), "input": "Tell me a story."})
    assert resp.status_code == 200
    final = check_stream(events, spec)
    assert final["status"] == "failed"
    assert final["error"]["code"] == "server_error"
    message = final["error"]["message"]
    assert "closed the connection" in message or "ended the stream" in message, message
    assert any(e["type"].endswith(".delta") for e in events)  # the failure came after real output
    stored = http.get(f"/responses/{final['id']}")
    assert stored.status_code == 200
    assert stored.json()["status"] == "failed" and stored.json()["error"]["message"] == message


def test_unary_disconnect_is_an_error_status(adapter: Adapter, http: httpx.Client) -> None:
    """A unary call whose upstream breaks off answers with an error status on every adapter (nothing
    reached the client yet), whether the adapter calls upstream unary or folds a stream."""
    r = http.post("/responses", json={"model": adapter.model("disconnect"), "input": "Tell me a story."})
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["type"] == "server_error" and "connection" in error["message"], error


MID_STREAM_ERRORS = [("anthropic", "overloaded", "overloaded_error"), ("chat", "stream_error", "")]
MID_STREAM_ERRORS += [("openai", "error_event", ""), ("azure", "error_event", "")]


@pytest.mark.parametrize(("name", "scenario", "needle"), MID_STREAM_ERRORS)
def test_mid_stream_error_event(
    env: Env, http: httpx.Client, spec: Spec, name: str, scenario: str, needle: str
) -> None:
    adapter = env.adapters[name]
    resp, events = stream(http, {"model": adapter.model(scenario), "input": "hi"})
    assert resp.status_code == 200
    final = events[-1]["response"] if events[-1]["type"] == "response.failed" else None
    assert final is not None, [e["type"] for e in events[-3:]]
    check_stream(events, spec)
    assert needle in final["error"]["message"]
    assert http.get(f"/responses/{final['id']}").json()["status"] == "failed"


@pytest.mark.parametrize("form", ["conv_123", {"id": "conv_123"}], ids=["id", "object"])
@pytest.mark.parametrize("name", ["chat", "anthropic", "gemini"])
def test_conversation_on_a_provider_without_conversations_is_a_400_naming_it(
    env: Env, http: httpx.Client, stub, name: str, form: object
) -> None:
    """It used to fail inside the gateway (500); only OpenAI's Responses API has conversations."""
    adapter = env.adapters[name]
    body = {"model": adapter.model(), "input": "hi", "conversation": form}
    for streaming in (False, True):
        resp = http.post("/responses", json={**body, "stream": streaming})
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert error["param"] == "conversation"
        assert NAMES.get(name, "Gemini") in error["message"]
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateResponse(codec.from_json(request_pb2.CreateResponseRequest(), body), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert adapter.calls() == []


@pytest.mark.parametrize("upstream", [401, 403])
def test_a_refused_upstream_key_is_the_upstreams_error_not_the_callers(
    adapter: Adapter, http: httpx.Client, stub, upstream: int
) -> None:
    adapter.fail_next(upstream)
    resp = http.post("/responses", json={"model": adapter.model(), "input": "hi"})
    assert resp.status_code == 502, resp.text
    error = resp.json()["error"]
    assert error["code"] == "upstream_auth_failed" and error["type"] == "server_error"
    adapter.fail_next(upstream)
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateResponse(request_pb2.CreateResponseRequest(model=adapter.model(), input={"text": "hi"}))
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    status = rpc_status.from_call(caught.value)
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    assert info.reason == "UPSTREAM_AUTH_FAILED"
