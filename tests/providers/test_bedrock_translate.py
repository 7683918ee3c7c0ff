"""Bedrock's pure layers on their own: transcripts through the stream translator and the assembler,
the event-stream framing of the fake against botocore's decoder, request translation corners, error
mapping, and how a deployment's region, endpoint and key are resolved."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from responses_gateway import codec
from responses_gateway.config.models import Deployment
from responses_gateway.config.providers import AdapterKind, ProviderKind
from responses_gateway.config.resolve import resolve_deployment
from responses_gateway.errors import GatewayError, Reason
from responses_gateway.providers.bedrock.request import converse_request
from responses_gateway.providers.bedrock.stream import BedrockStream, error_name, error_of
from responses_gateway.providers.features import Unsupported
from responses_gateway.v1 import request_pb2
from tests.fakes.bedrock_upstream import encode_message, frame
from tests.fakes.transcripts import list_scenarios, load_transcript
from tests.providers.conftest import Spec, assemble


def _decode(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buf = EventStreamBuffer()
    buf.add_data(data)
    return [(m.headers, m.payload) for m in buf]


def _translate(scenario: str) -> list[Any]:
    """A transcript as the adapter sees it: framed by the fake, decoded by botocore, translated."""
    t = BedrockStream("Bedrock (m)")
    events = t.start()
    for item in load_transcript("bedrock", scenario)["stream"]:
        if item.get("disconnect"):
            break
        for headers, payload in _decode(frame(item)):
            events.extend(t.message(headers, payload))
    return [*events, *t.end()]


def test_the_fakes_frames_decode_with_botocore_and_their_crcs_are_checked() -> None:
    data = encode_message({":event-type": "messageStart", ":message-type": "event"}, b'{"role":"assistant"}')
    ((headers, payload),) = _decode(data)
    assert headers == {":event-type": "messageStart", ":message-type": "event"}
    assert payload == b'{"role":"assistant"}'
    broken = data[:-5] + bytes([data[-5] ^ 1]) + data[-4:]  # one payload bit flipped
    with pytest.raises(ChecksumMismatch):
        _decode(broken)
    # split anywhere, the buffer still yields whole messages only
    buf = EventStreamBuffer()
    buf.add_data(data[:7])
    assert list(buf) == []
    buf.add_data(data[7:])
    assert [m.payload for m in buf] == [b'{"role":"assistant"}']


@pytest.mark.parametrize(
    "scenario", [s for s in list_scenarios("bedrock") if s not in ("disconnect", "throttled", "stream_error")]
)
def test_transcripts_make_well_formed_streams(scenario: str, spec: Spec) -> None:
    out = assemble(_translate(scenario), spec)
    status = {"max_tokens": "incomplete"}.get(scenario, "completed")
    assert out["response"]["status"] == status


def test_text_usage_counts_cached_input() -> None:
    usage = assemble(_translate("text"))["response"]["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (18, 9, 27)
    assert usage["input_tokens_details"] == {"cached_tokens": 4, "cache_write_tokens": 2}


def test_a_disconnect_before_message_stop_is_an_error() -> None:
    with pytest.raises(GatewayError) as caught:
        _translate("disconnect")
    assert caught.value.reason is Reason.UPSTREAM_UNAVAILABLE and "messageStop" in caught.value.message


@pytest.mark.parametrize(
    ("scenario", "reason", "status"),
    [("throttled", Reason.RATE_LIMITED, 429), ("stream_error", Reason.UPSTREAM_ERROR, 424)],
)
def test_stream_exceptions(scenario: str, reason: Reason, status: int) -> None:
    with pytest.raises(GatewayError) as caught:
        _translate(scenario)
    assert (caught.value.reason, caught.value.upstream_status) == (reason, status)


def test_an_event_stream_error_message_is_an_error() -> None:
    headers = {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}
    with pytest.raises(GatewayError) as caught:
        BedrockStream("Bedrock (m)").message(headers, b"")
    assert "InternalFailure" in caught.value.message and "boom" in caught.value.message


@pytest.mark.parametrize(
    ("header", "body", "status", "reason"),
    [
        (
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            {},
            429,
            Reason.RATE_LIMITED,
        ),
        (None, {"__type": "com.amazon.coral.validate#ValidationException"}, 400, Reason.INVALID_REQUEST),
        ("ModelTimeoutException:http://x/", {}, 408, Reason.UPSTREAM_TIMEOUT),
        ("ModelNotReadyException:http://x/", {}, 429, Reason.UPSTREAM_UNAVAILABLE),
        ("ExpiredTokenException:http://x/", {}, 403, Reason.UPSTREAM_AUTH_FAILED),
        (None, None, 502, Reason.UPSTREAM_UNAVAILABLE),  # a proxy's answer: no AWS error name
    ],
)
def test_error_mapping(header: str | None, body: Any, status: int, reason: Reason) -> None:
    err = error_of(error_name(header, body), "msg", "Bedrock (m)", status)
    assert err.reason is reason and err.upstream_status == status


def test_a_stop_for_malformed_tool_use_fails_the_response() -> None:
    t = BedrockStream("Bedrock (m)")
    t.start()
    t.event("messageStop", {"stopReason": "malformed_tool_use"})
    final = assemble([*t.start(), *t.end()])["response"]
    assert final["status"] == "failed" and "malformed tool call" in final["error"]["message"]


# ------------------------------------------------------------------------------------------ requests
def _body(request: dict[str, Any], model: str = "us.anthropic.claude-sonnet-4", *, drop: bool = False) -> Any:
    req = codec.from_json(request_pb2.CreateResponseRequest(), {"model": "m", **request})
    return converse_request(req, model, Unsupported("Bedrock (m)", drop=drop))


TOOL = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}


def test_tool_choice_none_leaves_the_tools_out_unless_the_conversation_has_tool_blocks() -> None:
    assert "toolConfig" not in _body({"input": "hi", "tools": [TOOL], "tool_choice": "none"})
    history = [
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": ""},
    ]
    body = _body({"input": history, "tools": [TOOL], "tool_choice": "none"})
    assert (
        "toolChoice" not in body["toolConfig"] and body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "f"
    )
    # an empty tool output still makes a non-empty text block (Converse refuses empty ones)
    assert body["messages"][1]["content"][0]["toolResult"]["content"] == [{"text": " "}]


def test_redacted_reasoning_goes_back_as_redacted_content() -> None:
    items = [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "redacted:AAEC"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
    ]
    body = _body({"input": items})
    assert body["messages"][1]["content"] == [
        {"reasoningContent": {"redactedContent": "AAEC"}},
        {"text": "ok"},
    ]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("us.anthropic.claude-sonnet-4", {"thinking": {"type": "enabled", "budget_tokens": 16384}}),
        (
            "us.amazon.nova-2-lite-v1:0",
            {"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "high"}},
        ),
        ("openai.gpt-oss-120b-1:0", {"reasoning_effort": "high"}),
    ],
)
def test_reasoning_effort_per_model_family(model: str, expected: dict[str, Any]) -> None:
    body = _body({"input": "hi", "reasoning": {"effort": "high"}, "max_output_tokens": 1000}, model)
    assert body["additionalModelRequestFields"] == expected
    limit = body["inferenceConfig"]["maxTokens"]
    assert limit == (16384 + 1000 if "anthropic" in model else 1000)


def test_json_object_is_refused_or_dropped() -> None:
    with pytest.raises(GatewayError) as caught:
        _body({"input": "hi", "text": {"format": {"type": "json_object"}}})
    assert caught.value.param == "text.format" and "Bedrock" in caught.value.message
    assert "outputConfig" not in _body(
        {"input": "hi", "text": {"format": {"type": "json_object"}}}, drop=True
    )


def test_a_guardrail_config_that_is_not_an_object_is_a_400() -> None:
    with pytest.raises(GatewayError) as caught:
        _body({"input": "hi", "guardrailConfig": "gr1"})
    assert caught.value.reason is Reason.INVALID_REQUEST and caught.value.param == "guardrailConfig"


def test_consecutive_user_items_share_one_message_and_developer_text_joins_system() -> None:
    items = [
        {"type": "message", "role": "developer", "content": "Be terse."},
        {"type": "message", "role": "user", "content": "a"},
        {"type": "message", "role": "user", "content": "b"},
    ]
    body = _body({"input": items, "instructions": "Sys."})
    assert body["system"] == [{"text": "Sys."}, {"text": "Be terse."}]
    assert body["messages"] == [{"role": "user", "content": [{"text": "a"}, {"text": "b"}]}]


# ------------------------------------------------------------------------------------------ config
def _resolve(params: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    return resolve_deployment(
        Deployment.model_validate({"model_name": "x", "litellm_params": params}), env=env or {}
    )


def test_region_endpoint_and_key_resolution() -> None:
    d = _resolve({"model": "bedrock/converse/anthropic.claude-3-haiku"})
    assert (d.provider, d.adapter, d.upstream_model) == (
        ProviderKind.BEDROCK,
        AdapterKind.BEDROCK,
        "anthropic.claude-3-haiku",
    )
    assert d.enabled and d.bedrock.region == "us-west-2" and d.api_key is None
    assert d.api_base == "https://bedrock-runtime.us-west-2.amazonaws.com"
    d = _resolve({"model": "bedrock/m"}, {"AWS_REGION": "eu-central-1", "AWS_BEARER_TOKEN_BEDROCK": "tok"})
    assert d.bedrock.region == "eu-central-1" and d.api_key == "tok"
    arn = "arn:aws:bedrock:ap-south-1:123456789012:application-inference-profile/abc123"
    d = _resolve({"model": f"bedrock/{arn}"}, {})
    assert d.bedrock.region == "ap-south-1" and d.upstream_model == arn
    d = _resolve(
        {
            "model": "bedrock/m",
            "aws_region_name": "us-east-2",
            "aws_bedrock_runtime_endpoint": "https://vpce-1.example",
        },
        {"AWS_REGION": "eu-central-1"},
    )
    assert d.bedrock.region == "us-east-2" and d.api_base == "https://vpce-1.example"
    d = _resolve(
        {"model": "bedrock/m", "api_base": "https://a.example", "aws_bedrock_runtime_endpoint": "https://b"}
    )
    assert d.api_base == "https://a.example"
    assert "secret" not in repr(_resolve({"model": "bedrock/m", "aws_secret_access_key": "secret"}).bedrock)


def test_guardrail_from_the_deployment_is_json_ready() -> None:
    d = _resolve(
        {"model": "bedrock/m", "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"}}
    )
    body = _body({"input": "hi"})
    req = codec.from_json(request_pb2.CreateResponseRequest(), {"model": "m", "input": "hi"})
    with_guardrail = converse_request(req, "m", Unsupported("B", drop=False), guardrail=d.bedrock.guardrail)
    assert "guardrailConfig" not in body
    assert json.loads(json.dumps(with_guardrail["guardrailConfig"])) == {
        "guardrailIdentifier": "g",
        "guardrailVersion": "1",
    }
