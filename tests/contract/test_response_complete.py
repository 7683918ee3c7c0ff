"""Every Response the gateway emits is complete, on every provider: unary, every stream event, background
and GET, for a request that sets nothing optional and for one that sets everything. Each object and
event is held to OpenAI's spec and to the Open Responses spec (tests/support/spec.py's BothSpecs), and
the echoed request parameters read what the request set, or the documented default when it set nothing.

Real gateway on loopback, fake upstreams over real HTTP (tests/contract/conftest.py).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.contract.conftest import ContractEnv
from tests.support.spec import BothSpecs
from tests.support.sse import sse_events

TERMINAL = ("response.completed", "response.incomplete", "response.failed")

# provider -> the model of its plain-text scenario. `sparse` is an OpenAI-compatible Responses server
# that leaves out everything it may (the gateway fills it in).
MODELS = {
    "openai": "oa-text",
    "azure": "az-text",
    "chat": "chat-text",
    "anthropic": "claude-text",
    "gemini": "gem-text",
    "mock": "mock",
    "sparse": "sparse-model",
}
NATIVE = ("openai", "azure", "sparse")

TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}

# What a Response says for a parameter the request did not set (OpenAI's documented defaults; null
# where the spec allows it). `user` is absent: OpenAI's spec types it as a string only, so an unset
# user cannot be `null` and is left out.
DEFAULTS: dict[str, Any] = {
    "previous_response_id": None,
    "instructions": None,
    "max_output_tokens": None,
    "max_tool_calls": None,
    "reasoning": {"effort": None, "summary": None},
    "safety_identifier": None,
    "prompt_cache_key": None,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "top_logprobs": 0,
    "temperature": 1,
    "top_p": 1,
    "parallel_tool_calls": True,
    "truncation": "disabled",
    "tool_choice": "auto",
    "tools": [],
    "text": {"format": {"type": "text"}},
    "metadata": {},
    "store": True,
    "background": False,
    "error": None,
    "incomplete_details": None,
}


def full_request(provider: str) -> dict[str, Any]:
    """Every optional parameter the provider accepts, with values both specs can echo."""
    body: dict[str, Any] = {
        "instructions": "Answer briefly.",
        "max_output_tokens": 512,
        "max_tool_calls": 3,
        "reasoning": {"effort": "low", "summary": "auto"},
        "safety_identifier": "safety-user-42",
        "prompt_cache_key": "cache-key-7",
        "top_logprobs": 2,
        "temperature": 0.5,
        "top_p": 0.9,
        "parallel_tool_calls": False,
        "truncation": "auto",
        "tools": [TOOL],
        "tool_choice": "auto",
        "text": {"format": {"type": "text"}, "verbosity": "low"},
        "metadata": {"ticket": "T-1"},
        "store": True,
        "user": "end-user-9",
        "service_tier": "flex",
    }
    for key in REFUSED.get(provider, ()):
        del body[key]
    if provider not in NATIVE:
        # Not parameters of OpenAI's Responses API (an OpenAI upstream refuses them), but Open
        # Responses has them, and the gateway echoes them for the providers it translates for.
        body["presence_penalty"] = 0.25
        body["frequency_penalty"] = 0.5
    return body


# What a provider cannot honour and refuses with a 400 (tests/providers/test_drop_params.py).
REFUSED = {"anthropic": ("top_logprobs",), "gemini": ("top_logprobs",)}

VARIANTS = ("minimal", "full")


def request_for(provider: str, variant: str) -> dict[str, Any]:
    body = {"model": MODELS[provider], "input": "Say hi."}
    return {**body, **full_request(provider)} if variant == "full" else body


def check_echo(response: dict[str, Any], request: dict[str, Any], provider: str) -> None:
    """The request's parameters come back as sent; the ones it left out read their defaults."""
    if provider == "sparse" and set(request) - {"model", "input", "background", "stream"}:
        # The sparse upstream echoes nothing, and a native upstream's Response is its own: the gateway
        # fills in defaults (checked with the minimal request), not the request's values.
        return
    for key, default in DEFAULTS.items():
        want = request.get(key, default)
        if key == "reasoning" and "reasoning" in request:
            want = {"effort": None, "summary": None, **request["reasoning"]}
        if key == "tools":
            want = [{"description": None, "strict": True, **t} for t in request.get("tools", [])]
        got = response[key]
        if key == "reasoning" and got is not None:
            got = {k: got.get(k) for k in ("effort", "summary")}
        if key == "text" and "verbosity" not in want:
            got = {k: v for k, v in got.items() if k != "verbosity"}  # the model's own, when not asked
        assert got == want, f"{provider}: {key} is {got!r}, the request set {request.get(key, '(nothing)')!r}"
    for key in ("user", "presence_penalty", "frequency_penalty"):
        if key in request:
            assert response[key] == request[key], f"{provider}: {key}"
    if "user" not in request:
        assert "user" not in response
    if provider in NATIVE:
        # The upstream reports the tier it served the request on, whatever was asked for.
        assert isinstance(response["service_tier"], str)
    else:
        assert response["service_tier"] == request.get("service_tier", "auto")


def check_usage(response: dict[str, Any]) -> None:
    usage = response["usage"]
    if response["status"] in ("completed", "incomplete"):
        assert usage is not None
    if usage is not None:
        assert set(usage["input_tokens_details"]) >= {"cached_tokens", "cache_write_tokens"}
        assert "reasoning_tokens" in usage["output_tokens_details"]


def stream(http: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    with http.stream("POST", "/responses", json={**body, "stream": True}) as resp:
        resp.read()
        assert resp.status_code == 200, resp.text
        return sse_events(resp)


def check_events(events: list[dict[str, Any]], specs: BothSpecs) -> dict[str, Any]:
    types = [e["type"] for e in events]
    assert types[-1] in TERMINAL, types
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        specs.check_event(event)
    return events[-1]["response"]


def wait_done(http: httpx.Client, rid: str, specs: BothSpecs) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        got = http.get(f"/responses/{rid}")
        assert got.status_code == 200, got.text
        body = got.json()
        specs.check_response(body)
        if body["status"] not in ("queued", "in_progress") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("provider", MODELS)
def test_unary_and_get(provider: str, variant: str, http: httpx.Client, specs: BothSpecs) -> None:
    request = request_for(provider, variant)
    resp = http.post("/responses", json=request)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    specs.check_response(body)
    assert body["status"] == "completed"
    check_echo(body, request, provider)
    check_usage(body)
    got = http.get(f"/responses/{body['id']}")
    assert got.status_code == 200, got.text
    specs.check_response(got.json())
    check_echo(got.json(), request, provider)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("provider", MODELS)
def test_stream_every_event(provider: str, variant: str, http: httpx.Client, specs: BothSpecs) -> None:
    request = request_for(provider, variant)
    events = stream(http, request)
    final = check_events(events, specs)
    assert final["status"] == "completed"
    for event in events:
        if "response" in event:
            check_echo(event["response"], request, provider)
    check_usage(final)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("provider", MODELS)
def test_background_then_get(provider: str, variant: str, http: httpx.Client, specs: BothSpecs) -> None:
    request = {**request_for(provider, variant), "background": True}
    resp = http.post("/responses", json=request)
    assert resp.status_code == 200, resp.text
    first = resp.json()
    specs.check_response(first)
    assert first["background"] is True
    check_echo(first, request, provider)
    done = wait_done(http, first["id"], specs)
    assert done["status"] == "completed", done
    check_echo(done, request, provider)
    check_usage(done)


@pytest.mark.parametrize("provider", ("openai", "anthropic", "sparse"))
def test_background_stream(provider: str, http: httpx.Client, specs: BothSpecs) -> None:
    request = {**request_for(provider, "full"), "background": True}
    events = stream(http, request)
    final = check_events(events, specs)
    assert final["background"] is True
    check_echo(final, request, provider)
    # The replay of a background response's events reads the same.
    replay = http.get(f"/responses/{final['id']}", params={"stream": "true"})
    assert replay.status_code == 200, replay.text
    assert check_events(sse_events(replay), specs)["id"] == final["id"]


@pytest.mark.parametrize("provider", ("openai", "anthropic", "gemini", "sparse"))
def test_sdk_reads_complete_responses(provider: str, sdk: openai.OpenAI) -> None:
    """The `openai` SDK, validating strictly, reads the unary and streamed Responses."""
    minimal = request_for(provider, "minimal")
    r = sdk.responses.create(model=minimal["model"], input=minimal["input"])
    assert r.status == "completed" and r.output_text
    assert r.top_logprobs == 0 and r.truncation == "disabled" and r.usage is not None
    with sdk.responses.stream(model=minimal["model"], input=minimal["input"]) as s:
        final = s.get_final_response()
    assert final.id and final.usage is not None


def test_previous_response_id_is_echoed(http: httpx.Client, specs: BothSpecs) -> None:
    first = http.post("/responses", json=request_for("anthropic", "minimal")).json()
    request = {**request_for("anthropic", "minimal"), "previous_response_id": first["id"]}
    second = http.post("/responses", json=request)
    assert second.status_code == 200, second.text
    specs.check_response(second.json())
    assert second.json()["previous_response_id"] == first["id"]


# --- the terminal events the gateway makes itself ---------------------------------------------------

# Upstreams that break off mid-stream (the gateway ends the stream with its own `response.failed`),
# and upstreams that stop short (`response.incomplete` from the translated stream).
FAILED = {"openai": "oa-disconnect", "chat": "chat-disconnect", "anthropic": "claude-disconnect"}
FAILED |= {"gemini": "gem-disconnect"}
INCOMPLETE = {"openai": "oa-incomplete", "chat": "chat-length", "anthropic": "claude-max_tokens"}
INCOMPLETE |= {"gemini": "gem-max_tokens"}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("provider", FAILED)
def test_failed_stream(provider: str, variant: str, http: httpx.Client, specs: BothSpecs) -> None:
    request = {**request_for(provider, variant), "model": FAILED[provider]}
    events = stream(http, request)
    final = check_events(events, specs)
    assert events[-1]["type"] == "response.failed"
    assert final["error"]["code"] and final["error"]["message"]
    assert final["completed_at"] is None
    check_echo({**final, "error": None}, request, provider)
    stored = http.get(f"/responses/{final['id']}")
    specs.check_response(stored.json())


@pytest.mark.parametrize("provider", INCOMPLETE)
def test_incomplete(provider: str, http: httpx.Client, specs: BothSpecs) -> None:
    request = {**request_for(provider, "full"), "model": INCOMPLETE[provider]}
    events = stream(http, request)
    final = check_events(events, specs)
    assert events[-1]["type"] == "response.incomplete"
    assert final["incomplete_details"]["reason"]
    check_echo({**final, "incomplete_details": None}, request, provider)
    unary = http.post("/responses", json=request)
    assert unary.status_code == 200, unary.text
    specs.check_response(unary.json())
    assert unary.json()["status"] == "incomplete"


def test_contract_env_serves_sparse(contract_env: ContractEnv, http: httpx.Client) -> None:
    """The sparse upstream really is sparse: what the gateway fills in is not the upstream's."""
    http.post("/responses", json=request_for("sparse", "minimal"))
    stored = contract_env.sparse.stored
    assert stored and all("top_logprobs" not in r and "tools" not in r for r in stored.values())
