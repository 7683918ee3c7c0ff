"""Chat Completions the other way: `POST /v1/chat/completions` (the official SDK) served by OpenAI-native,
Anthropic and chat-bridge deployments; and the `openai/responses/...`, `openai/chat_completions/...` and
`use_chat_completions_api` routes going where they say."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.providers.conftest import Adapter, Env

HELLO = "Hello! How can I help you today?"
USER = [{"role": "user", "content": "hi"}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {"name": n, "parameters": {"type": "object", "properties": {p: {"type": "string"}}}},
    }
    for n, p in (("get_weather", "location"), ("get_time", "timezone"))
]


@pytest.fixture(params=["openai", "anthropic", "chat"])
def target(request: pytest.FixtureRequest, env: Env) -> Adapter:
    return env.adapters[request.param]


def _extra(obj: Any, name: str) -> Any:
    return (obj.model_extra or {}).get(name)


def test_unary_text(target: Adapter, client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model=target.model(), messages=[{"role": "system", "content": "Be brief."}, *USER]
    )
    assert r.object == "chat.completion" and len(r.choices) == 1
    choice = r.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == HELLO
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    assert r.usage is not None and r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    (sent,) = target.calls()
    if target.native:
        assert sent["store"] is False  # chat requests are stateless
        assert sent["input"][0] == {"type": "message", "role": "system", "content": "Be brief."}
    elif target.name == "anthropic":
        assert sent["system"] == [{"type": "text", "text": "Be brief."}]
    else:
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize("include_usage", [True, False], ids=["usage", "no-usage"])
def test_stream_text(target: Adapter, client: openai.OpenAI, include_usage: bool) -> None:
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(client.chat.completions.create(model=target.model(), messages=USER, stream=True, **extra))
    assert {c.object for c in chunks} == {"chat.completion.chunk"} and len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == HELLO
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    if include_usage:
        *body, last = chunks
        assert last.choices == [] and last.usage is not None and last.usage.total_tokens > 0
        assert all(c.usage is None for c in body)
    else:
        assert all(c.usage is None and c.choices for c in chunks)


def test_tool_calls(target: Adapter, client: openai.OpenAI) -> None:
    model = target.model("tools")
    r = client.chat.completions.create(model=model, messages=USER, tools=TOOLS)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 2 and all(c.id and c.type == "function" for c in calls)
    unary = [(c.function.name, json.loads(c.function.arguments)) for c in calls]

    chunks = list(client.chat.completions.create(model=model, messages=USER, tools=TOOLS, stream=True))
    by_index: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            if tc.index not in by_index:  # the first delta of a call names it
                assert tc.id and tc.function and tc.function.name
                by_index[tc.index] = {"name": tc.function.name, "args": ""}
            by_index[tc.index]["args"] += (tc.function.arguments if tc.function else None) or ""
    assert sorted(by_index) == [0, 1]
    assert [(by_index[i]["name"], json.loads(by_index[i]["args"])) for i in (0, 1)] == unary
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "tool_calls"
    ]

    # the results go back as `tool` messages; the upstream (which checks the pairing) answers
    history = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [c.model_dump() for c in calls]},
        *({"role": "tool", "tool_call_id": c.id, "content": f"result {i}"} for i, c in enumerate(calls)),
    ]
    done = client.chat.completions.create(model=target.model(), messages=history, tools=TOOLS)
    assert done.choices[0].message.content == HELLO


def test_reasoning_content(target: Adapter, client: openai.OpenAI) -> None:
    model = target.model("reasoning")
    r = client.chat.completions.create(model=model, messages=USER, reasoning_effort="low")
    message = r.choices[0].message
    reasoning = _extra(message, "reasoning_content")
    assert isinstance(reasoning, str) and reasoning and message.content
    chunks = list(
        client.chat.completions.create(model=model, messages=USER, reasoning_effort="low", stream=True)
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    kinds = [
        "r" if _extra(d, "reasoning_content") else "c"
        for d in deltas
        if _extra(d, "reasoning_content") or d.content
    ]
    assert "".join(kinds).startswith("r") and "cr" not in "".join(kinds)  # reasoning first, then the answer
    assert "".join(_extra(d, "reasoning_content") or "" for d in deltas) == reasoning
    assert "".join(d.content or "" for d in deltas) == message.content


# ------------------------------------------------------------------------------------------ forced routes
@pytest.mark.parametrize(
    ("prefix", "upstream"),
    [("ors", "openai"), ("occ", "chat"), ("ucc", "chat")],
    ids=["responses", "chat_completions", "use_chat_completions_api"],
)
def test_forced_api_routes(env: Env, client: openai.OpenAI, prefix: str, upstream: str) -> None:
    model = f"{prefix}-text"
    assert client.responses.create(model=model, input="hi", max_output_tokens=64).output_text == HELLO
    done = client.chat.completions.create(model=model, messages=USER, max_completion_tokens=64)
    assert done.choices[0].message.content == HELLO
    oa_calls = [r.body for r in env.openai.create_requests]
    chat_calls = [r.body for r in env.chat.requests]
    if upstream == "openai":
        assert chat_calls == [] and len(oa_calls) == 2
        assert all(b["model"] == "scenario-text" and b["max_output_tokens"] == 64 for b in oa_calls)
    else:
        assert oa_calls == [] and len(chat_calls) == 2
        assert {r.path for r in env.chat.requests} == {"/v1/chat/completions"}
        # an OpenAI model on the chat API: `max_completion_tokens` (reasoning models refuse max_tokens)
        assert all(b["model"] == "scenario-text" and b["max_completion_tokens"] == 64 for b in chat_calls)
        assert all("max_tokens" not in b for b in chat_calls)


def test_mock_response_on_the_chat_api(target: Adapter, client: openai.OpenAI) -> None:
    """LiteLLM's request-level `mock_response` works on /v1/chat/completions too: nothing goes upstream."""
    r = client.chat.completions.create(
        model=target.model(), messages=USER, extra_body={"mock_response": "canned"}
    )
    assert r.choices[0].message.content == "canned" and r.choices[0].finish_reason == "stop"
    chunks = list(
        client.chat.completions.create(
            model=target.model(), messages=USER, stream=True, extra_body={"mock_response": "canned too"}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "canned too"
    assert target.calls() == []
