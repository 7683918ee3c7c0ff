"""The MCP loop's loose ends, on the scripted Anthropic model: a turn cut short (max_output_tokens)
ends its MCP calls `failed` with an error instead of leaving them `in_progress`, and a follow-up whose
history has `mcp_*` items but no `mcp` tool reaches a provider without MCP as text."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.tools.conftest import Env
from tests.tools.helpers import create, kinds, stream


def mcp_tool(env: Env) -> dict[str, Any]:
    return {"type": "mcp", "server_label": "tools", "server_url": env.mcp.url, "require_approval": "never"}


def test_cut_short_turn_ends_its_mcp_calls_failed(env: Env, http: httpx.Client) -> None:
    env.anthropic.script([("add", {"a": 2, "b": 3})])
    env.anthropic.stops.append("max_tokens")
    events = stream(http, model="claude", input="x", tools=[mcp_tool(env)])
    types = [e["type"] for e in events]
    assert types[-3:] == ["response.mcp_call.failed", "response.output_item.done", "response.incomplete"]
    final = events[-1]["response"]
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert kinds(final) == ["mcp_list_tools", "mcp_call"]
    call = final["output"][1]
    assert call["status"] == "failed" and "incomplete" in call["error"]["message"]
    assert env.mcp.calls == []  # a call the model did not finish is not run
    assert len(env.anthropic.requests) == 1  # and the response does not go on


def test_cut_short_turn_unary_and_stored(env: Env, http: httpx.Client) -> None:
    env.anthropic.script([("add", {"a": 1, "b": 1}), ("shout", {"text": "hi"})])
    env.anthropic.stops.append("max_tokens")
    done = create(http, model="claude", input="x", tools=[mcp_tool(env)])
    assert [i.get("status") for i in done["output"][1:]] == ["failed", "failed"]
    stored = http.get(f"/responses/{done['id']}").json()
    assert [i["status"] for i in stored["output"][1:]] == ["failed", "failed"]


def test_mcp_history_without_the_mcp_tool_goes_up_as_text(env: Env, http: httpx.Client) -> None:
    env.anthropic.script([("add", {"a": 2, "b": 3})], [])
    first = create(http, model="claude", input="add 2 and 3", tools=[mcp_tool(env)])
    assert kinds(first) == ["mcp_list_tools", "mcp_call", "message"]
    env.anthropic.requests.clear()
    env.anthropic.script([])
    second = create(http, model="claude", input="and now?", previous_response_id=first["id"])
    assert kinds(second) == ["message"]
    (body,) = (r.body for r in env.anthropic.requests)
    assert "tools" not in body
    said = json.dumps(body["messages"])
    assert "[MCP tool `add` of server `tools` called with" in said and "returned: 5]" in said
    assert "tool_use" not in said and "mcp_list_tools" not in said
