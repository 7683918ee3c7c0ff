"""LiteLLM's `mock_response`: on the deployment (`litellm_params.mock_response`) or on the request (an
extra body field), a canned answer through the same path as a real upstream — streaming, storage and
the Chat Completions surface included — and nothing leaves the process."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.providers.conftest import MOCK_TEXT, Adapter, Spec, check_stream, stream, text_of


def test_deployment_mock_unary(client: openai.OpenAI, http: httpx.Client, spec: Spec) -> None:
    raw = http.post("/responses", json={"model": "mock", "input": "hi"})
    assert raw.status_code == 200, raw.text
    spec.check("Response", raw.json())
    r = client.responses.create(model="mock", input="hi")
    assert r.status == "completed" and r.output_text == MOCK_TEXT and r.model == "mock"
    assert r.usage is not None and r.usage.output_tokens == len(MOCK_TEXT.split())
    assert client.responses.retrieve(r.id).output_text == MOCK_TEXT


def test_deployment_mock_stream(http: httpx.Client, spec: Spec) -> None:
    _, events = stream(http, {"model": "mock", "input": "hi"})
    final = check_stream(events, spec)
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) == len(MOCK_TEXT.split()) and "".join(deltas) == MOCK_TEXT
    assert final["status"] == "completed" and text_of(final) == MOCK_TEXT
    assert http.get(f"/responses/{final['id']}").json()["output"] == final["output"]


def test_deployment_mock_multi_turn(client: openai.OpenAI) -> None:
    first = client.responses.create(model="mock", input="one")
    second = client.responses.create(model="mock", input="two", previous_response_id=first.id)
    assert second.output_text == MOCK_TEXT and second.previous_response_id == first.id


def test_deployment_mock_chat_completions(client: openai.OpenAI) -> None:
    done = client.chat.completions.create(model="mock", messages=[{"role": "user", "content": "hi"}])
    assert done.choices[0].message.content == MOCK_TEXT and done.choices[0].finish_reason == "stop"
    chunks = list(
        client.chat.completions.create(
            model="mock", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == MOCK_TEXT


CANNED = "Canned by the request."


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
def test_request_mock_response(
    adapter: Adapter, client: openai.OpenAI, http: httpx.Client, spec: Spec, streaming: bool
) -> None:
    """`mock_response` as a request parameter is honoured whatever the deployment's upstream."""
    body = {"model": adapter.model(), "input": "hi", "mock_response": CANNED}
    if streaming:
        resp, events = stream(http, body)
        assert resp.status_code == 200
        final = check_stream(events, spec)
    else:
        raw = http.post("/responses", json=body)
        assert raw.status_code == 200, raw.text
        final = raw.json()
        spec.check("Response", final)
    assert final["status"] == "completed" and text_of(final) == CANNED
    assert adapter.calls() == []  # nothing went upstream
    sdk = client.responses.create(model=adapter.model(), input="hi", extra_body={"mock_response": CANNED})
    assert sdk.output_text == CANNED and adapter.calls() == []


def test_request_mock_response_must_be_a_string(adapter: Adapter, http: httpx.Client) -> None:
    """Anything but a string is not a mock: the request goes upstream as usual. A native upstream gets
    the unknown parameter as sent and answers as OpenAI does (400 naming it); the others ignore it."""
    r = http.post("/responses", json={"model": adapter.model(), "input": "hi", "mock_response": True})
    assert len(adapter.calls()) == 1
    if adapter.native:
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == "mock_response"
    else:
        assert r.status_code == 200, r.text
