"""MCP run by the gateway, end to end: a real MCP server (the `mcp` SDK, streamable HTTP), a scripted
model behind a real provider adapter (Anthropic, and OpenAI-native with `mcp_execution: gateway`), the
real gateway process, REST and gRPC clients. Every event and response is checked against OpenAI's spec
(and against the Open Responses spec where it defines the object: it has no MCP items or events)."""

from __future__ import annotations

import json
import time
from typing import Any

import grpc
import httpx
import pytest

from responses_gateway import codec
from responses_gateway.v1 import request_pb2, responses_service_pb2_grpc
from tests.mcp.conftest import SECRET, Env
from tests.support.spec import BothSpecs
from tests.support.sse import sse_events

SPECS = BothSpecs()
MCP_WORDS = ("mcp_", "response.mcp")


def mcp_tool(env: Env, **fields: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": "tools", "server_url": env.mcp.url, **fields}


def check(payload: dict[str, Any], *, event: bool) -> None:
    """OpenAI's spec for everything; Open Responses' for what it defines (nothing of MCP)."""
    if event:
        SPECS.openai.check_event(payload)
    else:
        SPECS.openai.check("Response", payload)
    text = json.dumps(payload)
    if any(w in text for w in MCP_WORDS) or '"type": "mcp"' in text:
        return
    if event:
        SPECS.open_responses.check_event(payload)
    else:
        SPECS.open_responses.check("ResponseResource", payload)


def stream(http: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    with http.stream("POST", "/responses", json={"input": "use the tools", "stream": True, **body}) as r:
        assert r.status_code == 200, r.read()
        events = sse_events(r)
    for e in events:
        check(e, event=True)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def create(http: httpx.Client, **body: Any) -> dict[str, Any]:
    r = http.post("/responses", json={"input": "use the tools", **body})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    check(out, event=False)
    return out


def kinds(response: dict[str, Any]) -> list[str]:
    return [i["type"] for i in response["output"]]


def text_of(response: dict[str, Any]) -> str:
    return "".join(c["text"] for i in response["output"] if i["type"] == "message" for c in i["content"])


# ------------------------------------------------------------------------------------- auto-run
def test_auto_run_streams_mcp_events_in_order(env: Env, http: httpx.Client) -> None:
    env.anthropic.script([("add", {"a": 2, "b": 3})])
    events = stream(http, model="claude", tools=[mcp_tool(env, require_approval="never")])
    types = [e["type"] for e in events]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ], types
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [0, 1, 2]
    final = events[-1]["response"]
    assert kinds(final) == ["mcp_list_tools", "mcp_call", "message"]
    listing, call = final["output"][0], final["output"][1]
    assert {t["name"] for t in listing["tools"]} == {
        "add",
        "shout",
        "delete_record",
        "slow",
        "explode",
        "big",
    }
    assert call["name"] == "add" and json.loads(call["arguments"]) == {"a": 2, "b": 3}
    assert call["output"] == "5" and call["status"] == "completed" and call["server_label"] == "tools"
    assert {e["item_id"] for e in events if e["type"].startswith("response.mcp_call")} == {call["id"]}
    assert text_of(final) == "RESULTS: 5"
    assert env.mcp.calls == [("add", {"a": 2, "b": 3})]
    # The model was offered the server's tools as functions, and saw the call and its result.
    first, second = env.anthropic.requests[0].body, env.anthropic.requests[1].body
    assert {t["name"] for t in first["tools"]} == {"add", "shout", "delete_record", "slow", "explode", "big"}
    assert second["messages"][-1]["content"][0]["type"] == "tool_result"
    assert final["usage"]["input_tokens"] == 20  # both upstream turns
    assert final["tools"][0]["type"] == "mcp"  # as the client asked
    stored = http.get(f"/responses/{final['id']}").json()
    assert stored == final


def test_unary_and_grpc_give_the_same_response(env: Env, http: httpx.Client) -> None:
    env.anthropic.script([("shout", {"text": "hi"})])
    tools = [mcp_tool(env, require_approval="never")]
    final = create(http, model="claude", tools=tools)
    assert kinds(final) == ["mcp_list_tools", "mcp_call", "message"] and text_of(final) == "RESULTS: HI"

    env.anthropic.script([("shout", {"text": "grpc"})])
    request = codec.from_json(
        request_pb2.CreateResponseRequest(), {"model": "claude", "input": "use the tools", "tools": tools}
    )
    with grpc.insecure_channel(env.gateway.grpc_target) as channel:
        stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
        got = [codec.to_json(e) for e in stub.StreamResponse(request, timeout=30)]
    types = [e["type"] for e in got]
    assert types[2:6] == [
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.output_item.done",
    ]
    assert "response.mcp_call.completed" in types and types[-1] == "response.completed"
    assert text_of(got[-1]["response"]) == "RESULTS: GRPC"


def test_allowed_tools_filter(env: Env, http: httpx.Client) -> None:
    env.anthropic.script([("add", {"a": 1, "b": 1})])
    final = create(
        http, model="claude", tools=[mcp_tool(env, require_approval="never", allowed_tools=["add"])]
    )
    assert [t["name"] for t in final["output"][0]["tools"]] == ["add"]
    assert [t["name"] for t in env.anthropic.requests[0].body["tools"]] == ["add"]
    # The read-only filter: the tools whose readOnlyHint is set.
    env.anthropic.script()
    final = create(
        http,
        model="claude",
        tools=[mcp_tool(env, require_approval="never", allowed_tools={"read_only": True})],
    )
    assert sorted(t["name"] for t in final["output"][0]["tools"]) == ["add", "shout"]


def test_a_failing_and_a_slow_tool_become_errors_and_the_model_goes_on(env: Env, http: httpx.Client) -> None:
    env.anthropic.script([("explode", {"reason": "bad"}), ("slow", {"seconds": 30})])
    started = time.monotonic()
    final = create(http, model="claude", tools=[mcp_tool(env, require_approval="never")])
    assert time.monotonic() - started < 10  # the 2 s call limit, not the tool's 30 s
    calls = [i for i in final["output"] if i["type"] == "mcp_call"]
    assert [c["status"] for c in calls] == ["failed", "failed"]
    assert calls[0]["error"]["type"] == "mcp_tool_execution_error"
    assert "the tool exploded: bad" in json.dumps(calls[0]["error"]["content"])
    assert calls[1]["error"]["type"] == "mcp_protocol_error" and "in time" in calls[1]["error"]["message"]
    assert text_of(final).startswith("RESULTS: Error:") and "exploded" in text_of(final)


def test_too_large_an_output_is_an_error(env: Env, http: httpx.Client) -> None:
    env.anthropic.script([("big", {"size": 60_000})])
    final = create(http, model="claude", tools=[mcp_tool(env, require_approval="never")])
    call = final["output"][1]
    assert call["status"] == "failed" and "max_output_bytes" in call["error"]["message"]


def test_an_unreachable_server_fails_its_listing_not_the_response(env: Env, http: httpx.Client) -> None:
    events = stream(
        http,
        model="claude",
        tools=[mcp_tool(env, server_url="http://127.0.0.1:9/mcp", require_approval="never")],
    )
    types = [e["type"] for e in events]
    assert "response.mcp_list_tools.failed" in types and types[-1] == "response.completed"
    final = events[-1]["response"]
    assert final["output"][0]["type"] == "mcp_list_tools" and final["output"][0]["error"]
    assert "tools" not in env.anthropic.requests[-1].body  # nothing to offer


# ------------------------------------------------------------------------------------- limits
def test_the_round_limit_ends_the_response(env: Env, http: httpx.Client) -> None:
    env.anthropic.script(*[[("shout", {"text": f"r{n}"})] for n in range(6)])
    final = create(http, model="claude", tools=[mcp_tool(env, require_approval="never")])
    assert kinds(final) == ["mcp_list_tools", "mcp_call", "mcp_call", "mcp_call"]  # max_rounds: 3
    assert len(env.anthropic.requests) == 3 and final["status"] == "completed"


def test_max_tool_calls_stops_calls_past_it(env: Env, http: httpx.Client) -> None:
    env.anthropic.script([("add", {"a": 1, "b": 2}), ("add", {"a": 3, "b": 4})])
    final = create(http, model="claude", max_tool_calls=1, tools=[mcp_tool(env, require_approval="never")])
    calls = [i for i in final["output"] if i["type"] == "mcp_call"]
    assert [c["status"] for c in calls] == ["completed", "failed"]
    assert "max_tool_calls" in calls[1]["error"]["message"]
    assert env.mcp.calls == [("add", {"a": 1, "b": 2})]


# ------------------------------------------------------------------------------------- approval
@pytest.mark.parametrize("approve", [True, False])
def test_the_approval_round_trip(env: Env, http: httpx.Client, approve: bool) -> None:
    tools = [mcp_tool(env)]  # require_approval unset: always, as on OpenAI
    env.anthropic.script([("delete_record", {"record_id": "r1"})])
    first = create(http, model="claude", tools=tools)
    assert kinds(first) == ["mcp_list_tools", "mcp_approval_request"]
    asked = first["output"][1]
    assert asked["name"] == "delete_record" and json.loads(asked["arguments"]) == {"record_id": "r1"}
    assert env.mcp.calls == []  # nothing ran without approval

    answer = {"type": "mcp_approval_response", "approval_request_id": asked["id"], "approve": approve}
    events = stream(http, model="claude", tools=tools, previous_response_id=first["id"], input=[answer])
    second = events[-1]["response"]
    if approve:
        assert kinds(second) == ["mcp_call", "message"]  # no listing again: the history has it
        call = second["output"][0]
        assert call["approval_request_id"] == asked["id"] and call["output"] == "deleted r1"
        assert env.mcp.calls == [("delete_record", {"record_id": "r1"})]
        assert text_of(second) == "RESULTS: deleted r1"
    else:
        assert kinds(second) == ["message"]
        assert env.mcp.calls == []
        assert text_of(second) == "RESULTS: The user refused this tool call."
    # The model saw its call answered in the conversation, once.
    last = env.anthropic.requests[-1].body["messages"]
    assert sum(b.get("type") == "tool_use" for m in last for b in m["content"] if isinstance(b, dict)) == 1


def test_per_tool_approval_filter(env: Env, http: httpx.Client) -> None:
    tools = [mcp_tool(env, require_approval={"never": {"tool_names": ["add"]}})]
    env.anthropic.script([("add", {"a": 1, "b": 1}), ("delete_record", {"record_id": "x"})])
    final = create(http, model="claude", tools=tools)
    assert kinds(final) == ["mcp_list_tools", "mcp_call", "mcp_approval_request"]
    assert env.mcp.calls == [("add", {"a": 1, "b": 1})]


def test_an_unknown_approval_request_is_a_400(env: Env, http: httpx.Client) -> None:
    answer = {"type": "mcp_approval_response", "approval_request_id": "mcpr_nope", "approve": True}
    r = http.post("/responses", json={"model": "claude", "input": [answer], "tools": [mcp_tool(env)]})
    assert r.status_code == 400 and "mcpr_nope" in r.json()["error"]["message"]


# ------------------------------------------------------------------------------------- security
def test_a_url_outside_the_allow_list_is_refused(env: Env, http: httpx.Client) -> None:
    r = http.post(
        "/responses",
        json={
            "model": "claude",
            "input": "x",
            "tools": [mcp_tool(env, server_url="https://example.com/mcp")],
        },
    )
    assert r.status_code == 400
    err = r.json()["error"]
    assert (
        "gateway_settings.mcp.allowed_server_urls" in err["message"] and err["param"] == "tools[0].server_url"
    )
    assert env.anthropic.requests == []


@pytest.mark.parametrize("url", ["http://169.254.169.254/mcp", "http://169.254.169.254/latest/meta-data/"])
def test_metadata_addresses_are_refused_even_when_allowed(env: Env, http: httpx.Client, url: str) -> None:
    r = http.post(
        "/responses", json={"model": "claude", "input": "x", "tools": [mcp_tool(env, server_url=url)]}
    )
    assert r.status_code == 400 and "metadata" in r.json()["error"]["message"]


def test_a_registered_server_gets_its_secret_and_the_client_never_sees_it(
    env: Env, http: httpx.Client
) -> None:
    env.anthropic.script([("add", {"a": 20, "b": 22})])
    tool = {
        "type": "mcp",
        "server_label": "reg",
        "server_url": "litellm_proxy/mcp/secured",
        "require_approval": "never",
    }
    r = http.post("/responses", json={"model": "claude", "input": "x", "tools": [tool]})
    assert r.status_code == 200, r.text
    assert SECRET not in r.text and env.secured.url not in r.text
    final = r.json()
    check(final, event=False)
    assert final["output"][1]["output"] == "42"
    assert env.secured.calls == [("add", {"a": 20, "b": 22})]
    assert all(h.get("x-api-key") == SECRET for h in env.secured.headers_seen)
    # All registered servers at once: one label, each tool under its server's name.
    env.anthropic.script([("secured-shout", {"text": "all"})])
    final = create(http, model="claude", tools=[{**tool, "server_url": "litellm_proxy"}])
    assert final["output"][1]["name"] == "secured-shout" and final["output"][1]["output"] == "ALL"


def test_a_registered_server_over_sse(env: Env, http: httpx.Client) -> None:
    env.anthropic.script([("sse-add", {"a": 1, "b": 6})])
    tool = {"type": "mcp", "server_label": "all", "server_url": "litellm_proxy", "require_approval": "never"}
    final = create(http, model="claude", tools=[tool])
    listed = {t["name"] for t in final["output"][0]["tools"]}
    assert {"sse-add", "secured-add"} <= listed
    assert final["output"][1]["name"] == "sse-add" and final["output"][1]["output"] == "7"
    assert env.sse.calls == [("add", {"a": 1, "b": 6})] and env.secured.calls == []
    # One server by name over SSE: its tools under their own names.
    env.anthropic.script([("shout", {"text": "sse"})])
    final = create(
        http,
        model="claude",
        tools=[{**tool, "server_url": "litellm_proxy/mcp/sse"}],
    )
    assert final["output"][1]["output"] == "SSE"


def test_an_unknown_registered_server_is_a_400(env: Env, http: httpx.Client) -> None:
    tool = {"type": "mcp", "server_label": "reg", "server_url": "litellm_proxy/mcp/nope"}
    r = http.post("/responses", json={"model": "claude", "input": "x", "tools": [tool]})
    assert r.status_code == 400 and "mcp_servers" in r.json()["error"]["message"]


# ------------------------------------------------------------------------------------- OpenAI-native
def test_openai_native_with_gateway_execution(env: Env, http: httpx.Client) -> None:
    env.openai.script([("add", {"a": 4, "b": 5})])
    events = stream(http, model="gpt", tools=[mcp_tool(env, require_approval="never")])
    types = [e["type"] for e in events]
    assert types[2:6] == [
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.output_item.done",
    ]
    assert "response.function_call_arguments.delta" not in types
    final = events[-1]["response"]
    assert kinds(final) == ["mcp_list_tools", "mcp_call", "message"] and text_of(final) == "RESULTS: 9"
    assert [t["type"] for t in final["tools"]] == ["mcp"]
    first, second = env.openai.requests
    assert {t["type"] for t in first["tools"]} == {"function"}
    assert [i["type"] for i in second["input"]][-2:] == ["function_call", "function_call_output"]
    assert "previous_response_id" not in second


def test_the_default_refuses_client_urls(tmp_path: Any, env: Env) -> None:
    """A gateway with no allowed_server_urls: a client-supplied URL is a 400 naming the setting."""
    from tests.support.process import GatewayProcess

    config = {
        "model_list": [
            {
                "model_name": "claude",
                "litellm_params": {
                    "model": "anthropic/c",
                    "api_base": env.anthropic_base,
                    "api_key": "test-key",
                },
            }
        ],
        "gateway_settings": {"store": {"type": "sqlite", "path": ":memory:"}},
    }
    (tmp_path / "g.json").write_text(json.dumps(config))
    gw = GatewayProcess(tmp_path / "g.json", cwd=tmp_path, grace=1).start()
    try:
        r = httpx.post(
            f"{gw.http_base}/v1/responses",
            json={"model": "claude", "input": "x", "tools": [mcp_tool(env, require_approval="never")]},
            timeout=30,
        )
        assert r.status_code == 400 and "allowed_server_urls" in r.json()["error"]["message"]
    finally:
        gw.stop()
