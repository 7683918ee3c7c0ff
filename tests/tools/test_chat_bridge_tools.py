"""The chat bridge (`POST /v1/chat/completions`, the official SDK) with Responses-only tools on a
NON-OpenAI deployment (the scripted Anthropic model): custom tools, namespaces with tool search and
MCP all run through the Responses core, and the chat completion's `tool_calls` carry the result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.tools.conftest import Env
from tests.tools.helpers import offered, tool_results
from tests.tools.test_tool_search import CRM

USER: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def client(env: Env, http: object) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{env.gateway.http_base}/v1", api_key="sk-unused", max_retries=0) as c:
        yield c


def test_custom_tool_in_chat_shape(env: Env, client: openai.OpenAI) -> None:
    env.anthropic.script([("code_exec", {"input": "print(1)"})])
    tool: Any = {"type": "custom", "custom": {"name": "code_exec", "description": "Runs code."}}
    done = client.chat.completions.create(model="claude", messages=USER, tools=[tool])
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.type == "custom" and call.custom.name == "code_exec" and call.custom.input == "print(1)"
    (sent,) = env.anthropic.requests[0].body["tools"]
    assert sent["name"] == "code_exec" and list(sent["input_schema"]["properties"]) == ["input"]


def test_namespace_and_tool_search_then_the_next_chat_turn(env: Env, client: openai.OpenAI) -> None:
    env.anthropic.script(
        [("tool_search", {"query": "open orders"})],
        [("crm__list_open_orders", {"customer_id": "C42"})],
    )
    tools: Any = [CRM, {"type": "tool_search"}]
    done = client.chat.completions.create(model="claude", messages=USER, tools=tools)
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "crm.list_open_orders"
    assert json.loads(call.function.arguments) == {"customer_id": "C42"}
    assert len(env.anthropic.requests) == 2  # the search ran between two upstream turns
    # The next chat turn answers the call: the loaded tool is offered again (the call names it),
    # and the call goes up under its flat name.
    env.anthropic.requests.clear()
    env.anthropic.script([])
    history: Any = [
        *USER,
        {"role": "assistant", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "2 open orders"},
    ]
    answer = client.chat.completions.create(model="claude", messages=history, tools=tools)
    assert answer.choices[0].message.content == "RESULTS: 2 open orders"
    (body,) = (r.body for r in env.anthropic.requests)
    assert "crm__list_open_orders" in offered(body)
    uses = [
        b
        for m in body["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
        if b["type"] == "tool_use"
    ]
    assert [u["name"] for u in uses] == ["crm__list_open_orders"]
    assert tool_results(body) == ["2 open orders"]


def test_chat_stream_names_the_namespace(env: Env, client: openai.OpenAI) -> None:
    env.anthropic.script([("tool_search", {"query": "invoice"})], [("crm__get_invoice", {"invoice": "A-1"})])
    chunks = list(
        client.chat.completions.create(
            model="claude", messages=USER, tools=[CRM, {"type": "tool_search"}], stream=True
        )
    )
    names = [
        tc.function.name
        for c in chunks
        for tc in (c.choices[0].delta.tool_calls or [])
        if c.choices and tc.function and tc.function.name
    ]
    assert names == ["crm.get_invoice"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "tool_calls"
    ]


def test_mcp_runs_for_the_chat_bridge(env: Env, client: openai.OpenAI) -> None:
    env.anthropic.script([("add", {"a": 4, "b": 5})], [])
    mcp: Any = {
        "type": "mcp",
        "server_label": "tools",
        "server_url": env.mcp.url,
        "require_approval": "never",
    }
    done = client.chat.completions.create(model="claude", messages=USER, tools=[mcp])
    choice = done.choices[0]
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    assert choice.message.content == "RESULTS: 9"
    assert env.mcp.calls == [("add", {"a": 4, "b": 5})]
