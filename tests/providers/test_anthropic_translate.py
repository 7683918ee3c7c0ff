"""Pure translation of the Anthropic adapter: Responses request → Messages request, and the recorded
Messages streams → Responses events (no HTTP)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from responses_gateway import codec
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.anthropic.request import DEFAULT_MAX_TOKENS, messages_request
from responses_gateway.providers.anthropic.stream import AnthropicStream
from responses_gateway.providers.features import Unsupported
from responses_gateway.v1 import request_pb2
from tests.providers.conftest import PNG, TOOLS, Spec, assemble, text_events, transcript


def translate(body: dict[str, Any], *, drop: bool = False) -> tuple[dict[str, Any], Unsupported]:
    unsupported = Unsupported("Anthropic (test)", drop=drop)
    request = codec.from_json(request_pb2.CreateResponseRequest(), {"model": "claude-x", **body})
    return messages_request(request, "claude-sonnet-4-5", unsupported), unsupported


# ------------------------------------------------------------------------------------------ requests
def test_minimal_request() -> None:
    body, _ = translate({"input": "hi"})
    assert body == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "stream": True,
        "max_tokens": DEFAULT_MAX_TOKENS,
    }


def test_system_roles_sampling_and_user() -> None:
    body, _ = translate(
        {
            "instructions": "Be brief.",
            "input": [
                {"role": "developer", "content": "Answer in French."},
                {"role": "user", "content": "one"},
                {"role": "user", "content": [{"type": "input_text", "text": "two"}]},
                {"role": "assistant", "content": "un deux"},
            ],
            "temperature": 0.5,
            "top_p": 0.9,
            "max_output_tokens": 256,
            "safety_identifier": "user-42",
        }
    )
    assert body["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Answer in French."},
    ]
    assert body["messages"] == [  # consecutive user turns merge: Anthropic wants strict alternation
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "un deux"}]},
    ]
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.5, 0.9, 256)
    assert body["metadata"] == {"user_id": "user-42"}


def test_reasoning_effort_becomes_a_thinking_budget_below_max_tokens() -> None:
    body, _ = translate({"input": "hi", "reasoning": {"effort": "high"}, "max_output_tokens": 1000})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert body["max_tokens"] > 16384


def test_tools_tool_choice_and_parallel_calls() -> None:
    body, _ = translate(
        {"input": "hi", "tools": TOOLS, "tool_choice": "required", "parallel_tool_calls": False}
    )
    assert body["tools"] == [
        {"name": t["name"], "input_schema": t["parameters"]}
        for t in TOOLS  # type: ignore[index]
    ]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    forced, _ = translate(
        {"input": "hi", "tools": TOOLS, "tool_choice": {"type": "function", "name": "get_time"}}
    )
    assert forced["tool_choice"] == {"type": "tool", "name": "get_time"}


def test_tool_loop_items_become_tool_use_and_tool_result_blocks() -> None:
    body, _ = translate(
        {
            "input": [
                {"role": "user", "content": "Weather and time?"},
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [{"type": "summary_text", "text": "Two calls."}],
                    "encrypted_content": "sig-1",
                },
                {
                    "type": "function_call",
                    "call_id": "toolu_1",
                    "name": "get_weather",
                    "arguments": '{"location":"Paris"}',
                },
                {"type": "function_call", "call_id": "toolu_2", "name": "get_time", "arguments": ""},
                {"type": "function_call_output", "call_id": "toolu_1", "output": "18C"},
                {"type": "function_call_output", "call_id": "toolu_2", "output": "noon"},
            ]
        }
    )
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Two calls.", "signature": "sig-1"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "noon"},
            ],
        },
    ]


def test_reasoning_without_signature_is_left_out_and_redacted_goes_back_as_is() -> None:
    body, _ = translate(
        {
            "input": [
                {"role": "user", "content": "hi"},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "x"}]},
                {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "redacted:abc"},
                {"role": "assistant", "content": "ok"},
            ]
        }
    )
    assert body["messages"][1]["content"] == [
        {"type": "redacted_thinking", "data": "abc"},
        {"type": "text", "text": "ok"},
    ]


def test_images_and_files() -> None:
    body, _ = translate(
        {
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
                        {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
                        {"type": "input_file", "file_data": "JVBERi0x", "filename": "a.pdf"},
                    ],
                }
            ]
        }
    )
    assert body["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
            "title": "a.pdf",
        },
    ]


def test_structured_output() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    body, _ = translate(
        {"input": "hi", "text": {"format": {"type": "json_schema", "name": "W", "schema": schema}}}
    )
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}, "tools"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"text": {"format": {"type": "json_object"}}}, "text.format"),
    ],
)
def test_unsupported_features(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as info:
        translate({"input": "hi", **extra})
    assert info.value.reason == Reason.UNSUPPORTED_PARAMETER and info.value.param == param
    assert "Anthropic (test)" in info.value.message
    body, unsupported = translate({"input": "hi", **extra}, drop=True)
    assert unsupported.dropped == [param]
    assert "tools" not in body and "output_config" not in body


# ------------------------------------------------------------------------------------------ streams
def run(scenario: str) -> list[Any]:
    stream = AnthropicStream("Anthropic (test)")
    events = stream.start()
    for data in transcript("anthropic", scenario):
        events += stream.event(data)
    return events + stream.end()


def test_text_stream(spec: Spec) -> None:
    out = assemble(run("text"), spec)
    assert out["types"] == text_events(3)
    r = out["response"]
    assert r["status"] == "completed"
    assert r["output"][0]["content"][0]["text"] == "Hello! How can I help you today?"
    # cache reads and writes are part of Responses' input_tokens
    assert r["usage"]["input_tokens"] == 12 + 1024 + 2048 and r["usage"]["output_tokens"] == 10
    assert r["usage"]["input_tokens_details"] == {"cached_tokens": 2048, "cache_write_tokens": 1024}


def test_thinking_stream(spec: Spec) -> None:
    out = assemble(run("thinking"), spec)
    reasoning, message = out["response"]["output"]
    assert reasoning["type"] == "reasoning" and message["type"] == "message"
    assert reasoning["summary"] == [
        {
            "type": "summary_text",
            "text": "Let me work through this. 27 * 453: 27*400 = 10800, 27*53 = 1431, total 12231.",
        }
    ]
    assert reasoning["encrypted_content"].startswith("EiQSwEpgnP/ZQr5f")
    assert message["content"][0]["text"] == "27 * 453 = 12,231."
    assert out["types"][2:8] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
    ]


def test_tool_use_stream(spec: Spec) -> None:
    out = assemble(run("tool_use"), spec)
    message, weather, time = out["response"]["output"]
    assert message["content"][0]["text"] == "I'll check the weather and the local time in Paris."
    assert (weather["call_id"], weather["name"]) == ("toolu_01A09q90qw90lq917835lq9", "get_weather")
    assert json.loads(weather["arguments"]) == {"location": "Paris, France", "unit": "celsius"}
    assert (time["name"], json.loads(time["arguments"])) == ("get_time", {"timezone": "Europe/Paris"})
    assert out["types"].count("response.function_call_arguments.delta") == 5  # the empty delta is skipped


def test_max_tokens_stream_is_incomplete(spec: Spec) -> None:
    r = assemble(run("max_tokens"), spec)["response"]
    assert r["status"] == "incomplete" and r["incomplete_details"] == {"reason": "max_output_tokens"}


def test_overloaded_error_event_raises_after_partial_output() -> None:
    stream = AnthropicStream("Anthropic (test)")
    events = stream.start()
    with pytest.raises(GatewayError) as info:
        for data in transcript("anthropic", "overloaded"):
            events += stream.event(data)
    assert info.value.reason == Reason.UPSTREAM_UNAVAILABLE and info.value.upstream_status == 529
    assert "overloaded_error" in info.value.message
    assert "response.output_text.delta" in assemble(events)["types"]


def test_cut_stream_raises_at_the_end() -> None:
    stream = AnthropicStream("Anthropic (test)")
    stream.start()
    for data in transcript("anthropic", "disconnect"):
        if isinstance(data, dict) and "type" in data:
            stream.event(data)
    with pytest.raises(GatewayError, match="message_stop"):
        stream.end()
