"""The error reasons: one list (the proto enum clients get constants from), one gRPC code and one HTTP
status per reason, and the two agree — by Google's canonical mapping, or by an exception written here
with its reason."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest

from responses_gateway.client._errors import error_class
from responses_gateway.errors import ERROR_TABLE, Reason
from responses_gateway.v1 import errors_pb2

PROTO = Path(__file__).resolve().parents[2] / "proto" / "responses_gateway" / "v1" / "errors.proto"
PREFIX = "ERROR_REASON_"
C = grpc.StatusCode

# google.rpc.Code's own HTTP mapping (google/rpc/code.proto).
CANONICAL = {
    C.INVALID_ARGUMENT: 400,
    C.FAILED_PRECONDITION: 400,
    C.OUT_OF_RANGE: 400,
    C.UNAUTHENTICATED: 401,
    C.PERMISSION_DENIED: 403,
    C.NOT_FOUND: 404,
    C.ABORTED: 409,
    C.ALREADY_EXISTS: 409,
    C.RESOURCE_EXHAUSTED: 429,
    C.CANCELLED: 499,
    C.INTERNAL: 500,
    C.UNKNOWN: 500,
    C.DATA_LOSS: 500,
    C.UNIMPLEMENTED: 501,
    C.UNAVAILABLE: 503,
    C.DEADLINE_EXCEEDED: 504,
}
# Where the gateway departs from it, and why.
EXCEPTIONS = {
    # gRPC core answers RESOURCE_EXHAUSTED for a message over its limit; HTTP has its own status.
    Reason.REQUEST_TOO_LARGE: (C.RESOURCE_EXHAUSTED, 413),
    # A provider without the operation: UNIMPLEMENTED says so to gRPC clients; OpenAI's answer to
    # "not supported with this model" is a 400, and the client can pick another model.
    Reason.NOT_IMPLEMENTED: (C.UNIMPLEMENTED, 400),
    # The upstream's fault, not the gateway's own (500) nor transient (503): HTTP's bad gateway.
    Reason.UPSTREAM_ERROR: (C.INTERNAL, 502),
    Reason.UPSTREAM_AUTH_FAILED: (C.INTERNAL, 502),
    # The upstream, not the caller's deadline: retryable on gRPC, HTTP's gateway timeout.
    Reason.UPSTREAM_TIMEOUT: (C.UNAVAILABLE, 504),
}


def proto_reasons() -> dict[str, int]:
    return {
        v.name.removeprefix(PREFIX): v.number
        for v in errors_pb2.ErrorReason.DESCRIPTOR.values
        if v.name != f"{PREFIX}UNSPECIFIED"
    }


def test_the_proto_enum_and_the_server_name_the_same_reasons() -> None:
    assert set(proto_reasons()) == {r.value for r in Reason}
    assert set(ERROR_TABLE) == set(Reason)


@pytest.mark.parametrize("reason", list(Reason), ids=lambda r: r.value)
def test_each_reason_has_a_code_and_a_status_that_agree(reason: Reason) -> None:
    mapping = ERROR_TABLE[reason]
    pair = (mapping.grpc_code, mapping.http_status)
    if reason in EXCEPTIONS:
        assert pair == EXCEPTIONS[reason]
    else:
        assert CANONICAL[mapping.grpc_code] == mapping.http_status, pair
    assert (mapping.openai_type == "server_error") == (mapping.http_status >= 500), mapping


def test_the_proto_documents_each_reasons_code_and_status() -> None:
    """The comment above each enum value ends with `CODE, STATUS` as the table has them."""
    text = PROTO.read_text()
    documented = {
        name: (code, int(status))
        for code, status, name in re.findall(
            r"([A-Z_]+)(?: \([^)]*\))?, (\d{3})[^\n]*\n(?:\s*//[^\n]*\n)*\s*" + PREFIX + r"([A-Z_]+) = ",
            text,
        )
    }
    for reason in Reason:
        mapping = ERROR_TABLE[reason]
        assert documented.get(reason.value) == (mapping.grpc_code.name, mapping.http_status), reason


@pytest.mark.parametrize("reason", list(Reason), ids=lambda r: r.value)
def test_the_python_client_classifies_every_reason_by_its_meaning(reason: Reason) -> None:
    """A reason the client knows maps to the class its meaning calls for; a reason it does not know
    falls back to the code's class. Either way, never a rate limit for what is not one."""
    mapping = ERROR_TABLE[reason]
    cls = error_class(mapping.grpc_code, reason.value)
    assert (cls.__name__ == "RateLimitError") == (reason == Reason.RATE_LIMITED), cls
    if reason.value.startswith("UPSTREAM_"):
        assert cls.__name__ == "UpstreamError"
