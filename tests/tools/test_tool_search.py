"""Tool search run by the gateway for a provider without it (the scripted Anthropic model behind the
real adapter): the deferred tools are held back, the model is offered a search function, calls it,
the gateway searches the deferred tools' names and descriptions, emits `tool_search_call` /
`tool_search_output`, and the next upstream turn (same response) is offered the loaded tools only.
On OpenAI-native deployments OpenAI runs the search and its items are relayed as they are."""

from __future__ import annotations

import json
from typing import Any

import httpx

from responses_gateway import codec
from responses_gateway.v1 import request_pb2, responses_service_pb2_grpc
from tests.tools.conftest import Env
from tests.tools.helpers import check, create, kinds, offered, stream, text_of, tool_results
from tests.tools.models import NAMESPACE_LOADED


def fn(name: str, description: str, *, deferred: bool = True, **props: str) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "description": description,
        "parameters": {"type": "object", "properties": {p: {"type": t} for p, t in props.items()}},
        **({"defer_loading": True} if deferred else {}),
    }


CRM = {
    "type": "namespace",
    "name": "crm",
    "description": "CRM tools for customer lookup and order management.",
    "tools": [
        fn("list_open_orders", "List open orders for a customer ID.", customer_id="string"),
        fn("get_invoice", "Fetch one invoice by its number.", invoice="string"),
        fn("ping", "Check that the CRM answers.", deferred=False),
    ],
}
WEATHER = fn("get_forecast", "Weather forecast for a city.", city="string")
TOOLS: list[Any] = [CRM, WEATHER, fn("now", "The current time.", deferred=False), {"type": "tool_search"}]


def test_search_loads_tools_and_the_run_goes_on(env: Env, http: httpx.Client) -> None:
    env.anthropic.script(
        [("tool_search", {"query": "open orders of a customer"})],
        [("crm__list_open_orders", {"customer_id": "C42"})],
    )
    events = stream(http, model="claude", input="orders of C42?", tools=TOOLS)
    types = [e["type"] for e in events]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",  # tool_search_call
        "response.output_item.done",
        "response.output_item.added",  # tool_search_output
        "response.output_item.done",
        "response.output_item.added",  # the loaded function's call
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ], types
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [e["output_index"] for e in added] == [0, 1, 2]
    assert added[0]["item"]["status"] == "in_progress"
    final = events[-1]["response"]
    assert kinds(final) == ["tool_search_call", "tool_search_output", "function_call"]
    call, found, fc = final["output"]
    assert call["execution"] == "server" and call["status"] == "completed"
    assert call["arguments"] == {"query": "open orders of a customer"}
    assert found["call_id"] == call["call_id"] and found["execution"] == "server"
    (space,) = found["tools"]
    assert space["type"] == "namespace" and space["name"] == "crm"
    assert [t["name"] for t in space["tools"]] == ["list_open_orders"]
    assert (fc["namespace"], fc["name"], json.loads(fc["arguments"])) == (
        "crm",
        "list_open_orders",
        {"customer_id": "C42"},
    )
    assert final["tools"] == json.loads(json.dumps(final["tools"])) and [
        t["type"] for t in final["tools"]
    ] == [
        "namespace",
        "function",
        "function",
        "tool_search",
    ]  # the tools as the client gave them
    first, second = (r.body for r in env.anthropic.requests)
    assert offered(first) == ["crm__ping", "now", "tool_search"]  # nothing deferred
    search = next(t for t in first["tools"] if t["name"] == "tool_search")
    assert "namespace `crm`: CRM tools" in search["description"] and "`get_forecast`" in search["description"]
    assert offered(second) == ["crm__ping", "now", "tool_search", "crm__list_open_orders"]
    (result,) = tool_results(second)
    assert "crm__list_open_orders" in result and "get_invoice" not in result
    assert final["usage"]["input_tokens"] == 20  # two upstream turns, one response


def test_follow_up_keeps_the_loaded_tools(env: Env, http: httpx.Client) -> None:
    env.anthropic.script(
        [("tool_search", {"query": "weather forecast"})],
        [("get_forecast", {"city": "Oslo"})],
    )
    first = create(http, model="claude", input="weather in Oslo?", tools=TOOLS)
    assert kinds(first) == ["tool_search_call", "tool_search_output", "function_call"]
    assert first["output"][1]["tools"][0]["name"] == "get_forecast"
    call_id = first["output"][2]["call_id"]
    env.anthropic.requests.clear()
    env.anthropic.script([])
    done = create(
        http,
        model="claude",
        previous_response_id=first["id"],
        input=[{"type": "function_call_output", "call_id": call_id, "output": "sunny"}],
        tools=TOOLS,
    )
    assert kinds(done) == ["message"]
    (body,) = (r.body for r in env.anthropic.requests)
    assert offered(body) == ["crm__ping", "now", "tool_search", "get_forecast"]
    results = tool_results(body)
    assert len(results) == 2 and "get_forecast" in results[0] and results[1] == "sunny"
    assert text_of(done) == "RESULTS: " + " | ".join(results)


def test_a_namespace_name_loads_all_of_its_deferred_tools(env: Env, http: httpx.Client) -> None:
    env.anthropic.script([("tool_search", {"query": "crm"})], [])
    done = create(http, model="claude", input="x", tools=TOOLS)
    assert kinds(done) == ["tool_search_call", "tool_search_output", "message"]
    names = [t["name"] for t in done["output"][1]["tools"][0]["tools"]]
    assert names == ["list_open_orders", "get_invoice"]
    assert offered(env.anthropic.requests[1].body)[-2:] == ["crm__list_open_orders", "crm__get_invoice"]


def test_no_match_loads_nothing_and_says_so(env: Env, http: httpx.Client) -> None:
    env.anthropic.script([("tool_search", {"query": "quantum teleportation"})], [])
    done = create(http, model="claude", input="x", tools=TOOLS)
    assert done["output"][1]["tools"] == []
    assert "No tool matched" in text_of(done)
    assert offered(env.anthropic.requests[1].body) == ["crm__ping", "now", "tool_search"]


def test_after_the_search_limit_the_model_must_answer(env: Env, http: httpx.Client) -> None:
    env.anthropic.script(*([("tool_search", {"query": "nothing like it"})] for _ in range(5)), [])
    done = create(http, model="claude", input="x", tools=TOOLS)
    assert kinds(done) == ["tool_search_call", "tool_search_output"] * 5 + ["message"]
    assert [offered(r.body)[-1] for r in env.anthropic.requests] == ["tool_search"] * 5 + ["now"]


def test_client_executed_search_ends_the_response_for_the_client(env: Env, http: httpx.Client) -> None:
    tools: list[Any] = [
        fn("now", "The current time.", deferred=False),
        {
            "type": "tool_search",
            "execution": "client",
            "description": "Find more tools in the project catalogue.",
            "parameters": {
                "type": "object",
                "properties": {"goal": {"type": "string"}},
                "required": ["goal"],
            },
        },
    ]
    env.anthropic.script([("tool_search", {"goal": "invoices"})])
    first = create(http, model="claude", input="x", tools=tools)
    (call,) = first["output"]
    assert call["type"] == "tool_search_call" and call["execution"] == "client"
    assert call["arguments"] == {"goal": "invoices"}
    (search,) = [t for t in env.anthropic.requests[0].body["tools"] if t["name"] == "tool_search"]
    assert search["description"] == "Find more tools in the project catalogue."
    assert search["input_schema"]["properties"] == {"goal": {"type": "string"}}
    # The client answers with the tools it found; they are offered from now on.
    env.anthropic.requests.clear()
    env.anthropic.script([("get_invoice", {"invoice": "A-1"})])
    answer = {
        "type": "tool_search_output",
        "call_id": call["call_id"],
        "execution": "client",
        "tools": [fn("get_invoice", "Fetch one invoice.", deferred=False, invoice="string")],
    }
    second = create(http, model="claude", previous_response_id=first["id"], input=[answer], tools=tools)
    (fc,) = second["output"]
    assert fc["type"] == "function_call" and fc["name"] == "get_invoice"
    body = env.anthropic.requests[0].body
    assert offered(body) == ["now", "tool_search", "get_invoice"]
    (result,) = tool_results(body)
    assert "get_invoice" in result


def test_mcp_and_tool_search_in_one_request(env: Env, http: httpx.Client) -> None:
    mcp = {"type": "mcp", "server_label": "tools", "server_url": env.mcp.url, "require_approval": "never"}
    env.anthropic.script(
        [("tool_search", {"query": "invoice"})],
        [("add", {"a": 2, "b": 3}), ("crm__get_invoice", {"invoice": "A-7"})],
    )
    events = stream(http, model="claude", input="x", tools=[mcp, *TOOLS])
    final = events[-1]["response"]
    assert kinds(final) == [
        "mcp_list_tools",
        "tool_search_call",
        "tool_search_output",
        "mcp_call",
        "function_call",
    ]
    assert final["output"][3]["output"] == "5" and final["output"][3]["status"] == "completed"
    assert (final["output"][4]["namespace"], final["output"][4]["name"]) == ("crm", "get_invoice")
    assert env.mcp.calls == [("add", {"a": 2, "b": 3})]
    # The client's function call ends the response; each turn was offered what it could use.
    first, second = (r.body for r in env.anthropic.requests)
    assert {"add", "tool_search", "now"} <= set(offered(first)) and "crm__get_invoice" not in offered(first)
    assert {"add", "tool_search", "crm__get_invoice"} <= set(offered(second))
    (result,) = tool_results(second)
    assert "crm__get_invoice" in result


def test_mcp_call_after_a_search_continues_to_the_answer(env: Env, http: httpx.Client) -> None:
    mcp = {"type": "mcp", "server_label": "tools", "server_url": env.mcp.url, "require_approval": "never"}
    env.anthropic.script([("tool_search", {"query": "invoice"})], [("add", {"a": 1, "b": 1})], [])
    done = create(http, model="claude", input="x", tools=[mcp, *TOOLS])
    assert kinds(done) == ["mcp_list_tools", "tool_search_call", "tool_search_output", "mcp_call", "message"]
    results = tool_results(env.anthropic.requests[2].body)
    assert len(results) == 2 and "crm__get_invoice" in results[0] and results[1] == "2"
    assert "crm__get_invoice" in offered(env.anthropic.requests[2].body)


def test_tool_search_over_grpc(env: Env, stub: responses_service_pb2_grpc.ResponsesServiceStub) -> None:
    env.anthropic.requests.clear()
    env.anthropic.script([("tool_search", {"query": "invoice"})], [])
    req = codec.from_json(
        request_pb2.CreateResponseRequest(), {"model": "claude", "input": "x", "tools": TOOLS}
    )
    events = [codec.to_json(e) for e in stub.StreamResponse(req, timeout=30)]
    for e in events:
        check(e, event=True)
    final = events[-1]["response"]
    assert kinds(final) == ["tool_search_call", "tool_search_output", "message"]
    assert final["output"][1]["tools"][0]["tools"][0]["name"] == "get_invoice"


def test_openai_native_relays_hosted_tool_search(env: Env, http: httpx.Client) -> None:
    tools: list[Any] = [NAMESPACE_LOADED, {"type": "tool_search"}]
    events = stream(http, model="gpt-search", input="orders of C42?", tools=tools)
    (sent,) = env.hosted.requests
    assert sent["tools"] == tools  # OpenAI runs the search: the tools go up as they are
    relayed = [{k: v for k, v in e.items() if k != "response"} for e in events]
    assert relayed == [{k: v for k, v in e.items() if k != "response"} for e in env.hosted.sent]
    final = events[-1]["response"]
    assert final["output"] == env.hosted.sent[-1]["response"]["output"]
    assert final["output"][0]["call_id"] is None and final["output"][1]["tools"] == [NAMESPACE_LOADED]
