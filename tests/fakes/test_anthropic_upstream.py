# mypy: disable-error-code="union-attr, index, arg-type, attr-defined, call-overload, misc, operator, list-item, dict-item, assignment"
"""The fake Anthropic upstream, checked with the official `anthropic` SDK and raw HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic

HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
USER = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    with fake.serve() as base_url:
        yield fake, base_url


@pytest.fixture
def fake(served: tuple[FakeAnthropic, str]) -> FakeAnthropic:
    served[0].reset()
    return served[0]


@pytest.fixture
def base(served: tuple[FakeAnthropic, str], fake: FakeAnthropic) -> str:
    return served[1]


@pytest.fixture
def client(base: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test-key", base_url=base, max_retries=0)


def post(base: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{base}/v1/messages", json=body, headers=HEADERS if headers is None else headers)


def test_text_with_sdk_and_recording(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    msg = client.messages.create(model="scenario-text", max_tokens=256, system="Be brief.", messages=USER)
    assert msg.content[0].type == "text" and msg.content[0].text == "Hello! How can I help you today?"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.cache_creation_input_tokens == 1024 and msg.usage.cache_read_input_tokens == 2048
    rec = fake.last_request
    assert (rec.method, rec.path) == ("POST", "/v1/messages")
    assert rec.headers["authorization"] == "Bearer test-key" and rec.headers["anthropic-version"]
    assert rec.body == {"model": "scenario-text", "max_tokens": 256, "system": "Be brief.", "messages": USER}


def test_text_stream_with_sdk(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="scenario-text", max_tokens=256, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello! How can I help you today?"
    assert final.usage.output_tokens == 10 and final.usage.cache_read_input_tokens == 2048


def test_raw_stream_framing(base: str) -> None:
    with httpx.stream(
        "POST",
        f"{base}/v1/messages",
        headers=HEADERS,
        json={"model": "scenario-text", "max_tokens": 64, "messages": USER, "stream": True},
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = r.read().decode()
    events = body.split("\n\n")
    assert events[0].startswith('event: message_start\ndata: {"type":"message_start"')
    names = [e.split("\n")[0].removeprefix("event: ") for e in events if e]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]


def test_parallel_tool_use_stream(client: anthropic.Anthropic) -> None:
    tools = [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
        {
            "name": "get_time",
            "input_schema": {"type": "object", "properties": {"timezone": {"type": "string"}}},
        },
    ]
    with client.messages.stream(
        model="scenario-tool_use", max_tokens=512, tools=tools, messages=USER
    ) as stream:
        final = stream.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [
        ("get_weather", {"location": "Paris, France", "unit": "celsius"}),
        ("get_time", {"timezone": "Europe/Paris"}),
    ]
    assert final.stop_reason == "tool_use"
    # the next turn answers both tool_use ids
    results = [{"type": "tool_result", "tool_use_id": u.id, "content": "ok"} for u in uses]
    history = [
        *USER,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
        {"role": "user", "content": results},
    ]
    assert (
        client.messages.create(
            model="scenario-text", max_tokens=64, tools=tools, messages=history
        ).stop_reason
        == "end_turn"
    )


def test_thinking_stream(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="scenario-thinking",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=USER,
    ) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert "thinking" in kinds and "signature" in kinds
    assert final.content[0].type == "thinking" and final.content[0].signature.startswith("EiQ")
    assert final.content[1].text == "27 * 453 = 12,231."


def test_max_tokens(client: anthropic.Anthropic) -> None:
    assert (
        client.messages.create(model="scenario-max_tokens", max_tokens=16, messages=USER).stop_reason
        == "max_tokens"
    )


def test_overloaded_mid_stream(client: anthropic.Anthropic) -> None:
    stream = client.messages.stream(model="scenario-overloaded", max_tokens=64, messages=USER)
    with pytest.raises(anthropic.APIStatusError) as err, stream as events:
        for _ in events:
            pass
    assert err.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(anthropic.InternalServerError) as err2:
        client.messages.create(model="scenario-overloaded", max_tokens=64, messages=USER)
    assert err2.value.status_code == 529


def test_disconnect_mid_stream(base: str) -> None:
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST",
            f"{base}/v1/messages",
            headers=HEADERS,
            json={"model": "scenario-disconnect", "max_tokens": 64, "messages": USER, "stream": True},
        ) as r,
    ):
        r.read()
    with pytest.raises(httpx.RemoteProtocolError):
        post(base, {"model": "scenario-disconnect", "max_tokens": 64, "messages": USER})


@pytest.mark.parametrize(
    ("status", "cls", "etype"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (413, anthropic.APIStatusError, "request_too_large"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.InternalServerError, "overloaded_error"),
    ],
)
def test_injected_errors(
    fake: FakeAnthropic, client: anthropic.Anthropic, status: int, cls: type, etype: str
) -> None:
    fake.fail_next(status, retry_after=7 if status == 429 else None)
    with pytest.raises(cls) as err:
        client.messages.create(model="scenario-text", max_tokens=64, messages=USER)
    assert err.value.status_code == status
    assert err.value.body["type"] == "error" and err.value.body["error"]["type"] == etype
    if status == 429:
        assert err.value.response.headers["retry-after"] == "7"
    assert client.messages.create(model="scenario-text", max_tokens=64, messages=USER).id  # only the next one


def test_auth_and_version_headers(base: str) -> None:
    body = {"model": "scenario-text", "max_tokens": 64, "messages": USER}
    r = post(base, body, {"anthropic-version": "2023-06-01"})
    assert r.status_code == 401 and r.json()["error"] == {
        "type": "authentication_error",
        "message": "x-api-key header is required",
    }
    r = post(base, body, {"x-api-key": "wrong", "anthropic-version": "2023-06-01"})
    assert r.status_code == 401 and r.json()["error"]["message"] == "invalid x-api-key"
    r = post(base, body, {"x-api-key": "test-key"})
    assert r.status_code == 400 and r.json()["error"]["message"] == "anthropic-version: header is required"


IMG = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "m", "messages": USER}, "max_tokens: Field required"),
        ({"model": "m", "max_tokens": 10, "messages": USER, "foo": 1}, "foo: Extra inputs are not permitted"),
        ({"model": "m", "max_tokens": 10, "messages": []}, "messages: at least one message is required"),
        (
            {"model": "m", "max_tokens": 10, "messages": [{"role": "assistant", "content": "x"}]},
            'first message must use the "user" role',
        ),
        ({"model": "m", "max_tokens": 10, "messages": [*USER, *USER]}, "roles must alternate"),
        (
            {
                "model": "m",
                "max_tokens": 10,
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]}
                ],
            },
            "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_x.",
        ),
        (
            {
                "model": "m",
                "max_tokens": 10,
                "messages": [
                    *USER,
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "toolu_a", "name": "f", "input": {}}],
                    },
                    {"role": "user", "content": "next"},
                ],
            },
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_a.",
        ),
        (
            {
                "model": "m",
                "max_tokens": 4096,
                "thinking": {"type": "enabled", "budget_tokens": 512},
                "messages": USER,
            },
            "greater than or equal to 1024",
        ),
        (
            {
                "model": "m",
                "max_tokens": 2000,
                "thinking": {"type": "enabled", "budget_tokens": 2000},
                "messages": USER,
            },
            "`max_tokens` must be greater than `thinking.budget_tokens`",
        ),
        ({"model": "m", "max_tokens": 10, "system": [{"type": "image"}], "messages": USER}, "system.0.type"),
        (
            {
                "model": "m",
                "max_tokens": 10,
                "messages": [
                    {
                        "role": "user",
                        "content": [{**IMG, "source": {**IMG["source"], "media_type": "image/bmp"}}],
                    }
                ],
            },
            "media_type",
        ),
        (
            {
                "model": "m",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "url"}}]}],
            },
            "url",
        ),
        (
            {
                "model": "m",
                "max_tokens": 10,
                "tools": [{"name": "bad name", "input_schema": {"type": "object"}}],
                "messages": USER,
            },
            "String should match pattern",
        ),
    ],
)
def test_validation(base: str, body: dict[str, Any], message: str) -> None:
    r = post(base, body)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
    assert message in r.json()["error"]["message"]


def test_accepts_valid_rich_request(base: str) -> None:
    doc = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
    system = [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}]
    body = {
        "model": "scenario-text",
        "max_tokens": 64,
        "system": system,
        "messages": [{"role": "user", "content": [IMG, doc, {"type": "text", "text": "?"}]}],
    }
    assert post(base, body).status_code == 200


def test_unknown_scenario_is_unknown_model(base: str) -> None:
    r = post(base, {"model": "scenario-nope", "max_tokens": 8, "messages": USER})
    assert r.status_code == 404 and r.json()["error"] == {
        "type": "not_found_error",
        "message": "model: scenario-nope",
    }


def test_hold_streams_before_upstream_finishes(fake: FakeAnthropic, base: str) -> None:
    fake.hold_after(2)
    with httpx.stream(
        "POST",
        f"{base}/v1/messages",
        headers=HEADERS,
        json={"model": "scenario-text", "max_tokens": 8, "messages": USER, "stream": True},
    ) as r:
        lines = r.iter_lines()
        first = next(lines)  # arrives while the upstream is still holding
        assert first == "event: message_start"
        fake.release()
        rest = list(lines)
    assert "event: message_stop" in rest


def test_event_delay_and_control_scenario(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.event_delay = 0.02
    fake.scenario = "max_tokens"
    start = time.monotonic()
    with client.messages.stream(model="claude-any", max_tokens=8, messages=USER) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens" and time.monotonic() - start >= 0.02 * 8
