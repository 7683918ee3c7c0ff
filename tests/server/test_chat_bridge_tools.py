"""The chat bridge (`POST /v1/chat/completions`, the official SDK as client) with LiteLLM's parameter rules
and Responses-only tools: each rule checked on the request the OpenAI fake received, and the tool results
on the chat completion (`tool_calls`, web citations as `annotations`)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.server.conftest import MODEL

USER: list[Any] = [{"role": "user", "content": "hi"}]


def _sent(fake: FakeOpenAI) -> dict[str, Any]:
    (req,) = fake.create_requests
    body: dict[str, Any] = req.body
    return body


# ------------------------------------------------------------------------------------------ parameters
def test_reasoning_effort_string_sets_only_the_effort(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    client.chat.completions.create(model=MODEL, messages=USER, reasoning_effort="low")
    assert _sent(fake)["reasoning"] == {"effort": "low"}  # no `summary`: unverified orgs get a 400 for it


def test_reasoning_effort_object_sets_effort_and_summary(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    client.chat.completions.create(
        model=MODEL, messages=USER, extra_body={"reasoning_effort": {"effort": "high", "summary": "detailed"}}
    )
    assert _sent(fake)["reasoning"] == {"effort": "high", "summary": "detailed"}


def test_reasoning_effort_of_another_shape_is_a_400(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model=MODEL, messages=USER, extra_body={"reasoning_effort": {"budget": 3}}
        )
    assert err.value.body["param"] == "reasoning_effort"  # type: ignore[index]
    assert fake.create_requests == []


def test_verbosity_becomes_text_verbosity(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    schema = {"name": "answer", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}
    client.chat.completions.create(
        model=MODEL,
        messages=USER,
        verbosity="low",
        response_format={"type": "json_schema", "json_schema": schema},
    )
    assert _sent(fake)["text"] == {"format": {"type": "json_schema", **schema}, "verbosity": "low"}


def test_web_search_options_become_the_web_search_tool(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    client.chat.completions.create(
        model=MODEL,
        messages=USER,
        web_search_options={
            "search_context_size": "low",
            "user_location": {"type": "approximate", "approximate": {"city": "Paris", "country": "FR"}},
        },
    )
    assert _sent(fake)["tools"] == [
        {
            "type": "web_search",
            "search_context_size": "low",
            "user_location": {"type": "approximate", "city": "Paris", "country": "FR"},
        }
    ]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"user": "u-1"}, {"user": "u-1"}),
        ({"safety_identifier": "s-1"}, {"safety_identifier": "s-1"}),
        ({"user": "u-1", "safety_identifier": "s-1"}, {"user": "u-1", "safety_identifier": "s-1"}),
    ],
    ids=["user", "safety_identifier", "both"],
)
def test_user_and_safety_identifier_keep_their_own_fields(
    fake: FakeOpenAI, client: openai.OpenAI, given: dict[str, str], expected: dict[str, str]
) -> None:
    client.chat.completions.create(model=MODEL, messages=USER, extra_body=given)
    sent = _sent(fake)
    assert {k: sent[k] for k in ("user", "safety_identifier") if k in sent} == expected


def test_openai_responses_model_spelling(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    """LiteLLM's `openai/responses/<model>` names the deployment `<model>`, reached through Responses."""
    done = client.chat.completions.create(model=f"openai/responses/{MODEL}", messages=USER)
    assert done.choices[0].message.content
    assert _sent(fake)["model"] == MODEL


# ------------------------------------------------------------------------------------------ tools
NAMESPACE = {
    "type": "namespace",
    "name": "weather",
    "description": "Weather tools.",
    "tools": [
        {
            "type": "function",
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
            "defer_loading": True,
        }
    ],
}


def test_responses_only_tools_reach_openai_and_calls_come_back(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.scenario = "function_calls"
    tools: Any = [NAMESPACE, {"type": "tool_search"}, {"type": "image_generation", "partial_images": 1}]
    done = client.chat.completions.create(model=MODEL, messages=USER, tools=tools)
    assert _sent(fake)["tools"] == tools  # Responses' shape, handed on as it is
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.type, c.function.name) for c in calls if c.type == "function"] == [
        ("function", "get_weather")
    ] * 2
    assert all(c.id.startswith("call_") for c in calls)


def test_custom_tool_chat_shape_and_its_call(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.scenario = "custom_tool_call"
    grammar = {"type": "grammar", "grammar": {"syntax": "lark", "definition": 'start: "print(" /[^)]*/ ")"'}}
    tool: Any = {
        "type": "custom",
        "custom": {"name": "code_exec", "description": "Runs code.", "format": grammar},
    }
    done = client.chat.completions.create(model=MODEL, messages=USER, tools=[tool])
    assert _sent(fake)["tools"] == [
        {
            "type": "custom",
            "name": "code_exec",
            "description": "Runs code.",
            "format": {"type": "grammar", "syntax": "lark", "definition": 'start: "print(" /[^)]*/ ")"'},
        }
    ]
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.type == "custom" and call.custom.name == "code_exec" and call.custom.input == "print('hello')"
    # The next turn answers it: the call and its output go back as custom items.
    fake.create_requests.clear()
    fake.requests.clear()
    fake.scenario = "text"
    history: Any = [
        *USER,
        {"role": "assistant", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "hello"},
    ]
    client.chat.completions.create(model=MODEL, messages=history, tools=[tool])
    sent = _sent(fake)["input"]
    assert sent[1] == {
        "type": "custom_tool_call",
        "call_id": call.id,
        "name": "code_exec",
        "input": "print('hello')",
    }
    assert sent[2] == {"type": "custom_tool_call_output", "call_id": call.id, "output": "hello"}


def test_custom_tool_call_streamed(fake: FakeOpenAI, http: httpx.Client) -> None:
    fake.scenario = "custom_tool_call"
    tool = {"type": "custom", "name": "code_exec"}
    with http.stream(
        "POST", "/chat/completions", json={"model": MODEL, "messages": USER, "tools": [tool], "stream": True}
    ) as resp:
        lines = [ln.removeprefix("data: ") for ln in resp.iter_lines() if ln.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(ln) for ln in lines[:-1]]
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert calls == [
        {
            "index": 0,
            "id": "call_" + calls[0]["id"].removeprefix("call_"),
            "type": "custom",
            "custom": {"name": "code_exec", "input": "print('hello')"},
        }
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]] == [
        "tool_calls"
    ]


def test_web_search_answer_carries_url_citations(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.scenario = "web_search"
    done = client.chat.completions.create(model=MODEL, messages=USER, web_search_options={})
    message = done.choices[0].message
    assert done.choices[0].finish_reason == "stop" and message.tool_calls is None
    content = message.content or ""
    (note,) = message.annotations or []
    cite = note.url_citation
    assert cite.url == "https://www.example.org/good-news?utm_source=openai"
    assert content[cite.start_index : cite.end_index] == "(example.org)"
    streamed = list(
        client.chat.completions.create(model=MODEL, messages=USER, web_search_options={}, stream=True)
    )
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    notes = [
        a
        for c in streamed
        if c.choices
        for a in (c.choices[0].delta.model_extra or {}).get("annotations", [])
    ]
    assert text == content
    assert notes == [note.model_dump()]


def test_unknown_tool_type_is_a_400(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=USER, tools=[{"type": "telepathy"}])  # type: ignore[list-item]
    assert err.value.body["param"] == "tools[0].type"  # type: ignore[index]
    assert "telepathy" in err.value.body["message"]  # type: ignore[index]
    assert fake.create_requests == []
