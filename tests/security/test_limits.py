"""The pieces the transports rely on, without a server: the nesting limit (whatever the codec accepts
parses back, even inside an event), echo(), and the error table's choices for the security cases."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from responses_gateway import codec
from responses_gateway.codec.values import MAX_DEPTH, PROTOBUF_MAX_DEPTH
from responses_gateway.domain.shell import response_shell
from responses_gateway.errors import (
    ERROR_TABLE,
    MAX_MESSAGE_BYTES,
    GatewayError,
    Reason,
    as_gateway_error,
    echo,
)
from responses_gateway.v1 import events_pb2, items_pb2, request_pb2
from tests.security.conftest import FUZZ_SCALE

# Random JSON, deep more often than not (lists and objects nest freely).
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner, max_size=2),
    max_leaves=80,
)


def chain(depth: int, kind: str) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


PLACES = {  # where open-ended JSON sits in a request
    "tool parameters": lambda v: {
        "model": "m",
        "tools": [{"type": "function", "name": "f", "parameters": {"p": v}}],
    },
    "unknown top-level field": lambda v: {"model": "m", "x_extra": v},
    "unknown item field": lambda v: {
        "model": "m",
        "input": [{"role": "user", "content": "hi", "x_extra": v}],
    },
    "metadata-like unknown arm": lambda v: {"model": "m", "input": [v]},
}


def reparses(request: request_pb2.CreateResponseRequest) -> None:
    """Everything a stored request becomes still parses: itself, its items, and its Response shell
    inside a `response.completed` event (the deepest wrapping the gateway gives it)."""
    request_pb2.CreateResponseRequest.FromString(request.SerializeToString())
    if request.input.HasField("items"):
        for item in request.input.items.items:
            items_pb2.Item.FromString(item.SerializeToString())
    event = events_pb2.ResponseStreamEvent()
    event.response_completed.response.CopyFrom(response_shell(request, "m"))
    events_pb2.ResponseStreamEvent.FromString(event.SerializeToString())


@pytest.mark.parametrize("place", list(PLACES))
@pytest.mark.parametrize("kind", ["list", "object"])
def test_the_limit_is_where_protobuf_needs_it(place: str, kind: str) -> None:
    """Walking the depth up: accepted up to a point, refused (400, naming a param) after, never in
    between; all accepted reparse, and the parsed-message walk (gRPC) agrees with the JSON codec."""
    refused_at = None
    for depth in range(1, 80):
        body = PLACES[place](chain(depth, kind))
        try:
            request = codec.from_json(request_pb2.CreateResponseRequest(), body)
        except codec.CodecError as e:
            assert "nested too deeply" in e.reason and e.param, e
            refused_at = refused_at or depth
            continue
        assert refused_at is None, f"accepted at {depth} after refusing at {refused_at}"
        reparses(request)
        assert codec.too_deep(request) is None
    assert refused_at is not None and refused_at >= 20, refused_at


def test_the_parsed_walk_refuses_what_the_codec_refuses() -> None:
    value = request_pb2.CreateResponseRequest(model="m")
    cursor = value.tools.add().function.parameters.fields["p"]
    for _ in range(40):  # built directly: no codec check on the way
        cursor = cursor.struct_value.fields["k"]
    cursor.string_value = "x"
    assert codec.too_deep(value) == "tools"
    assert codec.too_deep(value, size=10) is None  # ten bytes cannot hold 40 levels: not walked
    with pytest.raises(codec.CodecError):
        codec.from_json(request_pb2.CreateResponseRequest(), codec.to_json(value))


@seed(20261201)
@settings(
    max_examples=150 * FUZZ_SCALE, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
@given(value=JSON, place=st.sampled_from(list(PLACES)))
def test_random_json_is_refused_or_reparses(value: Any, place: str) -> None:
    try:
        request = codec.from_json(request_pb2.CreateResponseRequest(), PLACES[place](value))
    except codec.CodecError as e:
        assert e.reason, e
        return
    reparses(request)
    assert codec.too_deep(request) is None


def test_headroom() -> None:
    # The wrapping the gateway adds (an event: two levels) fits in what MAX_DEPTH leaves over.
    assert PROTOBUF_MAX_DEPTH - MAX_DEPTH >= 2 + 1


# ------------------------------------------------------------------------------------------ echo
def test_echo_cuts_and_escapes() -> None:
    assert echo("resp_abc") == "resp_abc"
    long = echo("a" * 100_000)
    assert len(long) < 100 and long.endswith("(100000 characters)")
    assert echo("a\x00b\x1b[2J\n") == "a\\x00b\\x1b[2J\\n"
    assert echo(5) == "5"


def test_messages_and_params_are_capped() -> None:
    error = GatewayError(Reason.INVALID_REQUEST, "x" * 100_000, param="p" * 10_000)
    assert len(error.message) <= MAX_MESSAGE_BYTES + 40
    wide = GatewayError(Reason.INVALID_REQUEST, "\U0001f600" * 100_000, metadata={"k": "v" * 10_000})
    assert len(wide.message.encode()) <= MAX_MESSAGE_BYTES + 40  # bytes: what the trailer carries
    assert all(len(v) < 300 for v in wide.error_info_metadata().values())
    assert error.param is not None and len(error.param) < 300
    assert len(str(error.openai_body())) < 3000


# ------------------------------------------------------------------------------------------ the table
def test_upstream_faults_are_a_bad_gateway_unless_relayed() -> None:
    unreadable = GatewayError(Reason.UPSTREAM_ERROR, "OpenAI sent a body the gateway cannot read")
    assert unreadable.http_status == 502 and unreadable.code == "bad_gateway"
    assert unreadable.openai_body()["error"]["type"] == "server_error"
    relayed = GatewayError(Reason.UPSTREAM_ERROR, "OpenAI returned 500", upstream_status=500)
    assert relayed.http_status == 500
    odd = GatewayError(Reason.UPSTREAM_ERROR, "OpenAI returned 418", upstream_status=418)
    assert odd.http_status == 502


def test_codec_errors_from_clients_stay_400() -> None:
    error = as_gateway_error(codec.CodecError("Invalid type", ["input"]))
    assert error.reason == Reason.INVALID_REQUEST and error.http_status == 400 and error.param == "input"


def test_too_large_reads_the_same_on_both_paths() -> None:
    # gRPC core's own answer to a message over max_receive_message_length is RESOURCE_EXHAUSTED.
    assert ERROR_TABLE[Reason.REQUEST_TOO_LARGE].grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert ERROR_TABLE[Reason.REQUEST_TOO_LARGE].http_status == 413


def test_no_client_reason_is_a_5xx() -> None:
    client = [
        Reason.INVALID_REQUEST,
        Reason.INVALID_JSON,
        Reason.UNSUPPORTED_PARAMETER,
        Reason.NOT_IMPLEMENTED,
    ]
    client += [
        Reason.REQUEST_TOO_LARGE,
        Reason.MODEL_NOT_FOUND,
        Reason.RESPONSE_NOT_FOUND,
        Reason.NOT_CANCELLABLE,
    ]
    for reason in client:
        mapping = ERROR_TABLE[reason]
        assert 400 <= mapping.http_status < 500, reason
        assert mapping.grpc_code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), reason
