"""The shared scenario kinds over Bedrock, through the gateway to the fake Bedrock (SigV4 checked,
`vnd.amazon.eventstream` framed): text, stream shape, multi-turn, parallel tool loop, image,
`responses.parse`, reasoning round trip, every error kind, mid-stream disconnect — over REST, the
official `openai` SDK and gRPC, every object checked against the spec."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import openai
import pytest
from pydantic import BaseModel

from responses_gateway import codec
from responses_gateway.v1 import request_pb2, responses_service_pb2_grpc
from tests.providers.bedrock_support import ARN_MODEL, GUARDRAIL, REGION, BedrockEnv, bedrock_env
from tests.providers.conftest import PNG, TOOLS, Spec, check_stream, output_of, stream, text_of
from tests.support.clients import openai_client, responses_stub, rest_client

HELLO = "Hello! How can I help you today?"
REASONING = {"effort": "low", "summary": "auto"}
SIGNATURE = "ErUBCkgIAxABGAIiQPm1cY0Yb2vJ6n3o5kXhQmJq9tF8zWc4rR0aL1dS7uE2gH6iV3jK9lM0nO5pQ8sT4wX1yZ7bA2cD6eF9gH3jK5lQ=="


@pytest.fixture(scope="module")
def benv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BedrockEnv]:
    with bedrock_env(tmp_path_factory.mktemp("bedrock")) as env:
        yield env


@pytest.fixture(autouse=True)
def _fresh(benv: BedrockEnv) -> Iterator[None]:
    benv.reset()
    yield
    benv.reset()


@pytest.fixture(scope="module")
def bhttp(benv: BedrockEnv) -> Iterator[httpx.Client]:
    with rest_client(benv.gw) as c:
        yield c


@pytest.fixture(scope="module")
def bclient(benv: BedrockEnv) -> Iterator[openai.OpenAI]:
    with openai_client(benv.gw) as c:
        yield c


@pytest.fixture(scope="module")
def bstub(benv: BedrockEnv) -> Iterator[responses_service_pb2_grpc.ResponsesServiceStub]:
    with responses_stub(benv.gw) as stub:
        yield stub


def calls(env: BedrockEnv) -> list[dict[str, Any]]:
    return [r.body for r in env.bedrock.requests]


# ------------------------------------------------------------------------------------------ text, auth, URLs
def test_text_unary(benv: BedrockEnv, bhttp: httpx.Client, bclient: openai.OpenAI, spec: Spec) -> None:
    raw = bhttp.post(
        "/responses", json={"model": "brk-text", "input": "Say hello.", "instructions": "Be brief."}
    )
    assert raw.status_code == 200, raw.text
    body = raw.json()
    spec.check("Response", body)
    assert body["status"] == "completed" and text_of(body) == HELLO
    # Bedrock counts cached input apart; Responses' input_tokens includes it (12 + 4 read + 2 written).
    assert body["usage"]["input_tokens"] == 18 and body["usage"]["output_tokens"] == 9
    assert body["usage"]["input_tokens_details"]["cached_tokens"] == 4
    sent = calls(benv)[-1]
    assert sent["system"] == [{"text": "Be brief."}]
    assert sent["messages"] == [{"role": "user", "content": [{"text": "Say hello."}]}]
    sdk = bclient.responses.create(model="brk-text", input="Say hello.")
    assert sdk.output_text == HELLO
    assert bclient.responses.retrieve(sdk.id).output_text == HELLO


def test_every_request_is_sigv4_signed_for_the_region_and_service(
    benv: BedrockEnv, bclient: openai.OpenAI
) -> None:
    bclient.responses.create(model="brk-text", input="hi")
    rec = benv.bedrock.requests[-1]
    assert rec.path == "/model/us.anthropic.scenario-text/converse-stream"
    (signed,) = benv.bedrock.signed
    assert (signed.access_key, signed.region, signed.service) == ("AKIAIOSFODNN7EXAMPLE", REGION, "bedrock")
    assert {"host", "x-amz-date", "content-type"} <= set(signed.signed_headers)
    assert rec.headers["x-amz-date"].startswith(signed.date)
    assert rec.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/")
    assert rec.headers["accept"] == "application/vnd.amazon.eventstream"


def test_converse_route_and_runtime_endpoint(benv: BedrockEnv, bclient: openai.OpenAI) -> None:
    """LiteLLM's `bedrock/converse/<id>` with `aws_bedrock_runtime_endpoint`: the same Converse call."""
    assert bclient.responses.create(model="brkc-text", input="hi").output_text == HELLO
    assert benv.bedrock.models == ["us.anthropic.scenario-text"]


def test_an_inference_profile_arn_is_one_encoded_path_segment(
    benv: BedrockEnv, bclient: openai.OpenAI
) -> None:
    """The ARN goes in the path percent-encoded whole; the signature covers that path, and the region
    comes from the ARN (the deployment names none)."""
    assert bclient.responses.create(model="brkarn", input="hi").output_text == HELLO
    rec = benv.bedrock.requests[-1]
    assert rec.path == f"/model/{ARN_MODEL}/converse-stream"  # as the server decoded it
    assert benv.bedrock.models == [ARN_MODEL]
    assert benv.bedrock.signed[-1].region == "us-east-1"


def test_bedrock_api_key_is_a_bearer_token(benv: BedrockEnv, bclient: openai.OpenAI) -> None:
    assert bclient.responses.create(model="brkkey", input="hi").output_text == HELLO
    rec = benv.bedrock.requests[-1]
    assert rec.headers["authorization"] == "Bearer bedrock-api-key-0123456789"
    assert "x-amz-date" not in rec.headers and benv.bedrock.signed == []


@pytest.mark.parametrize(("model", "needle"), [("brkbad", "does not match"), ("brkreg", "scoped correctly")])
def test_a_refused_signature_is_the_upstreams_auth_error(
    benv: BedrockEnv, bhttp: httpx.Client, model: str, needle: str
) -> None:
    resp = bhttp.post("/responses", json={"model": model, "input": "hi"})
    assert resp.status_code == 502, resp.text
    error = resp.json()["error"]
    assert error["code"] == "upstream_auth_failed" and "InvalidSignatureException" in error["message"]
    assert needle in error["message"]


def test_guardrail_config_passes_through(benv: BedrockEnv, bclient: openai.OpenAI) -> None:
    bclient.responses.create(
        model="brkg", input="hi", extra_body={"guardrailConfig": {"guardrailIdentifier": "x"}}
    )
    assert calls(benv)[-1]["guardrailConfig"] == GUARDRAIL  # the deployment's wins over the request's
    other = {"guardrailIdentifier": "gr1", "guardrailVersion": "DRAFT"}
    bclient.responses.create(model="brk-text", input="hi", extra_body={"guardrailConfig": other})
    assert calls(benv)[-1]["guardrailConfig"] == other


# ------------------------------------------------------------------------------------------ streaming
@pytest.mark.parametrize("kind", ["text", "tool_use", "reasoning"])
def test_stream_well_formed(bhttp: httpx.Client, spec: Spec, kind: str) -> None:
    body: dict[str, Any] = {"model": f"brk-{kind}", "input": "hi", "tools": TOOLS}
    if kind == "reasoning":
        body["reasoning"] = REASONING
    resp, events = stream(bhttp, body)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    final = check_stream(events, spec)
    assert final["status"] == "completed"
    expected = {"text": "message", "tool_use": "function_call", "reasoning": "reasoning"}[kind]
    assert expected in [i["type"] for i in final["output"]]
    if kind == "tool_use":
        assert len(output_of(final, "function_call")) == 2
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) == {"text": 3, "tool_use": 1, "reasoning": 2}[kind]  # each Bedrock delta relayed
    stored = bhttp.get(f"/responses/{final['id']}").json()
    assert stored["status"] == "completed" and stored["output"] == final["output"]


def test_events_go_out_as_the_upstream_sends_them(benv: BedrockEnv, bhttp: httpx.Client) -> None:
    """With the fake holding right after its first text delta, the client already has that delta."""
    benv.bedrock.hold_after(2)
    seen: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        with bhttp.stream(
            "POST", "/responses", json={"model": "brk-text", "input": "hi", "stream": True}
        ) as r:
            for line in r.iter_lines():
                if line.startswith("event: "):
                    seen.put(line.removeprefix("event: "))
        seen.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    early: list[str | None] = []
    try:
        while "response.output_text.delta" not in early:
            early.append(seen.get(timeout=10))
    finally:
        benv.bedrock.release()
    reader.join(10)
    rest = []
    while (event := seen.get(timeout=10)) is not None:
        rest.append(event)
    assert early[:2] == ["response.created", "response.in_progress"]
    assert rest[-1] == "response.completed"


def test_max_tokens_is_incomplete(bhttp: httpx.Client, spec: Spec) -> None:
    _resp, events = stream(
        bhttp, {"model": "brk-max_tokens", "input": "Tell a story.", "max_output_tokens": 8}
    )
    final = check_stream(events, spec)
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}


# ------------------------------------------------------------------------------------------ multi-turn
def test_previous_response_id_replays_history(benv: BedrockEnv, bclient: openai.OpenAI) -> None:
    first = bclient.responses.create(model="brk-text", input="Say hello.")
    second = bclient.responses.create(model="brk-text", input="And again?", previous_response_id=first.id)
    assert second.output_text == HELLO
    assert calls(benv)[-1]["messages"] == [
        {"role": "user", "content": [{"text": "Say hello."}]},
        {"role": "assistant", "content": [{"text": HELLO}]},
        {"role": "user", "content": [{"text": "And again?"}]},
    ]


# ------------------------------------------------------------------------------------------ tools
def test_function_calling_loop(benv: BedrockEnv, bclient: openai.OpenAI) -> None:
    first = bclient.responses.create(model="brk-tool_use", input="Weather and time in Paris?", tools=TOOLS)
    fcs = [o for o in first.output if o.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in fcs] == [
        ("get_weather", {"location": "Paris"}),
        ("get_time", {"timezone": "Europe/Paris"}),
    ]
    sent = calls(benv)[-1]
    assert [t["toolSpec"]["name"] for t in sent["toolConfig"]["tools"]] == ["get_weather", "get_time"]
    assert sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {"json": TOOLS[0]["parameters"]}
    outputs = [
        {"type": "function_call_output", "call_id": c.call_id, "output": f"result {i}"}
        for i, c in enumerate(fcs)
    ]
    second = bclient.responses.create(
        model="brk-text", previous_response_id=first.id, input=outputs, tools=TOOLS
    )
    assert second.output_text == HELLO
    assistant, results = calls(benv)[-1]["messages"][-2:]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"text": "I'll check both."},
            *[
                {"toolUse": {"toolUseId": c.call_id, "name": c.name, "input": json.loads(c.arguments)}}
                for c in fcs
            ],
        ],
    }
    assert results == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": fcs[0].call_id, "content": [{"text": "result 0"}]}},
            {"toolResult": {"toolUseId": fcs[1].call_id, "content": [{"text": "result 1"}]}},
        ],
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("required", {"any": {}}),
        ({"type": "function", "name": "get_time"}, {"tool": {"name": "get_time"}}),
        ("auto", {"auto": {}}),
    ],
)
def test_tool_choice(benv: BedrockEnv, bclient: openai.OpenAI, choice: Any, expected: dict[str, Any]) -> None:
    bclient.responses.create(model="brk-text", input="hi", tools=TOOLS, tool_choice=choice)
    assert calls(benv)[-1]["toolConfig"]["toolChoice"] == expected


def test_parallel_tool_calls_false_keeps_the_first_call(bclient: openai.OpenAI) -> None:
    r = bclient.responses.create(model="brk-tool_use", input="hi", tools=TOOLS, parallel_tool_calls=False)
    assert [o.name for o in r.output if o.type == "function_call"] == ["get_weather"]


# ------------------------------------------------------------------------------------------ images, files
def test_image_input(benv: BedrockEnv, bclient: openai.OpenAI) -> None:
    url = f"data:image/png;base64,{PNG}"
    content = [{"type": "input_text", "text": "What is this?"}, {"type": "input_image", "image_url": url}]
    r = bclient.responses.create(model="brk-text", input=[{"role": "user", "content": content}])
    assert r.status == "completed"
    assert calls(benv)[-1]["messages"][0]["content"][1] == {
        "image": {"format": "png", "source": {"bytes": PNG}}
    }


def test_a_web_image_url_is_a_400_naming_bedrock(benv: BedrockEnv, bhttp: httpx.Client) -> None:
    content = [{"type": "input_image", "image_url": "https://example.com/cat.png"}]
    resp = bhttp.post(
        "/responses", json={"model": "brk-text", "input": [{"role": "user", "content": content}]}
    )
    assert resp.status_code == 400, resp.text
    assert "Bedrock" in resp.json()["error"]["message"] and resp.json()["error"]["param"] == "input"
    assert benv.bedrock.requests == []
    # drop_params: the image is dropped (and said so), the text goes up
    content.insert(0, {"type": "input_text", "text": "Look"})
    resp = bhttp.post(
        "/responses", json={"model": "brkd-text", "input": [{"role": "user", "content": content}]}
    )
    assert resp.status_code == 200, resp.text
    assert calls(benv)[-1]["messages"][0]["content"] == [{"text": "Look"}]


def test_pdf_document_input(benv: BedrockEnv, bclient: openai.OpenAI) -> None:
    pdf = "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoK"
    content = [
        {"type": "input_text", "text": "Summarise."},
        {
            "type": "input_file",
            "filename": "q3 report (final).pdf",
            "file_data": f"data:application/pdf;base64,{pdf}",
        },
    ]
    bclient.responses.create(model="brk-text", input=[{"role": "user", "content": content}])
    assert calls(benv)[-1]["messages"][0]["content"][1] == {
        "document": {"format": "pdf", "name": "q3 report (final)", "source": {"bytes": pdf}}
    }


# ------------------------------------------------------------------------------------------ structured
class Weather(BaseModel):
    city: str
    temperature_c: int
    conditions: str


def test_structured_output_parse(benv: BedrockEnv, bclient: openai.OpenAI) -> None:
    parsed = bclient.responses.parse(
        model="brk-structured", input="Weather in Paris, as JSON.", text_format=Weather
    )
    assert parsed.output_parsed == Weather(city="Paris", temperature_c=18, conditions="sunny")
    fmt = calls(benv)[-1]["outputConfig"]["textFormat"]
    assert fmt["type"] == "json_schema" and fmt["structure"]["jsonSchema"]["name"] == "Weather"
    schema = json.loads(fmt["structure"]["jsonSchema"]["schema"])  # Converse takes the schema as a string
    assert set(schema["properties"]) == {"city", "temperature_c", "conditions"}


# ------------------------------------------------------------------------------------------ reasoning
def test_reasoning_round_trip(benv: BedrockEnv, bclient: openai.OpenAI) -> None:
    first = bclient.responses.create(
        model="brk-reasoning",
        input="What is 27 * 453?",
        reasoning=REASONING,
        include=["reasoning.encrypted_content"],
    )
    thinking = calls(benv)[-1]["additionalModelRequestFields"]["thinking"]
    assert thinking == {"type": "enabled", "budget_tokens": 1024}
    assert calls(benv)[-1]["inferenceConfig"]["maxTokens"] > 1024  # Claude needs room past the budget
    (item,) = [o for o in first.output if o.type == "reasoning"]
    assert item.summary[0].text.endswith("total 12231.") and item.encrypted_content == SIGNATURE
    assert first.output_text == "27 * 453 = 12,231."
    bclient.responses.create(
        model="brk-text", input="Thanks!", previous_response_id=first.id, reasoning=REASONING
    )
    assistant = calls(benv)[-1]["messages"][1]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"reasoningContent": {"reasoningText": {"text": item.summary[0].text, "signature": SIGNATURE}}},
            {"text": first.output_text},
        ],
    }


# ------------------------------------------------------------------------------------------ errors
# Bedrock's answer -> (gateway status, OpenAI error type, code)
ERRORS = {
    400: ("ValidationException", 400, "invalid_request_error"),
    403: ("AccessDeniedException", 502, "server_error"),
    404: ("ResourceNotFoundException", 404, "invalid_request_error"),
    408: ("ModelTimeoutException", 504, "server_error"),
    424: ("ModelErrorException", 502, "server_error"),
    429: ("ThrottlingException", 429, "rate_limit_error"),
    500: ("InternalServerException", 500, "server_error"),
    503: ("ServiceUnavailableException", 503, "server_error"),
}


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("upstream", list(ERRORS))
def test_upstream_http_error(benv: BedrockEnv, bhttp: httpx.Client, upstream: int, streaming: bool) -> None:
    name, status, etype = ERRORS[upstream]
    benv.bedrock.fail_next(upstream)
    body = {"model": "brk-text", "input": "hi"}
    if streaming:
        resp, events = stream(bhttp, body)
        assert events == []
    else:
        resp = bhttp.post("/responses", json=body)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == etype
    assert "Bedrock" in error["message"] and name in error["message"]
    assert len(benv.bedrock.requests) == 1


def test_throttling_over_grpc(
    benv: BedrockEnv, bstub: responses_service_pb2_grpc.ResponsesServiceStub
) -> None:
    benv.bedrock.fail_next(429)
    request = codec.from_json(request_pb2.CreateResponseRequest(), {"model": "brk-text", "input": "hi"})
    with pytest.raises(grpc.RpcError) as info:
        bstub.CreateResponse(request, timeout=20)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "ThrottlingException" in (info.value.details() or "")


def test_text_over_grpc_stream(bstub: responses_service_pb2_grpc.ResponsesServiceStub) -> None:
    request = codec.from_json(request_pb2.CreateResponseRequest(), {"model": "brk-text", "input": "hi"})
    events = [codec.to_json(e) for e in bstub.StreamResponse(request, timeout=20)]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == HELLO and len(deltas) == 3
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == HELLO


def test_a_validation_error_from_bedrock_names_the_field(benv: BedrockEnv, bhttp: httpx.Client) -> None:
    """The fake validates as Bedrock does; a body it refuses comes back as Bedrock's 400."""
    benv.bedrock.fail_next(400, message="messages.0.content.0.text: text content blocks must be non-empty")
    resp = bhttp.post("/responses", json={"model": "brk-text", "input": "hi"})
    assert resp.status_code == 400
    assert "text content blocks must be non-empty" in resp.json()["error"]["message"]


@pytest.mark.parametrize(
    ("scenario", "needle"),
    [("throttled", "throttlingException"), ("stream_error", "modelStreamErrorException")],
)
def test_mid_stream_exception(
    benv: BedrockEnv, bhttp: httpx.Client, spec: Spec, scenario: str, needle: str
) -> None:
    resp, events = stream(bhttp, {"model": f"brk-{scenario}", "input": "hi"})
    assert resp.status_code == 200
    final = check_stream(events, spec)
    assert final["status"] == "failed" and needle in final["error"]["message"]
    assert any(e["type"] == "response.output_text.delta" for e in events)
    assert bhttp.get(f"/responses/{final['id']}").json()["status"] == "failed"


def test_mid_stream_disconnect(bhttp: httpx.Client, spec: Spec) -> None:
    resp, events = stream(bhttp, {"model": "brk-disconnect", "input": "Tell me a story."})
    assert resp.status_code == 200
    final = check_stream(events, spec)
    assert final["status"] == "failed" and final["error"]["code"] == "server_error"
    assert "closed the connection" in final["error"]["message"]
    assert any(e["type"].endswith(".delta") for e in events)
    stored = bhttp.get(f"/responses/{final['id']}").json()
    assert stored["status"] == "failed" and stored["error"]["message"] == final["error"]["message"]


def test_unary_disconnect_is_an_error_status(bhttp: httpx.Client) -> None:
    r = bhttp.post("/responses", json={"model": "brk-disconnect", "input": "Tell me a story."})
    assert r.status_code == 503, r.text
    assert "connection" in r.json()["error"]["message"]


def test_unknown_model_is_bedrocks_404(bhttp: httpx.Client) -> None:
    r = bhttp.post("/responses", json={"model": "brk-nonexistent", "input": "hi"})
    assert r.status_code == 404 and "ResourceNotFoundException" in r.json()["error"]["message"]


def test_conversation_is_a_400_naming_bedrock(benv: BedrockEnv, bhttp: httpx.Client) -> None:
    r = bhttp.post("/responses", json={"model": "brk-text", "input": "hi", "conversation": "conv_123"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "conversation"
    assert "Bedrock" in r.json()["error"]["message"] and benv.bedrock.requests == []


def test_fake_serves_unary_converse_too(benv: BedrockEnv) -> None:
    """The fake's Converse (unary) answer is the fold of its stream (checked so the fake stays honest)."""
    from tests.fakes.bedrock_upstream import fold
    from tests.fakes.transcripts import load_transcript

    folded = fold(load_transcript("bedrock", "tool_use")["stream"])
    assert folded["stopReason"] == "tool_use"
    uses = [b["toolUse"] for b in folded["output"]["message"]["content"] if "toolUse" in b]
    assert [u["input"] for u in uses] == [{"location": "Paris"}, {"timezone": "Europe/Paris"}]
