"""The OpenAI fake is faithful: the official SDK (strict validation) talks to it, and every transcript
object/event validates against OpenAI's published OpenAPI schemas (modulo two documented wire/spec gaps)."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.fakes.openai_upstream import (
    DEFAULT_API_KEY,
    TRANSCRIPT_SCENARIOS,
    load_errors,
    load_transcript,
    serve_openai,
)
from tests.spec import spec_path

SPEC = spec_path()
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
        "additionalProperties": False,
    },
    "strict": True,
}


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def fake():
    with serve_openai() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _reset(fake):
    fake.reset()


@pytest.fixture
def client(fake):
    with openai.OpenAI(
        api_key=DEFAULT_API_KEY, base_url=fake.api_base, max_retries=0, _strict_response_validation=True
    ) as client:
        yield client


# ---------------------------------------------------------------------------------------------- schemas
@pytest.fixture(scope="module")
def schema():
    spec = json.loads(SPEC.read_text())
    registry = Registry().with_resource(
        "urn:openai", Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    cache: dict[str, Draft202012Validator] = {}

    def validate(name: str, instance) -> None:
        if name not in cache:
            cache[name] = Draft202012Validator(
                {"$ref": f"urn:openai#/components/schemas/{name}"}, registry=registry
            )
        errors = sorted(cache[name].iter_errors(instance), key=lambda e: e.path)
        assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message[:200]}" for e in errors[:5])

    return validate


# Where OpenAI's wire differs from its own schemas, the transcripts follow the wire; these gaps are
# bridged here (and only these):
# * a response object's `user` and `usage` are null (schema: string / object) -- in every capture and in
#   the spec's own x-oaiMeta examples (checked in test_spec_examples_send_null_user_and_usage);
# * `error` events nest code/message/param under `error` (openai/openai-dotnet#881, Effect-TS/effect#7262);
# * `response.function_call_arguments.done` carries no `name` (captured streams; openai-python's type).
def spec_view(node):
    if isinstance(node, dict):
        drop = {"user", "usage"} if node.get("object") == "response" else set()
        return {k: spec_view(v) for k, v in node.items() if not (k in drop and v is None)}
    return [spec_view(v) for v in node] if isinstance(node, list) else node


def validate_response(schema, response: dict) -> None:
    schema("Response", spec_view(response))


def validate_event(schema, event: dict) -> None:
    event = spec_view(event)
    if event["type"] == "error":
        assert set(event) == {"type", "sequence_number", "error"}
        schema("Error", event["error"])
        flat = {k: v for k, v in event["error"].items() if k != "type"}
        event = {"type": "error", "sequence_number": event["sequence_number"], **flat}
    elif event["type"] == "response.function_call_arguments.done":
        assert "name" not in event
        event = {**event, "name": "get_weather"}
    schema("ResponseStreamEvent", event)


@pytest.mark.parametrize("name", TRANSCRIPT_SCENARIOS)
def test_transcript_matches_spec(schema, name):
    transcript = load_transcript(name)
    if transcript.get("response"):
        validate_response(schema, transcript["response"])
    events = transcript["stream"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        validate_event(schema, event)
    terminal = {"response.completed", "response.incomplete", "response.failed"}
    assert (events[-1]["type"] in terminal) != bool(transcript.get("disconnect"))
    if transcript.get("response"):  # the stream's terminal response is the non-streaming response
        assert {**events[-1]["response"], "billing": None} == {**transcript["response"], "billing": None}


def test_spec_examples_send_null_user_and_usage():
    examples = json.loads(SPEC.read_text())["paths"]["/responses"]["post"]["x-oaiMeta"]["examples"]
    streaming = next(e["response"] for e in examples if e["title"] == "Streaming")
    assert '"usage":null,"user":null' in streaming


def test_error_bodies_match_spec(schema):
    for name, err in load_errors().items():
        schema("Error", err["body"]["error"])
        assert 400 <= err["status"] < 600, name


@pytest.mark.parametrize("name", [n for n in TRANSCRIPT_SCENARIOS if n not in ("disconnect",)])
def test_served_objects_match_spec(fake, schema, name):
    fake.scenario = name
    body = {
        "model": "gpt-5",
        "input": "hi",
        "include": ["reasoning.encrypted_content"],
        "tools": [WEATHER_TOOL],
        "reasoning": {"effort": "low", "summary": "auto"},
        "metadata": {"k": "v"},
    }
    headers = {"authorization": f"Bearer {DEFAULT_API_KEY}"}
    with httpx.Client(base_url=fake.api_base, headers=headers) as http:
        r = http.post("/responses", json=body)
        if name == "error_event":
            assert r.status_code == 500
            schema("Error", r.json()["error"])
        else:
            validate_response(schema, r.json())
            rid = r.json()["id"]
            schema("ResponseItemList", http.get(f"/responses/{rid}/input_items").json())
        with http.stream("POST", "/responses", json={**body, "stream": True}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            frames = r.read().decode().split("\n\n")
    assert frames[-1] == ""  # every frame is "event: <type>\ndata: <json>\n\n"; no [DONE] sentinel
    for frame in frames[:-1]:
        event_line, data_line = frame.split("\n")
        event = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {event['type']}"
        validate_event(schema, event)


def test_other_endpoints_match_spec(fake, client, schema):
    count = client.responses.input_tokens.count(model="gpt-4.1", input="one two three", instructions="four")
    assert (count.object, count.input_tokens) == ("response.input_tokens", 4)
    # Not strict: openai-python types CompactedResponse.output as output items only, but the API (and the
    # spec's example) returns the user messages followed by the compaction item.
    with openai.OpenAI(api_key=DEFAULT_API_KEY, base_url=fake.api_base, max_retries=0) as lenient:
        raw = lenient.responses.with_raw_response.compact(
            model="gpt-4.1", input=[{"role": "user", "content": "hello there"}]
        )
    compacted = raw.http_response.json()
    assert compacted["object"] == "response.compaction" and compacted["output"][-1]["type"] == "compaction"
    assert compacted["output"][0]["content"] == [{"type": "input_text", "text": "hello there"}]
    schema("CompactResource", compacted)


def test_obfuscation_on_deltas_unless_disabled(fake):
    headers = {"authorization": f"Bearer {DEFAULT_API_KEY}"}
    body = {"model": "gpt-4.1", "input": "hi", "stream": True}
    for options, expected in ((None, True), ({"include_obfuscation": False}, False)):
        fake.scenario = "function_calls"
        payload = {**body, "stream_options": options} if options else body
        text = httpx.post(f"{fake.api_base}/responses", json=payload, headers=headers).text
        events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
        deltas = [e for e in events if e["type"].endswith(".delta")]
        assert deltas and all(("obfuscation" in e) is expected for e in deltas)


# ---------------------------------------------------------------------------------------------- SDK: create
def test_create_text(fake, client):
    resp = client.responses.create(
        model="gpt-4.1",
        input="Say hello",
        instructions="Be brief.",
        temperature=0.2,
        metadata={"trace": "t1"},
    )
    assert resp.output_text == "Hello! How can I help you today?"
    assert resp.status == "completed" and resp.id.startswith("resp_") and resp.output[0].id.startswith("msg_")
    assert resp.model == "gpt-4.1-2025-04-14"  # alias resolved to the snapshot, as OpenAI does
    assert (resp.instructions, resp.temperature, resp.metadata) == ("Be brief.", 0.2, {"trace": "t1"})
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens
    sent = fake.create_requests[-1]
    assert sent.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
    assert sent.body == {
        "model": "gpt-4.1",
        "input": "Say hello",
        "instructions": "Be brief.",
        "temperature": 0.2,
        "metadata": {"trace": "t1"},
    }
    assert sent.scenario == "text"


def test_stream_text(client):
    with client.responses.stream(model="gpt-4.1", input="Say hello") as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 3 and "".join(deltas) == final.output_text == "Hello! How can I help you today?"
    assert final.id == events[0].response.id


def test_function_calls(fake, client):
    fake.scenario = "function_calls"
    resp = client.responses.create(model="gpt-4.1", input="Weather in Paris and Tokyo?", tools=[WEATHER_TOOL])
    calls = [item for item in resp.output if item.type == "function_call"]
    assert [json.loads(c.arguments)["location"] for c in calls] == ["Paris, France", "Tokyo, Japan"]
    assert all(
        c.name == "get_weather" and c.call_id.startswith("call_") and c.id.startswith("fc_") for c in calls
    )
    assert resp.tools[0].name == "get_weather"
    with client.responses.stream(model="gpt-4.1", input="Weather?", tools=[WEATHER_TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    done = [e.arguments for e in events if e.type == "response.function_call_arguments.done"]
    assert done == [c.arguments for c in final.output] and len(done) == 2


def test_reasoning_encrypted_content_follows_include(fake, client):
    fake.scenario = "reasoning"
    with client.responses.stream(
        model="gpt-5",
        input="How many?",
        reasoning={"effort": "high", "summary": "auto"},
        include=["reasoning.encrypted_content"],
        store=False,
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    rs = final.output[0]
    assert rs.type == "reasoning" and rs.encrypted_content.startswith("gAAAAAB") and len(rs.summary) == 2
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary == "".join(part.text for part in rs.summary)
    assert final.reasoning.effort == "high" and final.store is False
    plain = client.responses.create(model="gpt-5", input="How many?")
    assert (
        plain.output[0].encrypted_content is None and plain.output_text == "There are **12** such integers."
    )


def test_refusal_and_incomplete(fake, client):
    fake.enqueue("refusal", "incomplete")
    with client.responses.stream(model="gpt-4o", input="do something bad") as stream:
        refusal_deltas = [e.delta for e in stream if e.type == "response.refusal.delta"]
        final = stream.get_final_response()
    assert final.output[0].content[0].type == "refusal"
    assert (
        final.output[0].content[0].refusal
        == "".join(refusal_deltas)
        == "I'm sorry, I can't assist with that."
    )
    resp = client.responses.create(model="gpt-4o-mini", input="Write an essay", max_output_tokens=16)
    assert (resp.status, resp.incomplete_details.reason, resp.max_output_tokens) == (
        "incomplete",
        "max_output_tokens",
        16,
    )
    assert resp.output[0].status == "incomplete" and resp.completed_at is None


# ---------------------------------------------------------------------------------------------- SDK: failures
def test_error_event_mid_stream(fake, client):
    fake.scenario = "error_event"
    with (
        pytest.raises(openai.APIError, match="An error occurred while processing your request") as info,
        client.responses.stream(model="gpt-4.1", input="hi") as stream,
    ):
        for _ in stream:
            pass
    assert "Please include the request ID req_" in str(info.value)
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="gpt-4.1", input="hi")


def test_disconnect_mid_stream(fake, client):
    fake.scenario = "disconnect"
    seen = []
    with (
        pytest.raises(openai.APIConnectionError),
        client.responses.stream(model="gpt-4.1", input="hi") as stream,
    ):
        for event in stream:
            seen.append(event.type)
    assert seen[:2] == ["response.created", "response.in_progress"] and "response.completed" not in seen
    with pytest.raises(openai.APIConnectionError):
        client.responses.create(model="gpt-4.1", input="hi")


def test_disconnect_is_a_protocol_error_on_the_wire(fake):
    fake.scenario = "disconnect"
    headers = {"authorization": f"Bearer {DEFAULT_API_KEY}"}
    body = {"model": "gpt-4.1", "input": "hi", "stream": True}
    with (
        httpx.Client(headers=headers) as http,
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("POST", f"{fake.api_base}/responses", json=body) as r,
    ):
        for _ in r.iter_bytes():
            pass


@pytest.mark.parametrize(
    ("scenario", "exc"),
    [
        ("error-400", openai.BadRequestError),
        ("error-401", openai.AuthenticationError),
        ("error-404", openai.NotFoundError),
        ("error-429", openai.RateLimitError),
        ("error-429-quota", openai.RateLimitError),
        ("error-500", openai.InternalServerError),
        ("error-503", openai.InternalServerError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_error_scenarios(fake, client, scenario, exc, stream):
    fake.enqueue(scenario)
    with pytest.raises(exc) as info:
        client.responses.create(model="gpt-4.1", input="hi", stream=stream)
    assert info.value.body == load_errors()[scenario]["body"]["error"]
    if scenario == "error-429":
        assert info.value.response.headers["retry-after"] == "1"
    assert client.responses.create(model="gpt-4.1", input="hi").status == "completed"  # queue consumed


def test_model_name_selects_scenario_and_fail_next(fake, client):
    resp = client.responses.create(model="scenario-function_calls", input="hi")
    assert resp.output[0].type == "function_call" and resp.model == "scenario-function_calls"
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="scenario-nope", input="hi")
    assert info.value.code == "model_not_found"
    fake.fail_next(503, message="Slow Down", retry_after=2, times=2)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError, match="Slow Down") as info:
            client.responses.create(model="scenario-text", input="hi")
    assert info.value.response.headers["retry-after"] == "2" and info.value.type == "server_error"
    assert client.responses.create(model="scenario-text", input="hi").output_text.startswith("Hello")
    assert [r.scenario for r in fake.create_requests] == [
        "function_calls",
        "nope",
        "error-503",
        "error-503",
        "text",
    ]


def test_retry_after_429(fake):
    fake.enqueue("error-429", "text")
    with openai.OpenAI(api_key=DEFAULT_API_KEY, base_url=fake.api_base, max_retries=1) as retrying:
        assert retrying.responses.create(model="gpt-4.1", input="hi").output_text.startswith("Hello")
    assert [r.scenario for r in fake.create_requests] == ["error-429", "text"]


def test_auth_and_validation(fake, client):
    with (
        openai.OpenAI(api_key="sk-invalid-test-key-000", base_url=fake.api_base, max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError) as info,
    ):
        bad.responses.create(model="gpt-4.1", input="hi")
    assert info.value.code == "invalid_api_key" and "sk-inval" in info.value.message
    cases = [
        ({"extra_body": {"frobnicate": 1}}, "frobnicate", "unknown_parameter"),
        ({"extra_body": {"temperature": "hot"}}, "temperature", "invalid_type"),
        ({"extra_body": {"input": {"text": "x"}}}, "input", "invalid_type"),
        ({"temperature": 3}, "temperature", "decimal_above_max_value"),
        ({"previous_response_id": "resp_missing"}, "previous_response_id", "previous_response_not_found"),
    ]
    for kwargs, param, code in cases:
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="gpt-4.1", input="hi", **kwargs)
        assert (info.value.param, info.value.code) == (param, code), kwargs
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="gpt-unknown", input="hi")
    assert info.value.code == "model_not_found"
    r = httpx.post(
        f"{fake.api_base}/responses",
        json={"input": "hi"},
        headers={"authorization": f"Bearer {DEFAULT_API_KEY}"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "missing_required_parameter"
    assert fake.create_requests[-1].body == {"input": "hi"}


# ---------------------------------------------------------------------------------------------- SDK: stored
def test_retrieve_delete_input_items(fake, client):
    first = client.responses.create(model="gpt-4.1", input=[{"role": "user", "content": "Say hello"}])
    assert client.responses.retrieve(first.id) == first
    second = client.responses.create(model="gpt-4.1", input="again", previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.id != first.id
    items = client.responses.input_items.list(second.id)
    assert [(i.type, i.role, i.content[0].text) for i in items.data] == [("message", "user", "again")]
    assert client.responses.input_items.list(first.id, order="asc").data[0].content[0].type == "input_text"
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError, match="not found"):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list("resp_unknown")
    unstored = client.responses.create(model="gpt-4.1", input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)


def test_cancel(fake, client):
    sync = client.responses.create(model="gpt-4.1", input="hi")
    with pytest.raises(openai.BadRequestError, match="Cannot cancel a synchronous response"):
        client.responses.cancel(sync.id)
    queued = client.responses.create(model="gpt-4.1", input="hi", background=True)
    assert (queued.status, queued.background) == ("queued", True)
    cancelled = client.responses.cancel(queued.id)
    assert cancelled.status == "cancelled" and client.responses.retrieve(queued.id).status == "cancelled"
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel("resp_unknown")


def test_models(client):
    ids = [m.id for m in client.models.list()]
    assert "gpt-4.1" in ids and client.models.retrieve("gpt-4o").id == "gpt-4o"


# ---------------------------------------------------------------------------------------------- streaming timing
def test_events_are_flushed_one_by_one(fake):
    fake.event_delay = 0.05
    n_events = len(load_transcript("text")["stream"])
    headers = {"authorization": f"Bearer {DEFAULT_API_KEY}"}
    start = time.monotonic()
    with httpx.stream(
        "POST",
        f"{fake.api_base}/responses",
        headers=headers,
        json={"model": "gpt-4.1", "input": "hi", "stream": True},
    ) as r:
        chunks = r.iter_text()
        first = next(chunks)
        first_at = time.monotonic() - start
        rest = "".join(chunks)
    total = time.monotonic() - start
    assert first.startswith("event: response.created\n") and first.count("\n\n") == 1
    # Unbuffered: after the first frame arrives the server still has (n-1) delays to sleep through.
    assert total - first_at > 0.05 * (n_events - 1) * 0.8
    assert rest.count("\n\n") == n_events - 1
