"""Pure translation of the Chat Completions bridge: Responses request → chat request, and the recorded
chat chunk streams → Responses events (no HTTP)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from responses_gateway import codec
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.chat.request import chat_request
from responses_gateway.providers.chat.stream import ChatStream
from responses_gateway.providers.features import Unsupported
from responses_gateway.v1 import request_pb2
from tests.providers.conftest import PNG, TOOLS, Spec, assemble, text_events, transcript


def translate(body: dict[str, Any], *, drop: bool = False, key: str = "max_tokens") -> dict[str, Any]:
    unsupported = Unsupported("chat (test)", drop=drop)
    request = codec.from_json(request_pb2.CreateResponseRequest(), {"model": "m", **body})
    return chat_request(request, "llama-3", unsupported, max_tokens_key=key)


# ------------------------------------------------------------------------------------------ requests
def test_minimal_request_streams_with_usage() -> None:
    assert translate({"input": "hi"}) == {
        "model": "llama-3",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_roles_sampling_and_limits() -> None:
    body = translate(
        {
            "instructions": "Be brief.",
            "input": [{"role": "developer", "content": "French."}, {"role": "user", "content": "hi"}],
            "temperature": 0.3,
            "top_p": 0.5,
            "max_output_tokens": 100,
            "top_logprobs": 2,
            "reasoning": {"effort": "high"},
            "user": "u-1",
        },
        key="max_completion_tokens",
    )
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "French."},
        {"role": "user", "content": "hi"},
    ]
    assert (body["temperature"], body["top_p"], body["max_completion_tokens"]) == (0.3, 0.5, 100)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 2)
    assert body["reasoning_effort"] == "high" and body["user"] == "u-1" and "max_tokens" not in body


def test_tools_choice_and_structured_output() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    body = translate(
        {
            "input": "hi",
            "tools": TOOLS,
            "tool_choice": {"type": "function", "name": "get_time"},
            "parallel_tool_calls": False,
            "text": {"format": {"type": "json_schema", "name": "W", "schema": schema, "strict": True}},
        }
    )
    assert body["tools"] == [
        {"type": "function", "function": {"name": t["name"], "parameters": t["parameters"]}} for t in TOOLS
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert body["parallel_tool_calls"] is False
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "W", "schema": schema, "strict": True},
    }


def test_tool_loop_items_pair_calls_with_tool_messages() -> None:
    body = translate(
        {
            "input": [
                {"role": "user", "content": "Weather and time?"},
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [],
                    "content": [{"type": "reasoning_text", "text": "hm"}],
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Checking."}],
                },
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "get_weather",
                    "arguments": '{"location":"Paris"}',
                },
                {"type": "function_call", "call_id": "c2", "name": "get_time", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "18C"},
                {"type": "function_call_output", "call_id": "c2", "output": "noon"},
            ]
        }
    )
    call = {"type": "function", "function": {}}
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    **call,
                    "id": "c1",
                    "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                },
                {**call, "id": "c2", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "18C"},
        {"role": "tool", "tool_call_id": "c2", "content": "noon"},
    ]


def test_image_parts() -> None:
    url = f"data:image/png;base64,{PNG}"
    content = [
        {"type": "input_text", "text": "What?"},
        {"type": "input_image", "image_url": url, "detail": "low"},
    ]
    body = translate({"input": [{"role": "user", "content": content}]})
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What?"},
        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
    ]


def test_hosted_tools_are_unsupported() -> None:
    with pytest.raises(GatewayError) as info:
        translate({"input": "hi", "tools": [{"type": "web_search"}]})
    assert info.value.reason == Reason.UNSUPPORTED_PARAMETER and info.value.param == "tools"
    assert "web_search" in info.value.message
    assert "tools" not in translate({"input": "hi", "tools": [{"type": "web_search"}]}, drop=True)


# ------------------------------------------------------------------------------------------ streams
def run(scenario: str) -> list[Any]:
    stream = ChatStream("chat (test)")
    events = stream.start()
    for data in transcript("chat", scenario):
        if data == "[DONE]":
            break
        events += stream.chunk(data)
    return events + stream.end()


def test_text_stream(spec: Spec) -> None:
    out = assemble(run("text"), spec)
    assert out["types"] == text_events(out["types"].count("response.output_text.delta"))
    r = out["response"]
    assert r["output"][0]["content"][0]["text"] == "Hello! How can I help you today?"
    assert (r["usage"]["input_tokens"], r["usage"]["output_tokens"], r["usage"]["total_tokens"]) == (
        2100,
        10,
        2110,
    )
    assert r["usage"]["input_tokens_details"]["cached_tokens"] == 2048


def test_reasoning_stream(spec: Spec) -> None:
    out = assemble(run("reasoning"), spec)
    reasoning, message = out["response"]["output"]
    assert reasoning["content"] == [
        {
            "type": "reasoning_text",
            "text": "Let me work through this. 27*400 = 10800, 27*53 = 1431, total 12231.",
        }
    ]
    assert message["content"][0]["text"] == "27 * 453 = 12,231."
    assert "response.reasoning_text.delta" in out["types"]
    assert out["response"]["usage"]["output_tokens_details"]["reasoning_tokens"] == 80


def test_tool_calls_stream(spec: Spec) -> None:
    out = assemble(run("tool_calls"), spec)
    weather, time = out["response"]["output"]
    assert (weather["call_id"], weather["name"]) == ("call_Wq3XkV8nB2mR5tY7uI0oP4aS", "get_weather")
    assert json.loads(weather["arguments"]) == {"location": "Paris, France", "unit": "celsius"}
    assert (time["call_id"], json.loads(time["arguments"])) == (
        "call_Zx9CvB6nM1aS3dF5gH8jK2lQ",
        {"timezone": "Europe/Paris"},
    )


@pytest.mark.parametrize(
    ("scenario", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")]
)
def test_incomplete_streams(spec: Spec, scenario: str, reason: str) -> None:
    r = assemble(run(scenario), spec)["response"]
    assert r["status"] == "incomplete" and r["incomplete_details"] == {"reason": reason}


def test_error_chunk_raises() -> None:
    with pytest.raises(GatewayError) as info:
        run("stream_error")
    assert "Sorry about that" in info.value.message and info.value.reason == Reason.UPSTREAM_ERROR


def test_cut_stream_raises_at_the_end() -> None:
    stream = ChatStream("chat (test)")
    stream.start()
    for data in transcript("chat", "disconnect"):
        if "choices" in data:
            stream.chunk(data)
    with pytest.raises(GatewayError) as info:
        stream.end()
    assert info.value.reason == Reason.UPSTREAM_UNAVAILABLE
