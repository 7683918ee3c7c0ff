"""Every gRPC method with malformed bytes (a raw channel, identity serializers) and with extreme but
well-formed messages: a client's input earns a client code with an ErrorInfo, never UNKNOWN / INTERNAL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from responses_gateway import codec
from responses_gateway.v1 import models_pb2, request_pb2, response_pb2
from responses_gateway.v1 import responses_service_pb2 as rs
from tests.security.conftest import (
    BODY_LIMIT,
    FUZZ_SCALE,
    GRPC_AUTH,
    MASTER_KEY,
    MODELS,
    grpc_error_info,
    grpc_problem,
)

SERVICE = "/responses_gateway.v1.ResponsesService/"
# method -> (streams its reply, a valid request to mutate)
METHODS: dict[str, tuple[bool, Message]] = {
    SERVICE + "CreateResponse": (False, request_pb2.CreateResponseRequest(model="gpt-4.1")),
    SERVICE + "StreamResponse": (True, request_pb2.CreateResponseRequest(model="claude-sonnet-4-5")),
    SERVICE + "GetResponse": (False, rs.GetResponseRequest(response_id="resp_abc")),
    SERVICE + "StreamGetResponse": (True, rs.GetResponseRequest(response_id="resp_abc", stream=True)),
    SERVICE + "DeleteResponse": (False, rs.DeleteResponseRequest(response_id="resp_abc")),
    SERVICE + "CancelResponse": (False, rs.CancelResponseRequest(response_id="resp_abc")),
    SERVICE + "ListInputItems": (False, rs.ListInputItemsRequest(response_id="resp_abc", limit=5)),
    SERVICE + "CompactResponse": (False, rs.CompactResponseRequest(model="gpt-4.1")),
    SERVICE + "CountInputTokens": (False, rs.CountInputTokensRequest(model="chat-model")),
    "/responses_gateway.v1.ModelsService/ListModels": (False, models_pb2.ListModelsRequest()),
}
for _, (_, _valid) in METHODS.items():
    if isinstance(_valid, request_pb2.CreateResponseRequest | rs.CountInputTokensRequest):
        _valid.input.text = "hi"


def call_raw(channel: grpc.Channel, method: str, payload: bytes, metadata: Any = GRPC_AUTH) -> None:
    """One call with `payload` as the request bytes; raises the grpc.RpcError it ends with, if any."""
    streams = METHODS[method][0] if method in METHODS else False
    if streams:
        for _ in channel.unary_stream(method)(payload, timeout=30, metadata=metadata):
            pass
    else:
        channel.unary_unary(method)(payload, timeout=30, metadata=metadata)


def verdict(run: Callable[[], None], *, core_may_answer: bool = False) -> grpc.RpcError | None:
    try:
        run()
    except grpc.RpcError as e:
        problem = grpc_problem(e, core_may_answer=core_may_answer)
        assert problem is None, problem
        return e
    return None


# ------------------------------------------------------------------------------------------ random bytes
def _mutate(raw: bytes, data: st.DataObject) -> bytes:
    """A valid message with a few bytes flipped, cut or appended: nearer the parser's edges than noise."""
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "append", "varint"]))
        if op == "flip" and out:
            i = data.draw(st.integers(0, len(out) - 1))
            out[i] = data.draw(st.integers(0, 255))
        elif op == "cut" and out:
            del out[data.draw(st.integers(0, len(out) - 1)) :]
        elif op == "append":
            out += data.draw(st.binary(min_size=1, max_size=16))
        else:  # a field tag then an overlong / huge length
            out += bytes([data.draw(st.integers(0, 255))]) + b"\xff" * data.draw(st.integers(1, 10))
    return bytes(out)


@pytest.mark.parametrize("method", list(METHODS))
def test_malformed_bytes(channel: grpc.Channel, method: str) -> None:
    valid = METHODS[method][1].SerializeToString()
    codes: list[str] = []

    @seed(20261201)
    @settings(
        max_examples=40 * FUZZ_SCALE,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data(), noise=st.booleans())
    def run(data: st.DataObject, noise: bool) -> None:
        payload = data.draw(st.binary(max_size=300)) if noise else _mutate(valid, data)
        error = verdict(lambda: call_raw(channel, method, payload))
        codes.append(error.code().name if error is not None else "OK")

    run()
    # Random bytes must have been refused as such at least once (the intake's own answer).
    assert "INVALID_ARGUMENT" in codes, codes


def test_garbage_is_refused_with_an_error_info(channel: grpc.Channel) -> None:
    for method in METHODS:
        error = verdict(lambda m=method: call_raw(channel, m, b"\xff\xff\xff\xff\x0f"))
        assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT, method
        info = grpc_error_info(error)
        assert info is not None and info.reason == "INVALID_REQUEST", method


# ------------------------------------------------------------------------------------------ extreme messages
ID_METHODS = ["GetResponse", "StreamGetResponse", "DeleteResponse", "CancelResponse", "ListInputItems"]
REQUEST_TYPES = {
    "GetResponse": rs.GetResponseRequest,
    "StreamGetResponse": rs.GetResponseRequest,
    "DeleteResponse": rs.DeleteResponseRequest,
    "CancelResponse": rs.CancelResponseRequest,
    "ListInputItems": rs.ListInputItemsRequest,
}
EXTREME_IDS = [
    "resp_" + "a" * 100_000,
    "resp_\x00",
    "resp_\x1b[2J",
    "resp_a/../../x",
    "resp_a?b#c",
    "",
    "\ud7ff",
]


@pytest.mark.parametrize("name", ID_METHODS)
@pytest.mark.parametrize("rid", EXTREME_IDS, ids=lambda s: repr(s[:10]) + f"-{len(s)}")
def test_extreme_ids(channel: grpc.Channel, name: str, rid: str) -> None:
    message = REQUEST_TYPES[name](response_id=rid)
    error = verdict(lambda: call_raw(channel, SERVICE + name, message.SerializeToString()))
    assert error is not None and error.code() in (
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
    ), error.code() if error else "OK"
    assert len(error.details() or "") < 500, "the message echoes the whole id"


INT64 = [2**63 - 1, -(2**63), 0, -1]


@pytest.mark.parametrize("limit", INT64)
def test_extreme_limits(channel: grpc.Channel, limit: int) -> None:
    created = _create(channel)
    message = rs.ListInputItemsRequest(response_id=created, limit=limit, after="\x00" * 10, order=7)  # type: ignore[arg-type]
    verdict(lambda: call_raw(channel, SERVICE + "ListInputItems", message.SerializeToString()))
    get = rs.GetResponseRequest(response_id=created, stream=True, starting_after=limit)
    verdict(lambda: call_raw(channel, SERVICE + "StreamGetResponse", get.SerializeToString()))


def _create(channel: grpc.Channel, model: str = "gpt-4.1", **fields: Any) -> str:
    request = request_pb2.CreateResponseRequest(model=model, **fields)
    request.input.text = "hi"
    reply = channel.unary_unary(SERVICE + "CreateResponse")(
        request.SerializeToString(), timeout=30, metadata=GRPC_AUTH
    )
    return response_pb2.Response.FromString(reply).id


def deep_value(levels: int) -> struct_pb2.Value:
    """A Value `levels` JSON objects deep, built directly (no codec limit on the way)."""
    root = struct_pb2.Value()
    cursor = root
    for _ in range(levels):
        cursor = cursor.struct_value.fields["a"]
    cursor.string_value = "x"
    return root


# A schema `properties.p` holding `levels` nested objects: 9 + 3 x levels protobuf levels, so 27 is the
# deepest the intake keeps (values.MAX_DEPTH = 90) and 31 and up still parse but would not when wrapped;
# 200 does not parse at all.
@pytest.mark.parametrize(
    ("levels", "accepted"), [(20, True), (25, True), (31, False), (40, False), (200, False)]
)
@pytest.mark.parametrize("model", MODELS[:3])
def test_deep_tool_parameters(channel: grpc.Channel, levels: int, accepted: bool, model: str) -> None:
    """Past protobuf's own limit the bytes do not parse; below it, deeper than the store keeps is refused
    by the intake; what is accepted reads back."""
    request = request_pb2.CreateResponseRequest(model=model)
    request.input.text = "hi"
    tool = request.tools.add().function
    tool.name = "f"
    codec.from_json(tool.parameters, {"type": "object", "properties": {}})
    tool.parameters.fields["properties"].struct_value.fields["p"].CopyFrom(deep_value(levels))
    try:
        reply = channel.unary_unary(SERVICE + "CreateResponse")(
            request.SerializeToString(), timeout=30, metadata=GRPC_AUTH
        )
    except grpc.RpcError as e:
        assert grpc_problem(e) is None, grpc_problem(e)
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.details()
        info = grpc_error_info(e)
        assert info is not None and "upstream_status" not in info.metadata, e.details()  # the gateway's own
        assert not accepted, f"{levels} levels refused: {e.details()}"
        return
    assert accepted, f"{levels} levels accepted"
    rid = response_pb2.Response.FromString(reply).id
    for name in ("GetResponse", "ListInputItems"):
        message = REQUEST_TYPES[name](response_id=rid)
        assert (
            verdict(lambda n=name, m=message: call_raw(channel, SERVICE + n, m.SerializeToString())) is None
        )


def test_deep_unknown_field_in_an_item(channel: grpc.Channel) -> None:
    request = request_pb2.CreateResponseRequest(model="gpt-4.1")
    item = codec.from_json(request.input.items.items.add(), {"role": "user", "content": "hi"})
    item.message.extra_fields["x_extra"].CopyFrom(deep_value(31))
    error = verdict(lambda: call_raw(channel, SERVICE + "CreateResponse", request.SerializeToString()))
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = grpc_error_info(error)
    assert info is not None and info.metadata["param"] == "input"


# ------------------------------------------------------------------------------------------ metadata, size
def test_duplicate_authorization_is_refused(channel: grpc.Channel) -> None:
    valid = METHODS[SERVICE + "CreateResponse"][1].SerializeToString()
    twice = (("authorization", f"Bearer {MASTER_KEY}"), ("authorization", "Bearer sk-someone-else"))
    for metadata in (twice, (twice[0], twice[0])):
        error = verdict(lambda md=metadata: call_raw(channel, SERVICE + "CreateResponse", valid, md))
        assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED
    # One entry still works.
    assert verdict(lambda: call_raw(channel, SERVICE + "CreateResponse", valid)) is None


@pytest.mark.parametrize("method", [SERVICE + "CreateResponse", SERVICE + "StreamResponse"])
def test_request_over_the_body_limit(channel: grpc.Channel, method: str) -> None:
    """REST's max_request_body_bytes holds on gRPC too: gRPC core refuses it, with RESOURCE_EXHAUSTED."""
    request = request_pb2.CreateResponseRequest(model="gpt-4.1")
    request.input.text = "a" * (BODY_LIMIT + 1024)
    error = verdict(lambda: call_raw(channel, method, request.SerializeToString()), core_may_answer=True)
    assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    request.input.text = "a" * (BODY_LIMIT // 2)
    assert verdict(lambda: call_raw(channel, method, request.SerializeToString())) is None


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "chat-model"])
def test_conversation_on_a_non_native_model(channel: grpc.Channel, model: str) -> None:
    request = request_pb2.CreateResponseRequest(model=model)
    request.input.text = "hi"
    request.conversation.id = "conv_123"
    for method in (SERVICE + "CreateResponse", SERVICE + "StreamResponse"):
        error = verdict(lambda m=method: call_raw(channel, m, request.SerializeToString()))
        assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("char", ["a", "\u00e9", "\U0001f600"])
def test_an_upstream_echo_of_a_huge_key_still_fits_the_trailers(channel: grpc.Channel, char: str) -> None:
    """The native upstream quotes an unknown parameter in its 400; a 100,000-character key must still
    come back as INVALID_ARGUMENT, not as a call broken by trailers over gRPC's 16 KiB."""
    request = request_pb2.CreateResponseRequest(model="gpt-4.1")
    request.input.text = "hi"
    request.extra_fields[char * 100_000].string_value = "x"
    error = verdict(lambda: call_raw(channel, SERVICE + "CreateResponse", request.SerializeToString()))
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    info = grpc_error_info(error)
    assert info is not None and info.metadata.get("upstream_status") == "400"
