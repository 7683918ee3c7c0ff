"""Pure translation of the Gemini adapter: Responses request → generateContent request, and the recorded
streamGenerateContent chunks → Responses events (no HTTP)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from responses_gateway import codec
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.features import Unsupported
from responses_gateway.providers.gemini.adapter import retry_info_seconds
from responses_gateway.providers.gemini.request import generate_request
from responses_gateway.providers.gemini.stream import GeminiStream
from responses_gateway.v1 import request_pb2
from tests.providers.conftest import PNG, TOOLS, Spec, assemble, text_events, transcript

SIGNATURE = "EiSNiltWEmqGWFwwJhHB0ppQeNLPG0Fr/9NuFVTqi/QKvboR/KhnBwuGrj1wdGhJnAE="


def translate(body: dict[str, Any], *, drop: bool = False) -> tuple[dict[str, Any], Unsupported]:
    unsupported = Unsupported("Gemini (test)", drop=drop)
    request = codec.from_json(request_pb2.CreateResponseRequest(), {"model": "gem", **body})
    return generate_request(request, unsupported), unsupported


# ------------------------------------------------------------------------------------------ requests
def test_minimal_request() -> None:
    assert translate({"input": "hi"})[0] == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_system_generation_config_and_thinking() -> None:
    body, _ = translate(
        {
            "instructions": "Be brief.",
            "input": [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "hi"}],
            "max_output_tokens": 300,
            "temperature": 0.2,
            "top_p": 0.8,
            "reasoning": {"effort": "low", "summary": "auto"},
        }
    )
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]}
    assert body["generationConfig"] == {
        "maxOutputTokens": 300,
        "temperature": 0.2,
        "topP": 0.8,
        "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True},
    }


def test_tools_and_tool_config() -> None:
    body, _ = translate({"input": "hi", "tools": TOOLS, "tool_choice": "required"})
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {"name": t["name"], "parametersJsonSchema": t["parameters"]} for t in TOOLS
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    forced, _ = translate(
        {"input": "hi", "tools": TOOLS, "tool_choice": {"type": "function", "name": "get_time"}}
    )
    assert forced["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}
    }


def test_tool_loop_with_thought_signature() -> None:
    body, _ = translate(
        {
            "input": [
                {"role": "user", "content": "Weather and time?"},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": SIGNATURE},
                {
                    "type": "function_call",
                    "call_id": "call_gw_1",
                    "name": "get_weather",
                    "arguments": '{"location":"Paris"}',
                },
                {"type": "function_call", "call_id": "real-id-2", "name": "get_time", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_gw_1", "output": "18C"},
                {"type": "function_call_output", "call_id": "real-id-2", "output": "noon"},
            ]
        }
    )
    assert body["contents"][1:] == [
        {
            "role": "model",
            "parts": [  # the signature goes back on the part it came with; gateway-made ids stay home
                {
                    "functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
                    "thoughtSignature": SIGNATURE,
                },
                {"functionCall": {"name": "get_time", "args": {}, "id": "real-id-2"}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"result": "18C"}}},
                {"functionResponse": {"name": "get_time", "response": {"result": "noon"}, "id": "real-id-2"}},
            ],
        },
    ]


def test_media_parts() -> None:
    content = [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
        {"type": "input_image", "image_url": "gs://bucket/cat.jpg"},
        {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0x"},
    ]
    body, _ = translate({"input": [{"role": "user", "content": content}]})
    assert body["contents"][0]["parts"] == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"fileData": {"fileUri": "gs://bucket/cat.jpg"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}},
    ]


def test_structured_output() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    body, _ = translate(
        {"input": "hi", "text": {"format": {"type": "json_schema", "name": "W", "schema": schema}}}
    )
    assert body["generationConfig"] == {"responseMimeType": "application/json", "responseJsonSchema": schema}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}, "tools"),
        ({"top_logprobs": 2}, "top_logprobs"),
    ],
)
def test_unsupported_features(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as info:
        translate({"input": "hi", **extra})
    assert info.value.reason == Reason.UNSUPPORTED_PARAMETER and info.value.param == param
    assert "Gemini (test)" in info.value.message
    body, unsupported = translate({"input": "hi", **extra}, drop=True)
    assert unsupported.dropped == [param] and "tools" not in body


# ------------------------------------------------------------------------------------------ streams
def run(scenario: str) -> list[Any]:
    stream = GeminiStream("Gemini (test)")
    events = stream.start()
    for data in transcript("gemini", scenario):
        events += stream.chunk(data)
    return events + stream.end()


def test_text_stream(spec: Spec) -> None:
    out = assemble(run("text"), spec)
    assert out["types"] == text_events(3)
    r = out["response"]
    assert r["output"][0]["content"][0]["text"] == "Hello! How can I help you today?"
    assert (r["usage"]["input_tokens"], r["usage"]["output_tokens"], r["usage"]["total_tokens"]) == (
        2100,
        9,
        2109,
    )
    assert r["usage"]["input_tokens_details"]["cached_tokens"] == 2048


def test_thinking_stream(spec: Spec) -> None:
    out = assemble(run("thinking"), spec)
    reasoning, message = out["response"]["output"]
    assert reasoning["summary"] == [
        {
            "type": "summary_text",
            "text": "**Multiplying the numbers**\n\nI need 27 * 453. 27*400 = 10800 and 27*53 = 1431, so 12231.",
        }
    ]
    assert reasoning["encrypted_content"] == SIGNATURE
    assert message["content"][0]["text"] == "27 * 453 = 12,231."
    assert out["response"]["usage"]["output_tokens_details"]["reasoning_tokens"] == 180


def test_function_calls_stream(spec: Spec) -> None:
    out = assemble(run("function_calls"), spec)
    reasoning, weather, time = out["response"]["output"]
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"].startswith("EiSVFhCWaX8o")
    assert weather["name"] == "get_weather" and json.loads(weather["arguments"]) == {
        "location": "Paris, France",
        "unit": "celsius",
    }
    assert time["name"] == "get_time" and json.loads(time["arguments"]) == {"timezone": "Europe/Paris"}
    assert weather["call_id"].startswith("call_gw_") and weather["call_id"] != time["call_id"]


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ("max_tokens", "max_output_tokens"),
        ("safety_candidate", "content_filter"),
        ("safety", "content_filter"),
    ],
)
def test_incomplete_streams(spec: Spec, scenario: str, reason: str) -> None:
    r = assemble(run(scenario), spec)["response"]
    assert r["status"] == "incomplete" and r["incomplete_details"] == {"reason": reason}
    if scenario == "safety":  # a blocked prompt says so in a refusal
        assert r["output"][0]["content"][0] == {
            "type": "refusal",
            "refusal": "The request was blocked by the provider (SAFETY).",
        }


def test_cut_stream_raises_at_the_end() -> None:
    stream = GeminiStream("Gemini (test)")
    stream.start()
    for data in transcript("gemini", "disconnect"):
        if "candidates" in data:
            stream.chunk(data)
    with pytest.raises(GatewayError) as info:
        stream.end()
    assert info.value.reason == Reason.UPSTREAM_UNAVAILABLE


def test_retry_info_detail() -> None:
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}
    assert retry_info_seconds(json.dumps({"error": {"code": 429, "details": [retry]}}).encode()) == 1.5
    assert retry_info_seconds(b'{"error": {"code": 429}}') is None
    assert retry_info_seconds(b"<html>") is None
