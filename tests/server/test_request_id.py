"""The request id: a caller's own `x-request-id` (HTTP header / gRPC metadata, 1 to 128 printable ASCII
characters) is the call's id — returned, logged and sent upstream; an invalid one is a 400 /
INVALID_ARGUMENT naming it; and every gRPC error carries the id in its trailers beside the status."""

from __future__ import annotations

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from responses_gateway.v1 import request_pb2, responses_service_pb2, responses_service_pb2_grpc
from tests.fakes.openai_upstream import FakeOpenAI
from tests.server.conftest import MODEL
from tests.support.sse import sse_events

RID = "client-trace:0042/abc"
HEADER = "x-request-id"


def _trailers(call: grpc.Call | grpc.RpcError) -> dict[str, str]:
    return {k: v for k, v in (call.trailing_metadata() or ()) if isinstance(v, str)}  # type: ignore[union-attr]


# --- REST ---------------------------------------------------------------------------------------------
def test_rest_keeps_the_callers_request_id_and_sends_it_upstream(
    http: httpx.Client, fake: FakeOpenAI
) -> None:
    r = http.post("/v1/responses", json={"model": MODEL, "input": "hi"}, headers={HEADER: RID})
    assert r.status_code == 200, r.text
    assert r.headers[HEADER] == RID
    assert fake.create_requests[-1].headers[HEADER] == RID

    with http.stream(
        "POST", "/v1/responses", json={"model": MODEL, "input": "hi", "stream": True}, headers={HEADER: "s-1"}
    ) as s:
        s.read()
        assert s.headers[HEADER] == "s-1" and sse_events(s)[-1]["type"] == "response.completed"
    assert fake.create_requests[-1].headers[HEADER] == "s-1"


def test_rest_without_one_gets_a_new_id_each_call(http: httpx.Client, fake: FakeOpenAI) -> None:
    ids = {http.post("/v1/responses", json={"model": MODEL, "input": "hi"}).headers[HEADER] for _ in range(2)}
    assert len(ids) == 2 and all(i.startswith("req_") for i in ids)


def test_rest_error_answers_carry_the_callers_id(http: httpx.Client) -> None:
    r = http.get("/v1/responses/resp_missing0000", headers={HEADER: RID})
    assert r.status_code == 404 and r.headers[HEADER] == RID


@pytest.mark.parametrize("value", ["a" * 129, "tab\tinside"])
def test_rest_refuses_an_invalid_request_id(http: httpx.Client, fake: FakeOpenAI, value: str) -> None:
    before = len(fake.create_requests)
    r = http.post("/v1/responses", json={"model": MODEL, "input": "hi"}, headers={HEADER: value})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == HEADER and error["type"] == "invalid_request_error"
    assert "printable ASCII" in error["message"] and value not in error["message"]
    assert r.headers[HEADER].startswith("req_")  # a fresh id, not the refused value
    assert len(fake.create_requests) == before  # nothing went upstream


def test_rest_accepts_the_longest_request_id(http: httpx.Client, fake: FakeOpenAI) -> None:
    value = "x" * 128
    r = http.post("/v1/responses", json={"model": MODEL, "input": "hi"}, headers={HEADER: value})
    assert r.status_code == 200 and r.headers[HEADER] == value


# --- gRPC ---------------------------------------------------------------------------------------------
def _create() -> request_pb2.CreateResponseRequest:
    request = request_pb2.CreateResponseRequest(model=MODEL)
    request.input.text = "hi"
    return request


def test_grpc_keeps_the_callers_request_id(
    stub: responses_service_pb2_grpc.ResponsesServiceStub, fake: FakeOpenAI
) -> None:
    _, call = stub.CreateResponse.with_call(_create(), metadata=((HEADER, RID),), timeout=30)
    assert _trailers(call)[HEADER] == RID
    assert fake.create_requests[-1].headers[HEADER] == RID
    stream = stub.StreamResponse(_create(), metadata=((HEADER, "g-stream"),), timeout=30)
    assert list(stream)[-1].WhichOneof("kind") == "response_completed"
    assert _trailers(stream)[HEADER] == "g-stream"


def test_grpc_metadata_is_read_in_one_pass_with_its_first_request_id_and_the_trace_context(
    stub: responses_service_pb2_grpc.ResponsesServiceStub, fake: FakeOpenAI
) -> None:
    """Of two request ids the first counts; the caller's W3C trace context goes upstream as it came
    (tracing is off here), on a unary create and a stream alike; a Get reads its request id too."""
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    metadata = (("traceparent", parent), (HEADER, "first-id"), ("tracestate", "rg=1"), (HEADER, "second"))
    created, call = stub.CreateResponse.with_call(_create(), metadata=metadata, timeout=30)
    assert _trailers(call)[HEADER] == "first-id"
    sent = fake.create_requests[-1].headers
    assert sent[HEADER] == "first-id" and sent["traceparent"] == parent and sent["tracestate"] == "rg=1"
    stream = stub.StreamResponse(_create(), metadata=metadata[:2], timeout=30)
    assert list(stream)[-1].WhichOneof("kind") == "response_completed"
    sent = fake.create_requests[-1].headers
    assert _trailers(stream)[HEADER] == "first-id" and sent["traceparent"] == parent
    assert "tracestate" not in sent  # this call sent none
    get = responses_service_pb2.GetResponseRequest(response_id=created.id)
    _, call = stub.GetResponse.with_call(get, metadata=((HEADER, "get-id"),), timeout=30)
    assert _trailers(call)[HEADER] == "get-id"


def test_grpc_errors_carry_the_request_id_in_their_trailers(
    stub: responses_service_pb2_grpc.ResponsesServiceStub,
) -> None:
    missing = responses_service_pb2.GetResponseRequest(response_id="resp_missing0000")
    with pytest.raises(grpc.RpcError) as info:
        stub.GetResponse(missing, metadata=((HEADER, RID),), timeout=30)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    assert _trailers(info.value)[HEADER] == RID
    # The rich status is still there beside it.
    status = rpc_status.from_call(info.value)  # type: ignore[arg-type]
    assert status is not None
    detail = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(detail) and detail.reason == "RESPONSE_NOT_FOUND"

    # Without one, a new id; a create's error too (an unknown model), streamed or not.
    with pytest.raises(grpc.RpcError) as info:
        stub.GetResponse(missing, timeout=30)
    assert _trailers(info.value)[HEADER].startswith("req_")
    unknown = _create()
    unknown.model = "no-such-model"
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateResponse(unknown, metadata=((HEADER, "g-err"),), timeout=30)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and _trailers(info.value)[HEADER] == "g-err"  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as info:
        list(stub.StreamResponse(unknown, metadata=((HEADER, "g-err2"),), timeout=30))
    assert _trailers(info.value)[HEADER] == "g-err2"


def test_grpc_refuses_an_invalid_request_id(
    stub: responses_service_pb2_grpc.ResponsesServiceStub, fake: FakeOpenAI
) -> None:
    before = len(fake.create_requests)
    for call in (stub.CreateResponse, lambda r, **kw: list(stub.StreamResponse(r, **kw))):
        with pytest.raises(grpc.RpcError) as info:
            call(_create(), metadata=((HEADER, "a" * 129),), timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert HEADER in info.value.details()  # type: ignore[attr-defined]
        assert _trailers(info.value)[HEADER].startswith("req_")
    assert len(fake.create_requests) == before
