# mypy: disable-error-code="union-attr, index, arg-type, attr-defined, call-overload, misc, operator, list-item, dict-item, assignment"
"""The fake Chat Completions upstream, checked with the official `openai` SDK and raw HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.chat_upstream import FakeChat

HEADERS = {"authorization": "Bearer test-key"}
USER = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeChat, str]]:
    fake = FakeChat()
    with fake.serve() as base_url:
        yield fake, base_url


@pytest.fixture
def fake(served: tuple[FakeChat, str]) -> Iterator[FakeChat]:
    served[0].reset()
    yield served[0]
    served[0].lenient = False


@pytest.fixture
def base(served: tuple[FakeChat, str], fake: FakeChat) -> str:
    return served[1]


@pytest.fixture
def client(base: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="test-key", base_url=f"{base}/v1", max_retries=0)


def post(base: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/chat/completions", json=body, headers=HEADERS if headers is None else headers
    )


def test_text_with_sdk_and_recording(fake: FakeChat, client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="scenario-text",
        messages=[{"role": "developer", "content": "Be brief."}, *USER],
        max_completion_tokens=64,
    )
    assert resp.choices[0].message.content == "Hello! How can I help you today?"
    assert resp.choices[0].finish_reason == "stop" and resp.object == "chat.completion"
    assert resp.usage.prompt_tokens_details.cached_tokens == 2048
    rec = fake.last_request
    assert (rec.method, rec.path, rec.headers["authorization"]) == (
        "POST",
        "/v1/chat/completions",
        "Bearer test-key",
    )
    assert rec.body == {
        "model": "scenario-text",
        "messages": [{"role": "developer", "content": "Be brief."}, *USER],
        "max_completion_tokens": 64,
    }


def test_stream_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="scenario-text", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Hello! How can I help you today?"
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 2110
    assert all(c.usage is None for c in chunks[:-1])


def test_raw_stream_framing(base: str) -> None:
    r = post(base, {"model": "scenario-text", "messages": USER, "stream": True})
    events = [e for e in r.text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    datas = [json.loads(e[6:]) for e in events[:-1]]
    assert all(d["object"] == "chat.completion.chunk" and "usage" not in d for d in datas)  # no include_usage
    assert datas[-1]["choices"][0]["finish_reason"] == "stop"


def test_parallel_tool_calls_stream(client: openai.OpenAI) -> None:
    tools = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
        for n in ("get_weather", "get_time")
    ]
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    for chunk in client.chat.completions.create(
        model="scenario-tool_calls", messages=USER, tools=tools, stream=True
    ):
        for tc in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(tc.index, {"id": tc.id, "name": tc.function.name, "arguments": ""})
            entry["arguments"] += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("get_weather", {"location": "Paris, France", "unit": "celsius"}),
        ("get_time", {"timezone": "Europe/Paris"}),
    ]
    # the next request answers both calls
    msg = (
        client.chat.completions.create(model="scenario-tool_calls", messages=USER, tools=tools)
        .choices[0]
        .message
    )
    history = [
        *USER,
        msg.model_dump(exclude_none=True),
        *({"role": "tool", "tool_call_id": t.id, "content": "ok"} for t in msg.tool_calls),
    ]
    assert (
        client.chat.completions.create(model="scenario-text", messages=history, tools=tools)
        .choices[0]
        .finish_reason
        == "stop"
    )


def test_reasoning_content(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="scenario-reasoning", messages=USER)
    msg = resp.choices[0].message
    assert msg.reasoning_content.startswith("Let me work") and msg.content == "27 * 453 = 12,231."
    assert resp.usage.completion_tokens_details.reasoning_tokens == 80
    chunks = list(client.chat.completions.create(model="scenario-reasoning", messages=USER, stream=True))
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks)
    assert reasoning == msg.reasoning_content


@pytest.mark.parametrize(("scenario", "finish"), [("length", "length"), ("content_filter", "content_filter")])
def test_finish_reasons(client: openai.OpenAI, scenario: str, finish: str) -> None:
    assert (
        client.chat.completions.create(model=f"scenario-{scenario}", messages=USER).choices[0].finish_reason
        == finish
    )


def test_mid_stream_error_and_disconnect(client: openai.OpenAI, base: str) -> None:
    with pytest.raises(openai.APIError) as err:
        list(client.chat.completions.create(model="scenario-stream_error", messages=USER, stream=True))
    assert err.value.body["type"] == "server_error"
    with pytest.raises(httpx.RemoteProtocolError):
        post(base, {"model": "scenario-disconnect", "messages": USER, "stream": True})
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="scenario-disconnect", messages=USER)


@pytest.mark.parametrize(
    ("status", "cls", "etype"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (401, openai.AuthenticationError, "invalid_request_error"),
        (404, openai.NotFoundError, "invalid_request_error"),
        (429, openai.RateLimitError, "requests"),
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "server_error"),
    ],
)
def test_injected_errors(fake: FakeChat, client: openai.OpenAI, status: int, cls: type, etype: str) -> None:
    fake.fail_next(status, retry_after=3 if status == 429 else None)
    with pytest.raises(cls) as err:
        client.chat.completions.create(model="scenario-text", messages=USER)
    assert err.value.status_code == status and err.value.body["type"] == etype
    if status == 429:
        assert err.value.response.headers["retry-after"] == "3" and err.value.code == "rate_limit_exceeded"
    assert client.chat.completions.create(model="scenario-text", messages=USER).id


def test_auth(base: str) -> None:
    r = post(base, {"model": "scenario-text", "messages": USER}, {})
    assert r.status_code == 401 and "You didn't provide an API key" in r.json()["error"]["message"]
    r = post(base, {"model": "scenario-text", "messages": USER}, {"authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


ASSISTANT_CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": USER}, "Missing required parameter: 'model'."),
        ({"model": "m", "messages": USER, "foo": 1}, "Unrecognized request argument supplied: foo"),
        ({"model": "m", "messages": []}, "empty array"),
        ({"model": "m", "messages": [{"role": "bot", "content": "x"}]}, "Invalid value: 'bot'"),
        (
            {"model": "m", "messages": [*USER, {"role": "tool", "tool_call_id": "call_1", "content": "x"}]},
            "must be a response to a preceeding message with 'tool_calls'",
        ),
        (
            {
                "model": "m",
                "messages": [
                    *USER,
                    ASSISTANT_CALL,
                    {"role": "tool", "tool_call_id": "call_2", "content": "x"},
                ],
            },
            "'tool_call_id' of 'call_2' not found",
        ),
        (
            {"model": "m", "messages": [*USER, ASSISTANT_CALL, *USER]},
            "did not have response messages: call_1",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "'messages[0].content[0].image_url.url'",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
                ],
            },
            "Invalid value: 'image_url'",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_audio", "input_audio": {"data": "AA==", "format": "ogg"}}
                        ],
                    }
                ],
            },
            "'wav' and 'mp3'",
        ),
        ({"model": "m", "messages": USER, "tools": [{"type": "retrieval"}]}, "Invalid value: 'retrieval'"),
        ({"model": "m", "messages": USER, "response_format": {"type": "xml"}}, "Invalid value: 'xml'"),
        (
            {"model": "m", "messages": USER, "response_format": {"type": "json_schema", "json_schema": {}}},
            "json_schema.name",
        ),
        (
            {"model": "m", "messages": USER, "stream_options": {"include_usage": True}},
            "only allowed when 'stream' is enabled",
        ),
    ],
)
def test_validation(base: str, body: dict[str, Any], message: str) -> None:
    r = post(base, body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert (
        err["type"] == "invalid_request_error"
        and message in err["message"]
        and set(err) == {"message", "type", "param", "code"}
    )


def test_lenient_accepts_extensions(fake: FakeChat, base: str) -> None:
    body = {
        "model": "scenario-text",
        "messages": USER,
        "chat_template_kwargs": {"enable_thinking": True},
        "top_k": 20,
    }
    assert post(base, body).status_code == 400
    fake.lenient = True
    assert post(base, body).status_code == 200


def test_accepts_valid_rich_request(base: str) -> None:
    content = [
        {"type": "text", "text": "see"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-abc"}},
    ]
    schema = {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
    }
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": content},
        ASSISTANT_CALL,
        {"role": "tool", "tool_call_id": "call_1", "content": "r"},
    ]
    assert (
        post(base, {"model": "scenario-text", "messages": messages, "response_format": schema}).status_code
        == 200
    )


def test_unknown_scenario_is_unknown_model(base: str) -> None:
    r = post(base, {"model": "scenario-nope", "messages": USER})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


def test_hold_streams_before_upstream_finishes(fake: FakeChat, base: str) -> None:
    fake.hold_after(1)
    with httpx.stream(
        "POST",
        f"{base}/v1/chat/completions",
        headers=HEADERS,
        json={"model": "scenario-text", "messages": USER, "stream": True},
    ) as r:
        lines = r.iter_lines()
        assert json.loads(next(lines)[6:])["choices"][0]["delta"]["role"] == "assistant"
        fake.release()
        assert [x for x in lines if x][-1] == "data: [DONE]"
