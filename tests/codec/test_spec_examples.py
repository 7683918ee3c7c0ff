"""Every example in the OpenAI spec survives the codec: JSON → proto → JSON (and through binary protobuf).

Examples are `x-oaiMeta.examples` of each path (request bodies from the curl `-d '...'`, JSON responses, SSE
streams) plus the `x-oaiMeta.example` of the event / list schemas. Exact equality (key order aside) is required
except for the documented normalizations listed in `EXPECTED`, and re-encoded Responses / events must validate
against the spec's `Response` / `ResponseStreamEvent` schemas.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf.message import Message

from responses_gateway import codec
from responses_gateway.v1 import events_pb2, request_pb2, response_pb2
from responses_gateway.v1 import responses_service_pb2 as rs
from tests.codec._normalize import Kind, Normalization, assert_same_modulo
from tests.codec._schemas import spec
from tests.codec.conftest import Validate

REQUEST_TYPES: dict[tuple[str, str], type[Message]] = {
    ("post", "/responses"): request_pb2.CreateResponseRequest,
    ("post", "/responses/input_tokens"): rs.CountInputTokensRequest,
    ("post", "/responses/compact"): rs.CompactResponseRequest,
}
RESPONSE_TYPES: dict[tuple[str, str], type[Message]] = {
    ("post", "/responses"): response_pb2.Response,
    ("get", "/responses/{response_id}"): response_pb2.Response,
    ("delete", "/responses/{response_id}"): rs.DeleteResponseResponse,
    ("post", "/responses/{response_id}/cancel"): response_pb2.Response,
    ("get", "/responses/{response_id}/input_items"): rs.ListInputItemsResponse,
    ("post", "/responses/input_tokens"): rs.CountInputTokensResponse,
    ("post", "/responses/compact"): rs.CompactResponseResponse,
}

# Every normalization the spec's examples need, by kind: (JSON key, value). Anything else fails.
EXPECTED: dict[Kind, set[tuple[str, str]]] = {
    # Optional (not required by the spec) fields the examples send as null; dropped, as the proto field has no
    # `nullable` (several are not even nullable in the spec: `user` is a plain string there).
    Kind.DROPPED_NULL: {
        (key, "None")
        for key in (
            "user",
            "city",  # tools[].user_location.*
            "region",
            "timezone",
            "filters",  # file_search tool
            "results",  # file_search_call
        )
    },
    # Fields the spec requires but an example leaves out, emitted with their default; and the keys a
    # Response always has (both specs together), `null` where unset.
    Kind.ADDED_DEFAULT: {
        ("sequence_number", "0"),  # the streaming example's events
        ("logprobs", "[]"),  # output_text parts, output_text.delta / .done events
        *(
            (key, "None")
            for key in ("completed_at", "max_tool_calls", "prompt_cache_key", "safety_identifier")
        ),
        ("presence_penalty", "0"),
        ("frequency_penalty", "0"),
    },
    # The keys a Response always has, with OpenAI's documented defaults (json_default in the contract).
    Kind.ADDED_JSON_DEFAULT: {
        ("background", "False"),
        ("input_tokens_details", "{'cached_tokens': 0, 'cache_write_tokens': 0}"),
        ("parallel_tool_calls", "True"),
        ("reasoning", "{'effort': None, 'summary': None}"),
        ("service_tier", "'auto'"),
        ("top_logprobs", "0"),
    },
    # An in-progress example's `"usage": null`: OpenAI's spec has no null usage, Open Responses requires it.
    Kind.NULL_TO_JSON_DEFAULT: {
        (
            "usage",
            "{'input_tokens': 0, 'input_tokens_details': {'cached_tokens': 0, 'cache_write_tokens': 0}, "
            "'output_tokens': 0, 'output_tokens_details': {'reasoning_tokens': 0}, 'total_tokens': 0}",
        )
    },
    # `{"role": "user", "content": ...}` input messages come back as `{"type": "message", ...}`.
    Kind.ADDED_TAG: {("type", "'message'")},
}
TOLERATED = frozenset(EXPECTED)

# Spec violations of the examples themselves that survive the round trip (the codec cannot invent the data).
# Keyed by the JSON path of the validation error; the same error must be reported for the original example.
EXAMPLE_DEFECTS: dict[tuple[str | int, ...], str] = {
    ("output", 0): "`web_search_call` without its required `action` (Web search examples)",
    ("usage",): "`usage` without its required `input_tokens_details` (Functions examples)",
    ("response", "usage"): "the same, in the Streaming example's response.completed event",
    ("response", "output", 0): "an output message without its required `status` (ResponseCompletedEvent)",
    (
        "response",
        "incomplete_details",
    ): "reason `max_tokens`, not in the enum; kept (ResponseIncompleteEvent)",
}

# Component examples that are not valid instances of their schema; what the codec does with them.
BROKEN_COMPONENT_EXAMPLES: dict[str, str] = {
    "ResponseFunctionCallArgumentsDeltaEvent": "not JSON (a comma is missing)",
    "ResponseQueuedEvent": "response.created_at",  # an ISO date string where the spec says a number
}


@dataclass(frozen=True)
class Example:
    method: str
    path: str  # without `?beta=true`
    raw_path: str
    title: str
    curl: str
    response: str

    @property
    def id(self) -> str:
        return f"{self.method.upper()} {self.raw_path} {self.title}".strip()

    @property
    def body(self) -> Any:
        """The JSON body of the curl request, or None when it sends none (GET, DELETE, cancel)."""
        m = re.search(r"-d '(.*)'", self.curl, re.S)
        return json.loads(m.group(1)) if m else None

    @property
    def is_stream(self) -> bool:
        return self.response.lstrip().startswith("event:")


def _examples() -> list[Example]:
    out = []
    for raw_path, ops in spec()["paths"].items():
        for method, op in ops.items():
            examples = op.get("x-oaiMeta", {}).get("examples", [])
            if isinstance(examples, dict):
                examples = [examples]
            for ex in examples:
                out.append(
                    Example(
                        method,
                        raw_path.split("?")[0],
                        raw_path,
                        ex.get("title", ""),
                        ex["request"]["curl"],
                        ex["response"],
                    )
                )
    return out


EXAMPLES = _examples()
WITH_BODY = [e for e in EXAMPLES if e.body is not None]
JSON_RESPONSES = [e for e in EXAMPLES if not e.is_stream]
STREAMS = [e for e in EXAMPLES if e.is_stream]


def _ids(examples: list[Example]) -> list[str]:
    return [e.id for e in examples]


def sse_events(text: str) -> list[tuple[str, Any]]:
    """(event name, data JSON) of each event of an SSE stream."""
    events = []
    for block in re.split(r"\n\s*\n", text.strip()):
        name, data = "", []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


def round_trip(message_type: type[Message], data: Any) -> Any:
    """JSON → proto → JSON, checking on the way that a trip through binary protobuf changes nothing."""
    msg = codec.from_json(message_type(), data)
    out = codec.to_json(msg)
    again = message_type.FromString(msg.SerializeToString())
    assert codec.to_json(again) == out, "binary protobuf round trip changed the message"
    return out


def check_normalizations(norms: list[Normalization]) -> None:
    unexpected = [n for n in norms if (n.key, n.value) not in EXPECTED[n.kind]]
    assert not unexpected, f"normalizations not documented in EXPECTED: {unexpected}"


def _event_schemas() -> dict[str, str]:
    """Event `type` → the name of its schema (a branch of `ResponseStreamEvent`)."""
    schemas = spec()["components"]["schemas"]
    out = {}
    for branch in schemas["ResponseStreamEvent"]["anyOf"]:
        name = branch["$ref"].rsplit("/", 1)[-1]
        for tag in schemas[name]["properties"]["type"]["enum"]:
            out[tag] = name
    return out


EVENT_SCHEMAS = _event_schemas()


def check_valid_event(spec_errors: Validate, original: Any, encoded: Any) -> None:
    """Valid as a `ResponseStreamEvent`; when not, report against the event's own schema (precise paths)."""
    if spec_errors("ResponseStreamEvent", encoded):
        check_valid(spec_errors, EVENT_SCHEMAS[encoded["type"]], original, encoded)


def check_valid(spec_errors: Validate, schema: str, original: Any, encoded: Any) -> None:
    inherited = {(tuple(e.absolute_path), e.validator) for e in spec_errors(schema, original)}
    for err in spec_errors(schema, encoded):
        path = tuple(err.absolute_path)
        assert path in EXAMPLE_DEFECTS and (path, err.validator) in inherited, (
            f"re-encoded {schema} is invalid at {list(path)}: {err.message[:300]}"
        )


def test_the_spec_has_examples() -> None:
    assert len(EXAMPLES) >= 14 and STREAMS and len(WITH_BODY) >= 10
    for e in EXAMPLES:
        if e.method == "post" and e.path in ("/responses", "/responses/input_tokens", "/responses/compact"):
            assert e.body is not None, f"{e.id}: no JSON body found in its curl"


@pytest.mark.parametrize("example", WITH_BODY, ids=_ids(WITH_BODY))
def test_request_body_round_trips(example: Example) -> None:
    body = example.body
    out = round_trip(REQUEST_TYPES[example.method, example.path], body)
    check_normalizations(assert_same_modulo(body, out, TOLERATED))


@pytest.mark.parametrize("example", JSON_RESPONSES, ids=_ids(JSON_RESPONSES))
def test_response_round_trips(example: Example, spec_errors: Validate) -> None:
    message_type = RESPONSE_TYPES[example.method, example.path]
    original = json.loads(example.response)
    out = round_trip(message_type, original)
    check_normalizations(assert_same_modulo(original, out, TOLERATED))
    if message_type is response_pb2.Response:
        check_valid(spec_errors, "Response", original, out)


@pytest.mark.parametrize("example", STREAMS, ids=_ids(STREAMS))
def test_stream_events_round_trip(example: Example, spec_errors: Validate) -> None:
    events = sse_events(example.response)
    assert len(events) >= 5
    for name, original in events:
        assert name == original["type"]
        out = round_trip(events_pb2.ResponseStreamEvent, original)
        check_normalizations(assert_same_modulo(original, out, TOLERATED))
        check_valid_event(spec_errors, original, out)


def test_expected_normalizations_are_all_needed() -> None:
    """EXPECTED lists exactly what the examples need: nothing stale, nothing missing."""
    seen: set[tuple[Kind, str, str]] = set()

    def collect(message_type: type[Message], original: Any) -> None:
        out = codec.to_json(codec.from_json(message_type(), original))
        seen.update((n.kind, n.key, n.value) for n in assert_same_modulo(original, out, TOLERATED))

    for e in WITH_BODY:
        collect(REQUEST_TYPES[e.method, e.path], e.body)
    for e in JSON_RESPONSES:
        collect(RESPONSE_TYPES[e.method, e.path], json.loads(e.response))
    for e in STREAMS:
        for _, event in sse_events(e.response):
            collect(events_pb2.ResponseStreamEvent, event)
    for name, _, example in COMPONENT_EXAMPLES:
        if name not in BROKEN_COMPONENT_EXAMPLES:
            collect(_component_type(name), json.loads(example))
    expected = {(kind, key, value) for kind, pairs in EXPECTED.items() for key, value in pairs}
    assert seen == expected


# --- the example of each event / list schema --------------------------------------------------------------


def _component_examples() -> list[tuple[str, str, str]]:
    out = []
    for name, sch in spec()["components"]["schemas"].items():
        meta = sch.get("x-oaiMeta") or {}
        if "example" in meta and not name.startswith("Beta"):  # Beta* duplicate these
            out.append((name, meta.get("name", name), meta["example"]))
    return out


COMPONENT_EXAMPLES = _component_examples()


def _component_type(name: str) -> type[Message]:
    return rs.ListInputItemsResponse if name == "ResponseItemList" else events_pb2.ResponseStreamEvent


@pytest.mark.parametrize(
    ("name", "title", "example"), COMPONENT_EXAMPLES, ids=[c[0] for c in COMPONENT_EXAMPLES]
)
def test_component_example_round_trips(name: str, title: str, example: str, spec_errors: Validate) -> None:
    message_type = _component_type(name)
    broken = BROKEN_COMPONENT_EXAMPLES.get(name)
    try:
        original = json.loads(example)
    except json.JSONDecodeError:
        assert broken is not None, f"{name}: its example is not JSON"
        return
    if broken is not None:
        with pytest.raises(codec.CodecError) as err:
            codec.from_json(message_type(), original)
        assert err.value.param == broken
        return
    out = round_trip(message_type, original)
    check_normalizations(assert_same_modulo(original, out, TOLERATED))
    if message_type is events_pb2.ResponseStreamEvent:
        check_valid_event(spec_errors, original, out)


def test_component_examples_cover_the_events() -> None:
    assert len(COMPONENT_EXAMPLES) >= 50
