"""Function, custom and namespace tools and every tool_choice, on every adapter, through the real
gateway in front of the fake upstreams.

On Anthropic, Gemini and the chat bridge the gateway translates: custom tools go up as a function with
one `input` string and come back as `custom_tool_call` items (checked against their grammar), namespaces
go up flattened (`billing__get_invoice`) and come back with their `namespace`, `allowed_tools` narrows
what is offered. On OpenAI and Azure everything is relayed as the client sent it. What each fake
received is asserted, and every emitted object is validated against the specs: OpenAI's always, the
Open Responses spec too for all it defines (it has no custom tool items or events).
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import httpx
import openai
import pytest

from responses_gateway import codec
from responses_gateway.providers.features import Unsupported
from responses_gateway.providers.stream_builder import StreamBuilder
from responses_gateway.providers.tool_mapping import tool_map
from responses_gateway.v1 import request_pb2, responses_service_pb2_grpc
from tests.providers.conftest import TOOLS as BARE_TOOLS
from tests.providers.conftest import Adapter, Env, check_stream, output_of, stream, text_of
from tests.support.spec import BothSpecs
from tests.support.sse import sse_events

TRANSLATED = ("anthropic", "gemini", "chat")
HELLO = "Hello! How can I help you today?"
INPUT = "1+2*3"  # what the custom_call transcripts' model writes
LARK_OK = 'start: expr\nexpr: NUMBER (("+" | "*") NUMBER)*\n%import common.NUMBER'
LARK_BAD = "start: NUMBER\n%import common.NUMBER"  # a lone number: `1+2*3` does not parse
REGEX_OK = r"\d+([+*]\d+)*"
REGEX_BAD = r"[a-z]+"
# With descriptions: the Open Responses spec requires one on every function tool a response lists (the
# response shell does not fill in `description: null` for a tool given without one).
TOOLS = [{**t, "description": f"The {t['name'][4:]}."} for t in BARE_TOOLS]
NAMESPACE = {
    "type": "namespace",
    "name": "billing",
    "description": "Invoices and payments.",
    "tools": [
        {
            "type": "function",
            "name": "get_invoice",
            "description": "Fetch one invoice.",
            "parameters": {
                "type": "object",
                "properties": {"invoice_id": {"type": "string"}},
                "required": ["invoice_id"],
            },
        }
    ],
}


def calc(fmt: dict[str, Any] | None = None) -> dict[str, Any]:
    tool: dict[str, Any] = {"type": "custom", "name": "calc", "description": "Evaluates arithmetic."}
    if fmt is not None:
        tool["format"] = fmt
    return tool


def grammar(syntax: str, definition: str) -> dict[str, Any]:
    return {"type": "grammar", "syntax": syntax, "definition": definition}


@pytest.fixture(scope="module")
def specs() -> BothSpecs:
    return BothSpecs()


@pytest.fixture(params=TRANSLATED)
def translated(request: pytest.FixtureRequest, env: Env) -> Adapter:
    return env.adapters[request.param]


def _custom(obj: dict[str, Any]) -> bool:
    """Beyond what the Open Responses spec can describe: custom tool calls and their events, and a
    response whose tools include custom or namespace tools (it defines function tools only)."""
    if "custom_tool_call" in json.dumps(obj):
        return True
    response = obj.get("response") or obj
    return any(t.get("type") in ("custom", "namespace") for t in response.get("tools") or [])


def validate(events: list[dict[str, Any]], specs: BothSpecs) -> dict[str, Any]:
    """Both specs on every event (OpenAI's alone where a custom tool call is in it: Open Responses
    has none), then the stream's own well-formedness; returns the final Response."""
    for e in events:
        if _custom(e):
            specs.openai.check_event(e)
            if "response" in e:
                specs.openai.check("Response", e["response"])
        else:
            specs.check_event(e)
    return check_stream(events, specs.openai)


def check_response(body: dict[str, Any], specs: BothSpecs) -> None:
    specs.openai.check("Response", body)
    if not _custom(body):
        specs.check_response(body)


# --- what each fake received --------------------------------------------------------------------


def offered(adapter: Adapter, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """name → {description, parameters} of the tools the provider was offered."""
    if adapter.name == "anthropic":
        return {t["name"]: {"d": t.get("description"), "p": t["input_schema"]} for t in body.get("tools", [])}
    if adapter.name == "gemini":
        decls = [d for t in body.get("tools", []) for d in t.get("functionDeclarations", [])]
        return {d["name"]: {"d": d.get("description"), "p": d.get("parametersJsonSchema")} for d in decls}
    fns = [t["function"] for t in body.get("tools", [])]
    assert all(t["type"] == "function" for t in body.get("tools", []))
    return {f["name"]: {"d": f.get("description"), "p": f.get("parameters")} for f in fns}


def choice_sent(adapter: Adapter, body: dict[str, Any]) -> Any:
    if adapter.name == "anthropic":
        return body.get("tool_choice")
    if adapter.name == "gemini":
        return (body.get("toolConfig") or {}).get("functionCallingConfig")
    return body.get("tool_choice")


# --- custom tools -------------------------------------------------------------------------------


GRAMMARS = {
    "plain": (None, True),
    "lark-pass": (grammar("lark", LARK_OK), True),
    "lark-fail": (grammar("lark", LARK_BAD), False),
    "regex-pass": (grammar("regex", REGEX_OK), True),
    "regex-fail": (grammar("regex", REGEX_BAD), False),
}


@pytest.mark.parametrize("case", list(GRAMMARS))
def test_custom_tool_stream(translated: Adapter, http: httpx.Client, specs: BothSpecs, case: str) -> None:
    fmt, passes = GRAMMARS[case]
    resp, events = stream(
        http, {"model": translated.model("custom_call"), "input": "2+2?", "tools": [calc(fmt)]}
    )
    assert resp.status_code == 200, resp.text
    final = validate(events, specs)
    # Up: one function with one string argument, the grammar told to the model.
    tools = offered(translated, translated.calls()[-1])
    assert list(tools) == ["calc"]
    schema = tools["calc"]["p"]
    assert schema["properties"]["input"]["type"] == "string" and schema["required"] == ["input"]
    if fmt is not None:
        assert fmt["definition"] in schema["properties"]["input"]["description"]
    # Back: a custom_tool_call with the input string, and its own events.
    (call,) = output_of(final, "custom_tool_call")
    assert (call["name"], call["input"]) == ("calc", INPUT) and call["id"].startswith("ctc_")
    assert not output_of(final, "function_call")
    by_type = {e["type"]: e for e in events}
    assert by_type["response.custom_tool_call_input.delta"]["delta"] == INPUT
    assert by_type["response.custom_tool_call_input.done"]["input"] == INPUT
    assert by_type["response.custom_tool_call_input.done"]["item_id"] == call["id"]
    if passes:
        assert final["status"] == "completed" and final["error"] is None
        assert call.get("status") != "incomplete"
    else:
        # Never passed on silently: the call is there to see, marked incomplete, the response failed.
        assert final["status"] == "failed", final["status"]
        assert events[-1]["type"] == "response.failed"
        assert call["status"] == "incomplete"
        assert final["error"]["code"] == "server_error"
        assert "calc" in final["error"]["message"] and fmt["syntax"] in final["error"]["message"]


@pytest.mark.parametrize("case", ["lark-pass", "regex-fail"])
def test_custom_tool_sdk(translated: Adapter, client: openai.OpenAI, case: str) -> None:
    fmt, passes = GRAMMARS[case]
    r = client.responses.create(model=translated.model("custom_call"), input="2+2?", tools=[calc(fmt)])  # type: ignore[list-item]
    call = r.output[0]
    assert call.type == "custom_tool_call" and call.name == "calc" and call.input == INPUT
    assert r.status == ("completed" if passes else "failed")
    if not passes:
        assert r.error is not None and "regex grammar" in r.error.message


def test_custom_tool_call_output_round_trip(translated: Adapter, client: openai.OpenAI) -> None:
    """previous_response_id replays the custom_tool_call; custom_tool_call_output is its result."""
    first = client.responses.create(model=translated.model("custom_call"), input="2+2?", tools=[calc()])  # type: ignore[list-item]
    call = first.output[0]
    assert call.type == "custom_tool_call"
    second = client.responses.create(
        model=translated.model(),
        previous_response_id=first.id,
        input=[{"type": "custom_tool_call_output", "call_id": call.call_id, "output": "7"}],
        tools=[calc()],  # type: ignore[list-item]
    )
    assert second.status == "completed" and second.output_text == HELLO
    body = translated.calls()[-1]
    assert_tool_round(translated, body, [(call.call_id, "calc", {"input": INPUT}, "7")])


def assert_tool_round(
    adapter: Adapter, body: dict[str, Any], expected: list[tuple[str, str, dict[str, Any], str]]
) -> None:
    """The provider got each (call id, flat name, arguments) call and its result, paired as it needs."""
    if adapter.name == "anthropic":
        uses = [b for m in body["messages"] for b in m["content"] if b["type"] == "tool_use"]
        results = [b for m in body["messages"] for b in m["content"] if b["type"] == "tool_result"]
        assert [(u["id"], u["name"], u["input"]) for u in uses] == [e[:3] for e in expected]
        assert [(r["tool_use_id"], r["content"]) for r in results] == [(e[0], e[3]) for e in expected]
    elif adapter.name == "gemini":
        parts = [p for c in body["contents"] for p in c["parts"]]
        calls = [p["functionCall"] for p in parts if "functionCall" in p]
        responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
        assert [(c["name"], c["args"]) for c in calls] == [(e[1], e[2]) for e in expected]
        assert [(r["name"], r["response"]) for r in responses] == [(e[1], {"result": e[3]}) for e in expected]
    else:
        calls = [c for m in body["messages"] for c in m.get("tool_calls") or []]
        results = [m for m in body["messages"] if m["role"] == "tool"]
        assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
            e[:3] for e in expected
        ]
        assert [(r["tool_call_id"], r["content"]) for r in results] == [(e[0], e[3]) for e in expected]


def test_multi_turn_with_both_outputs(translated: Adapter, http: httpx.Client, specs: BothSpecs) -> None:
    """A client-run loop: function_call + function_call_output, custom_tool_call + its output, in one
    input, with a namespaced function among them."""
    items = [
        {"type": "message", "role": "user", "content": "Weather, then maths, then my invoice."},
        {
            "type": "function_call",
            "call_id": "call_w1",
            "name": "get_weather",
            "arguments": '{"location":"Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_w1", "output": "sunny"},
        {"type": "custom_tool_call", "call_id": "call_c1", "name": "calc", "input": "6*7"},
        {"type": "custom_tool_call_output", "call_id": "call_c1", "output": "42"},
        {
            "type": "function_call",
            "call_id": "call_i1",
            "namespace": "billing",
            "name": "get_invoice",
            "arguments": '{"invoice_id":"inv_1"}',
        },
        {"type": "function_call_output", "call_id": "call_i1", "output": "paid"},
    ]
    body = {"model": translated.model(), "input": items, "tools": [*TOOLS, calc(), NAMESPACE]}
    resp = http.post("/responses", json=body)
    assert resp.status_code == 200, resp.text
    check_response(resp.json(), specs)
    assert text_of(resp.json()) == HELLO
    assert_tool_round(
        translated,
        translated.calls()[-1],
        [
            ("call_w1", "get_weather", {"location": "Paris"}, "sunny"),
            ("call_c1", "calc", {"input": "6*7"}, "42"),
            ("call_i1", "billing__get_invoice", {"invoice_id": "inv_1"}, "paid"),
        ],
    )


# --- namespaces ---------------------------------------------------------------------------------


def test_namespace_round_trip(
    translated: Adapter, client: openai.OpenAI, http: httpx.Client, specs: BothSpecs
) -> None:
    r = client.responses.create(
        model=translated.model("namespace_call"), input="Invoice 42?", tools=[NAMESPACE]
    )  # type: ignore[list-item]
    (call,) = r.output
    assert call.type == "function_call"
    assert f"{call.namespace}.{call.name}" == "billing.get_invoice"
    assert json.loads(call.arguments) == {"invoice_id": "inv_42"}
    tools = offered(translated, translated.calls()[-1])
    assert list(tools) == ["billing__get_invoice"]
    assert tools["billing__get_invoice"]["p"]["required"] == ["invoice_id"]
    assert "Invoices and payments." in tools["billing__get_invoice"]["d"]  # the namespace's context
    # The stream says the same, and the next turn sends the call back under the flat name.
    _, events = stream(
        http, {"model": translated.model("namespace_call"), "input": "Invoice 42?", "tools": [NAMESPACE]}
    )
    final = validate(events, specs)
    (item,) = output_of(final, "function_call")
    assert (item["namespace"], item["name"]) == ("billing", "get_invoice")
    second = client.responses.create(
        model=translated.model(),
        previous_response_id=r.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "paid"}],
        tools=[NAMESPACE],  # type: ignore[list-item]
    )
    assert second.output_text == HELLO
    assert_tool_round(
        translated,
        translated.calls()[-1],
        [(call.call_id, "billing__get_invoice", {"invoice_id": "inv_42"}, "paid")],
    )


def test_flattening_is_reversible_with_odd_names() -> None:
    """Names no provider accepts (dots, spaces, too long) still map back exactly."""
    long_name = "x" * 70
    req = codec.from_json(
        request_pb2.CreateResponseRequest(),
        {
            "model": "m",
            "input": "hi",
            "tools": [
                {"type": "function", "name": "billing__get_invoice"},  # collides with the flat name below
                {
                    "type": "namespace",
                    "name": "billing",
                    "description": "b",
                    "tools": [{"type": "function", "name": "get_invoice"}],
                },
                {
                    "type": "namespace",
                    "name": "crm.v2",
                    "description": "c",
                    "tools": [
                        {"type": "function", "name": "find contact!"},
                        {"type": "custom", "name": long_name},
                    ],
                },
            ],
        },
    )
    tools = tool_map(req, Unsupported("P", drop=False))
    flats = [t.flat for t in tools.offered]
    assert len(set(flats)) == 4 and flats[0] == "billing__get_invoice"
    assert all(len(f) <= 64 and f.replace("_", "a").replace("-", "a").isalnum() for f in flats)
    builder = StreamBuilder(tools)
    back = []
    for i, flat in enumerate(flats):
        item_id, events = builder.open_call(f"call_{i}", flat)
        assert item_id is not None and events
        item = codec.to_json(events[0])["item"]
        back.append((item.get("namespace"), item["name"], item["type"]))
        assert tools.flat_name(item["name"], item.get("namespace")) == flat
    assert back == [
        (None, "billing__get_invoice", "function_call"),
        ("billing", "get_invoice", "function_call"),
        ("crm.v2", "find contact!", "function_call"),
        ("crm.v2", long_name, "custom_tool_call"),
    ]
    # The seam a gateway-run tool search uses: namespaces loaded later get names unique among these.
    later = codec.from_json(request_pb2.CreateResponseRequest(), {"model": "m", "tools": [NAMESPACE]})
    (loaded,) = tools.load(later.tools, Unsupported("P", drop=False))
    assert loaded.flat not in flats and (loaded.namespace, loaded.name) == ("billing", "get_invoice")
    assert tools.lookup(loaded.flat) == loaded and tools.offered[-1] == loaded


# --- tool_choice --------------------------------------------------------------------------------

ALL_TOOLS = [*TOOLS, calc(), NAMESPACE]
ALL_NAMES = ["get_weather", "get_time", "calc", "billing__get_invoice"]
# form → (tool_choice sent, names offered, what each provider gets)
CHOICES: dict[str, tuple[Any, list[str], dict[str, Any]]] = {
    "auto": ("auto", ALL_NAMES, {"anthropic": {"type": "auto"}, "gemini": {"mode": "AUTO"}, "chat": "auto"}),
    "none": ("none", ALL_NAMES, {"anthropic": {"type": "none"}, "gemini": {"mode": "NONE"}, "chat": "none"}),
    "required": (
        "required",
        ALL_NAMES,
        {"anthropic": {"type": "any"}, "gemini": {"mode": "ANY"}, "chat": "required"},
    ),
    "function": (
        {"type": "function", "name": "get_time"},
        ALL_NAMES,
        {
            "anthropic": {"type": "tool", "name": "get_time"},
            "gemini": {"mode": "ANY", "allowedFunctionNames": ["get_time"]},
            "chat": {"type": "function", "function": {"name": "get_time"}},
        },
    ),
    "namespaced-function": (
        {"type": "function", "name": "get_invoice"},
        ALL_NAMES,
        {
            "anthropic": {"type": "tool", "name": "billing__get_invoice"},
            "gemini": {"mode": "ANY", "allowedFunctionNames": ["billing__get_invoice"]},
            "chat": {"type": "function", "function": {"name": "billing__get_invoice"}},
        },
    ),
    "custom": (
        {"type": "custom", "name": "calc"},
        ALL_NAMES,
        {
            "anthropic": {"type": "tool", "name": "calc"},
            "gemini": {"mode": "ANY", "allowedFunctionNames": ["calc"]},
            "chat": {"type": "function", "function": {"name": "calc"}},
        },
    ),
    "allowed-auto": (
        {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "get_weather"}]},
        ["get_weather"],
        {"anthropic": {"type": "auto"}, "gemini": {"mode": "AUTO"}, "chat": "auto"},
    ),
    "allowed-required": (
        {
            "type": "allowed_tools",
            "mode": "required",
            "tools": [{"type": "namespace", "name": "billing"}, {"type": "custom", "name": "calc"}],
        },
        ["calc", "billing__get_invoice"],  # request order, whatever the list's
        {"anthropic": {"type": "any"}, "gemini": {"mode": "ANY"}, "chat": "required"},
    ),
}


@pytest.mark.parametrize("form", list(CHOICES))
def test_tool_choice_translated(translated: Adapter, http: httpx.Client, specs: BothSpecs, form: str) -> None:
    choice, names, sent = CHOICES[form]
    resp = http.post(
        "/responses",
        json={"model": translated.model(), "input": "hi", "tools": ALL_TOOLS, "tool_choice": choice},
    )
    assert resp.status_code == 200, resp.text
    check_response(resp.json(), specs)
    assert resp.json()["tool_choice"] == choice  # the response echoes what the client asked for
    body = translated.calls()[-1]
    assert list(offered(translated, body)) == names
    assert choice_sent(translated, body) == sent[translated.name]


@pytest.mark.parametrize("native", ["openai", "azure"])
def test_everything_relayed_intact_to_openai(env: Env, http: httpx.Client, native: str) -> None:
    adapter = env.adapters[native]
    tools = [{**TOOLS[0], "strict": True}, calc(grammar("lark", LARK_OK)), NAMESPACE]
    choice = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "custom", "name": "calc"}]}
    body = {
        "input": "hi",
        "tools": tools,
        "tool_choice": choice,
        "parallel_tool_calls": False,
        "max_tool_calls": 3,
    }
    resp = http.post("/responses", json={"model": adapter.model(), **body})
    assert resp.status_code == 200, resp.text
    got = adapter.calls()[-1]
    assert {k: got[k] for k in body} == body


@pytest.mark.parametrize("native", ["openai", "azure"])
def test_native_custom_and_namespace_calls_relayed(
    env: Env, http: httpx.Client, client: openai.OpenAI, specs: BothSpecs, native: str
) -> None:
    """OpenAI's own custom_tool_call items and events, and a function_call's namespace, reach the client
    as OpenAI sent them (OpenAI applied the grammar itself: the gateway does not check again)."""
    adapter = env.adapters[native]
    body = {
        "model": adapter.model("custom_tools"),
        "input": "x",
        "tools": [calc(grammar("lark", LARK_OK)), NAMESPACE],
    }
    resp, events = stream(http, body)
    assert resp.status_code == 200, resp.text
    final = validate(events, specs)
    deltas = [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert deltas == ["1+2", "*3"]
    (ctc,) = output_of(final, "custom_tool_call")
    (fc,) = output_of(final, "function_call")
    assert (ctc["name"], ctc["input"]) == ("calc", INPUT)
    assert (fc["namespace"], fc["name"]) == ("billing", "get_invoice")
    r = client.responses.create(**body)
    assert [o.type for o in r.output] == ["custom_tool_call", "function_call"]
    assert f"{r.output[1].namespace}.{r.output[1].name}" == "billing.get_invoice"  # type: ignore[union-attr]


# --- parallel_tool_calls: false and max_tool_calls ----------------------------------------------


@pytest.mark.parametrize("limit", [{"parallel_tool_calls": False}, {"max_tool_calls": 1}])
def test_one_call_per_turn(
    translated: Adapter, http: httpx.Client, specs: BothSpecs, limit: dict[str, Any]
) -> None:
    """The transcripts have two calls in one turn; the client gets one (natively where the provider
    can, else the gateway keeps the first)."""
    body = {"model": translated.model("tools"), "input": "Weather and time?", "tools": TOOLS, **limit}
    resp, events = stream(http, body)
    assert resp.status_code == 200, resp.text
    final = validate(events, specs)
    calls = output_of(final, "function_call")
    assert [c["name"] for c in calls] == ["get_weather"]
    sent = translated.calls()[-1]
    if translated.name == "anthropic":
        assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    elif translated.name == "chat" and "parallel_tool_calls" in limit:
        assert sent["parallel_tool_calls"] is False
    elif translated.name == "gemini":
        assert "toolConfig" not in sent  # nothing native: the stream keeps the first call


def test_two_calls_when_parallel(translated: Adapter, http: httpx.Client) -> None:
    resp = http.post(
        "/responses",
        json={"model": translated.model("tools"), "input": "x", "tools": TOOLS, "parallel_tool_calls": True},
    )
    assert [c["name"] for c in output_of(resp.json(), "function_call")] == ["get_weather", "get_time"]


# --- gRPC ---------------------------------------------------------------------------------------


def test_grpc_same_as_rest(
    translated: Adapter, stub: responses_service_pb2_grpc.ResponsesServiceStub, specs: BothSpecs
) -> None:
    req = codec.from_json(
        request_pb2.CreateResponseRequest(),
        {
            "model": translated.model("custom_call"),
            "input": "2+2?",
            "tools": [calc(grammar("regex", REGEX_OK))],
        },
    )
    events = [codec.to_json(e) for e in stub.StreamResponse(req, timeout=30)]
    final = validate(events, specs)
    assert final["status"] == "completed"
    assert [(c["name"], c["input"]) for c in output_of(final, "custom_tool_call")] == [("calc", INPUT)]
    ns = codec.from_json(
        request_pb2.CreateResponseRequest(),
        {"model": translated.model("namespace_call"), "input": "x", "tools": [NAMESPACE]},
    )
    unary = codec.to_json(stub.CreateResponse(ns, timeout=30))
    (call,) = output_of(unary, "function_call")
    assert (call["namespace"], call["name"]) == ("billing", "get_invoice")


# --- what cannot be done: a 400 naming tool and provider ----------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, ["file_search"]),
        ({"tools": [calc(grammar("lark", "start: ("))]}, ["calc", "lark", "does not compile"]),
        ({"tools": [calc(grammar("regex", "(["))]}, ["calc", "regex", "does not compile"]),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "name": "nope"}}, ["nope", "not among"]),
        (
            {
                "tools": TOOLS,
                "tool_choice": {
                    "type": "allowed_tools",
                    "mode": "auto",
                    "tools": [{"type": "custom", "name": "x"}],
                },
            },
            ["custom tool `x`"],
        ),
    ],
)
def test_refusals(translated: Adapter, http: httpx.Client, body: dict[str, Any], words: list[str]) -> None:
    resp = http.post("/responses", json={"model": translated.model(), "input": "hi", **body})
    assert resp.status_code == 400, resp.text
    message = resp.json()["error"]["message"]
    assert all(w in message for w in words), message
    assert translated.calls() == []  # refused before anything went upstream


# No provider here has OpenAI's vector stores (tool search is the gateway's own now: tests/tools).
FILE_SEARCH = {"type": "file_search", "vector_store_ids": ["vs_1"]}


def test_unsupported_tool_names_provider_or_is_dropped(env: Env, http: httpx.Client) -> None:
    resp = http.post(
        "/responses", json={"model": "claude-text", "input": "hi", "tools": [FILE_SEARCH, *TOOLS]}
    )
    assert resp.status_code == 400 and "Anthropic" in resp.json()["error"]["message"]
    dropped = http.post(
        "/responses",
        json={"model": "dclaude-text", "input": "hi", "tools": [FILE_SEARCH, *TOOLS]},
    )
    assert dropped.status_code == 200, dropped.text
    assert list(offered(env.adapters["anthropic"], env.anthropic.requests[-1].body)) == [
        "get_weather",
        "get_time",
    ]


def test_sse_custom_events_in_order(translated: Adapter, http: httpx.Client) -> None:
    with http.stream(
        "POST",
        "/responses",
        json={"model": translated.model("custom_call"), "input": "x", "tools": [calc()], "stream": True},
    ) as resp:
        resp.read()
        types = [e["type"] for e in sse_events(resp)]
    assert types[2:] == [
        "response.output_item.added",
        "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done",
        "response.output_item.done",
        "response.completed",
    ]


def test_grpc_status_for_refusal(
    translated: Adapter, stub: responses_service_pb2_grpc.ResponsesServiceStub
) -> None:
    req = codec.from_json(
        request_pb2.CreateResponseRequest(),
        {"model": translated.model(), "input": "x", "tools": [calc(grammar("lark", "start: ("))]},
    )
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateResponse(req, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
