"""The shared scenario suite, run over every adapter (`adapter` fixture: openai, azure, chat, anthropic,
gemini): what the client sees through the gateway, and what each upstream received in its own format."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.providers.conftest import (
    KEY,
    PNG,
    TOOLS,
    Adapter,
    Env,
    Spec,
    check_stream,
    output_of,
    stream,
    text_of,
)

HELLO = "Hello! How can I help you today?"
REASONING = {"effort": "low", "summary": "auto"}


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


# ------------------------------------------------------------------------------------------ plain text
def test_text_unary(adapter: Adapter, http: httpx.Client, client: openai.OpenAI, spec: Spec) -> None:
    raw = http.post("/responses", json={"model": adapter.model(), "input": "Say hello."})
    assert raw.status_code == 200, raw.text
    body = raw.json()
    spec.check("Response", body)
    assert body["status"] == "completed" and body["object"] == "response"
    assert text_of(body) == HELLO
    assert body["usage"]["total_tokens"] == body["usage"]["input_tokens"] + body["usage"]["output_tokens"]
    sdk = client.responses.create(model=adapter.model(), input="Say hello.")  # strict SDK validation
    assert sdk.output_text == HELLO
    assert client.responses.retrieve(sdk.id).output_text == HELLO


UPSTREAM = {  # adapter -> (path the upstream saw, header carrying the key, its expected value)
    "openai": ("/v1/responses", "authorization", f"Bearer {KEY}"),
    "azure": ("/openai/v1/responses", "api-key", KEY),
    "chat": ("/v1/chat/completions", "authorization", f"Bearer {KEY}"),
    "anthropic": ("/v1/messages", "x-api-key", KEY),
    "gemini": ("/v1beta/models/scenario-text:streamGenerateContent", "x-goog-api-key", KEY),
}


def test_upstream_url_and_auth(adapter: Adapter, env: Env, client: openai.OpenAI) -> None:
    client.responses.create(model=adapter.model(), input="hi")
    path, header, value = UPSTREAM[adapter.name]
    if adapter.name == "azure":
        seen = env.azure.seen[-1]
        assert (seen["path"], seen["query"]) == (path, "")
        assert seen["headers"][header] == value and "authorization" not in seen["headers"]
        return
    rec = adapter.fake.create_requests[-1] if adapter.native else adapter.fake.requests[-1]
    assert rec.path == path and rec.headers[header] == value
    if adapter.name != "gemini":  # Gemini names the model in the path
        assert adapter.calls()[-1]["model"] == "scenario-text"
    if adapter.name == "anthropic":
        assert rec.headers["anthropic-version"] == "2023-06-01"
    if adapter.name == "gemini":
        assert rec.query == {"alt": "sse"}


# ------------------------------------------------------------------------------------------ streaming
@pytest.mark.parametrize("kind", ["text", "tools", "reasoning"])
def test_stream_well_formed(adapter: Adapter, http: httpx.Client, spec: Spec, kind: str) -> None:
    body: dict[str, Any] = {"model": adapter.model(kind), "input": "hi", "tools": TOOLS}
    if kind == "reasoning":
        body["reasoning"] = REASONING
    resp, events = stream(http, body)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    final = check_stream(events, spec)
    assert final["status"] == "completed"
    expected = {"text": "message", "tools": "function_call", "reasoning": "reasoning"}[kind]
    assert expected in [i["type"] for i in final["output"]]
    if kind == "tools":
        assert len(output_of(final, "function_call")) == 2
    stored = http.get(f"/responses/{final['id']}").json()
    assert stored["status"] == "completed" and stored["output"] == final["output"]


# ------------------------------------------------------------------------------------------ multi-turn
def test_previous_response_id_replays_history(adapter: Adapter, client: openai.OpenAI) -> None:
    first = client.responses.create(model=adapter.model(), input="Say hello.")
    second = client.responses.create(model=adapter.model(), input="And again?", previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.output_text == HELLO
    calls = adapter.calls()
    assert len(calls) == 2
    body = calls[-1]
    if adapter.native:  # the upstream keeps state: it gets the id and only the new input
        assert body["previous_response_id"] == first.id and body["input"] == "And again?"
    elif adapter.name == "anthropic":
        assert body["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "Say hello."}]},
            {"role": "assistant", "content": [{"type": "text", "text": HELLO}]},
            {"role": "user", "content": [{"type": "text", "text": "And again?"}]},
        ]
    elif adapter.name == "gemini":
        assert body["contents"] == [
            {"role": "user", "parts": [{"text": "Say hello."}]},
            {"role": "model", "parts": [{"text": HELLO}]},
            {"role": "user", "parts": [{"text": "And again?"}]},
        ]
    else:
        assert body["messages"] == [
            {"role": "user", "content": "Say hello."},
            {"role": "assistant", "content": HELLO},
            {"role": "user", "content": "And again?"},
        ]


# ------------------------------------------------------------------------------------------ tools
def test_function_calling_loop(adapter: Adapter, client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=adapter.model("tools"), input="Weather and time in Paris?", tools=TOOLS
    )
    calls = [o for o in first.output if o.type == "function_call"]
    assert len(calls) == 2 and len({c.call_id for c in calls}) == 2
    assert all(json.loads(c.arguments) for c in calls)
    outputs = [
        {"type": "function_call_output", "call_id": c.call_id, "output": f"result {i}"}
        for i, c in enumerate(calls)
    ]
    second = client.responses.create(
        model=adapter.model(), previous_response_id=first.id, input=outputs, tools=TOOLS
    )
    assert second.output_text == HELLO
    body = adapter.calls()[-1]
    ids = [c.call_id for c in calls]
    if adapter.native:
        assert body["previous_response_id"] == first.id
        assert [(i["call_id"], i["output"]) for i in body["input"]] == [
            (ids[0], "result 0"),
            (ids[1], "result 1"),
        ]
    elif adapter.name == "anthropic":
        assistant, results = body["messages"][-2:]
        uses = [b for b in assistant["content"] if b["type"] == "tool_use"]
        assert [(u["id"], u["name"]) for u in uses] == [(c.call_id, c.name) for c in calls]
        assert [u["input"] for u in uses] == [json.loads(c.arguments) for c in calls]
        assert results == {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": ids[0], "content": "result 0"},
                {"type": "tool_result", "tool_use_id": ids[1], "content": "result 1"},
            ],
        }
    elif adapter.name == "gemini":
        model_turn, user_turn = body["contents"][-2:]
        assert model_turn["role"] == "model" and user_turn["role"] == "user"
        fcs = [p["functionCall"] for p in model_turn["parts"]]
        assert [f["name"] for f in fcs] == [c.name for c in calls]
        assert "thoughtSignature" in model_turn["parts"][0]  # Gemini requires it back on the first call
        responses = [p["functionResponse"] for p in user_turn["parts"]]
        assert [(r["name"], r["response"]) for r in responses] == [
            (calls[0].name, {"result": "result 0"}),
            (calls[1].name, {"result": "result 1"}),
        ]
    else:
        assistant, *tools = body["messages"][-3:]
        assert assistant["role"] == "assistant"
        assert [(t["id"], t["function"]["name"]) for t in assistant["tool_calls"]] == [
            (c.call_id, c.name) for c in calls
        ]
        assert tools == [
            {"role": "tool", "tool_call_id": ids[0], "content": "result 0"},
            {"role": "tool", "tool_call_id": ids[1], "content": "result 1"},
        ]


# ------------------------------------------------------------------------------------------ images
def test_image_input(adapter: Adapter, client: openai.OpenAI) -> None:
    url = f"data:image/png;base64,{PNG}"
    content = [{"type": "input_text", "text": "What is this?"}, {"type": "input_image", "image_url": url}]
    r = client.responses.create(model=adapter.model(), input=[{"role": "user", "content": content}])
    assert r.status == "completed"
    body = adapter.calls()[-1]
    if adapter.native:
        part = body["input"][0]["content"][1]
        assert part["type"] == "input_image" and part["image_url"] == url
    elif adapter.name == "anthropic":
        assert body["messages"][0]["content"][1] == {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
        }
    elif adapter.name == "gemini":
        assert body["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}
    else:
        part = body["messages"][0]["content"][1]
        assert part["type"] == "image_url" and part["image_url"]["url"] == url


# ------------------------------------------------------------------------------------------ structured
class Weather(BaseModel):
    city: str
    temperature_c: int
    conditions: str


def test_structured_output_parse(adapter: Adapter, client: openai.OpenAI) -> None:
    parsed = client.responses.parse(
        model=adapter.model("structured"), input="Weather in Paris, as JSON.", text_format=Weather
    )
    assert parsed.output_parsed == Weather(city="Paris", temperature_c=18, conditions="sunny")
    body = adapter.calls()[-1]
    if adapter.native:
        fmt = body["text"]["format"]
        assert fmt["type"] == "json_schema" and fmt["name"] == "Weather" and fmt["strict"] is True
        schema = fmt["schema"]
    elif adapter.name == "anthropic":
        assert body["output_config"]["format"]["type"] == "json_schema"
        schema = body["output_config"]["format"]["schema"]
    elif adapter.name == "gemini":
        assert body["generationConfig"]["responseMimeType"] == "application/json"
        schema = body["generationConfig"]["responseJsonSchema"]
    else:
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Weather"
        assert fmt["json_schema"]["strict"] is True
        schema = fmt["json_schema"]["schema"]
    assert set(schema["properties"]) == {"city", "temperature_c", "conditions"}


# ------------------------------------------------------------------------------------------ reasoning
SIGNATURES = {  # the provider's opaque reasoning token, as recorded in the transcripts
    "anthropic": "EiQSwEpgnP/ZQr5fxigrUZVeWi+5kDgbQCI232r26y0nncL1tiORITR7Eow83bp63kF48YFubVf3jnS1be++SqVjpE+3DjZ1cfC1U8YN4N3dGj3Bms5HinGODmkz8yYGv6c=",
    "gemini": "EiSNiltWEmqGWFwwJhHB0ppQeNLPG0Fr/9NuFVTqi/QKvboR/KhnBwuGrj1wdGhJnAE=",
}


def test_reasoning_round_trip(adapter: Adapter, client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=adapter.model("reasoning"),
        input="What is 27 * 453?",
        reasoning=REASONING,
        include=["reasoning.encrypted_content"],
    )
    (item,) = [o for o in first.output if o.type == "reasoning"]
    assert first.output[-1].type == "message" and first.output_text
    if adapter.name == "chat":  # raw chain of thought: a reasoning_text content part
        assert item.content and item.content[0].type == "reasoning_text" and "27*400" in item.content[0].text
    else:
        assert item.summary and item.summary[0].text
    if adapter.name in SIGNATURES:
        assert item.encrypted_content == SIGNATURES[adapter.name]
    client.responses.create(
        model=adapter.model(), input="Thanks!", previous_response_id=first.id, reasoning=REASONING
    )
    body = adapter.calls()[-1]
    if adapter.native:
        assert body["previous_response_id"] == first.id
    elif adapter.name == "anthropic":
        thinking, text = body["messages"][1]["content"]
        assert thinking == {
            "type": "thinking",
            "thinking": item.summary[0].text,
            "signature": SIGNATURES["anthropic"],
        }
        assert text["type"] == "text" and body["messages"][1]["role"] == "assistant"
    elif adapter.name == "gemini":
        model_turn = body["contents"][1]
        assert model_turn["role"] == "model"
        assert model_turn["parts"][0] == {"text": first.output_text, "thoughtSignature": SIGNATURES["gemini"]}
    else:  # chat servers take no reasoning back
        assert body["messages"][1] == {"role": "assistant", "content": first.output_text}


# Events each upstream sends before its first text delta has been sent (the fake holds right after it).
FIRST_DELTA_AT = {"chat": 2, "anthropic": 4, "gemini": 1}


@pytest.mark.parametrize("name", sorted(FIRST_DELTA_AT))
def test_events_go_out_as_the_upstream_sends_them(env: Env, http: httpx.Client, name: str) -> None:
    """Translated streams are real streams: with the upstream held right after its first text chunk, the
    client gets the response's first events and that delta while the upstream is still holding."""
    import queue
    import threading

    adapter = env.adapters[name]
    adapter.fake.hold_after(FIRST_DELTA_AT[name])
    seen: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        body = {"model": adapter.model(), "input": "hi", "stream": True}
        with http.stream("POST", "/responses", json=body) as r:
            for line in r.iter_lines():
                if line.startswith("event: "):
                    seen.put(line.removeprefix("event: "))
        seen.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    early: list[str] = []
    try:
        while "response.output_text.delta" not in early:
            early.append(seen.get(timeout=10))  # the fake holds for 30 s: a buffered stream fails here
    finally:
        adapter.fake.release()
    reader.join(10)
    rest = []
    while (event := seen.get(timeout=10)) is not None:
        rest.append(event)
    assert early[:2] == ["response.created", "response.in_progress"]
    assert rest[-1] == "response.completed"
