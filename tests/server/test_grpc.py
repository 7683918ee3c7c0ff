"""The generated Python gRPC client over real channels (sync `grpc` and `grpc.aio`)."""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from responses_gateway.contract.events import event_type
from responses_gateway.v1 import (
    items_pb2,
    models_pb2,
    request_pb2,
    response_pb2,
    responses_service_pb2,
    responses_service_pb2_grpc,
)
from tests.server.conftest import MODEL

rs = responses_service_pb2
COMPLETED = response_pb2.RESPONSE_STATUS_COMPLETED
CANCELLED = response_pb2.RESPONSE_STATUS_CANCELLED
TEXT = "Hello! How can I help you today?"


def create_request(text: str = "hi", **fields) -> request_pb2.CreateResponseRequest:
    req = request_pb2.CreateResponseRequest(model=fields.pop("model", MODEL), **fields)
    req.input.text = text
    return req


def body(event):
    """The active arm of a stream event (its fields are the OpenAI event's, minus `type`)."""
    return getattr(event, event.WhichOneof("kind"))


def output_text(response: response_pb2.Response) -> str:
    return "".join(
        part.output_text.text
        for item in response.output
        if item.WhichOneof("kind") == "message"
        for part in item.message.content.parts.parts
        if part.WhichOneof("kind") == "output_text"
    )


def wait_for(predicate, what: str, timeout: float = 15.0):
    """Poll `predicate` until it returns something truthy (the bound only stops a broken run)."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)
    return result


def test_create_response_unary(stub, fake):
    r = stub.CreateResponse(create_request("hello", temperature=0.25, metadata={"k": "v"}), timeout=20)
    assert r.id.startswith("resp_") and r.object == "response"
    assert r.status == COMPLETED
    assert output_text(r) == TEXT
    sent = fake.create_requests[-1].body
    assert sent["input"] == "hello" and sent["temperature"] == 0.25 and sent["metadata"] == {"k": "v"}


def test_stream_response(stub, fake):
    events = list(stub.StreamResponse(create_request(), timeout=20))
    types = [event_type(e) for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [body(e).delta for e in events if event_type(e) == "response.output_text.delta"]
    assert "".join(deltas) == TEXT
    final = body(events[-1]).response
    assert final.status == COMPLETED and output_text(final) == TEXT
    assert fake.create_requests[-1].body["stream"] is True

    got = stub.GetResponse(rs.GetResponseRequest(response_id=final.id), timeout=10)
    assert got == final  # the store holds exactly what the stream ended with


def test_get_delete_list_input_items(stub, fake):
    req = create_request()
    req.input.ClearField("text")
    for word in ("one", "two", "three"):
        item = req.input.items.items.add()
        item.message.role = items_pb2.MESSAGE_ROLE_USER
        item.message.content.text = word
    r = stub.CreateResponse(req, timeout=20)

    got = stub.GetResponse(rs.GetResponseRequest(response_id=r.id), timeout=10)
    assert got.id == r.id and output_text(got) == TEXT

    asc = stub.ListInputItems(rs.ListInputItemsRequest(response_id=r.id, order=rs.LIST_ORDER_ASC), timeout=10)
    texts = [i.message.content.parts.parts[0].input_text.text for i in asc.data]
    assert texts == ["one", "two", "three"]
    ids = [i.message.id for i in asc.data]
    assert asc.first_id == ids[0] and asc.last_id == ids[-1] and not asc.has_more
    desc = stub.ListInputItems(rs.ListInputItemsRequest(response_id=r.id), timeout=10)
    assert [i.message.id for i in desc.data] == ids[::-1]
    page = stub.ListInputItems(
        rs.ListInputItemsRequest(response_id=r.id, order=rs.LIST_ORDER_ASC, limit=1, after=ids[0]), timeout=10
    )
    assert [i.message.id for i in page.data] == [ids[1]] and page.has_more

    deleted = stub.DeleteResponse(rs.DeleteResponseRequest(response_id=r.id), timeout=10)
    assert deleted.id == r.id and deleted.deleted
    with pytest.raises(grpc.RpcError) as err:
        stub.GetResponse(rs.GetResponseRequest(response_id=r.id), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        stub.ListInputItems(rs.ListInputItemsRequest(response_id=r.id), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_list_models(models_stub):
    reply = models_stub.ListModels(models_pb2.ListModelsRequest(), timeout=10)
    assert reply.object == "list"
    assert [m.id for m in reply.data] == [MODEL, "mock"]
    assert all(m.object == "model" and m.created > 0 for m in reply.data)


@pytest.mark.parametrize(
    "service", ["", "responses_gateway.v1.ResponsesService", "responses_gateway.v1.ModelsService"]
)
def test_health_serving(channel, service):
    reply = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=10
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_health_unknown_service(channel):
    with pytest.raises(grpc.RpcError) as err:
        health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="nope.Service"), timeout=10
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_services(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = list(
        stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
    )
    names = {s.name for s in replies[0].list_services_response.service}
    assert {
        "responses_gateway.v1.ResponsesService",
        "responses_gateway.v1.ModelsService",
        "grpc.health.v1.Health",
    } <= names
    # The descriptors are served too (what grpcurl needs to call the API).
    req = reflection_pb2.ServerReflectionRequest(
        file_containing_symbol="responses_gateway.v1.ResponsesService"
    )
    (reply,) = stub.ServerReflectionInfo(iter([req]), timeout=10)
    assert reply.file_descriptor_response.file_descriptor_proto


async def test_client_cancel_mid_stream_stops_upstream(gateway, stub, fake, wire):
    fake.event_delay = 0.2  # 17 events: ~3.4 s upstream
    async with grpc.aio.insecure_channel(gateway.grpc_target) as channel:
        aio = responses_service_pb2_grpc.ResponsesServiceStub(channel)
        call = aio.StreamResponse(create_request())
        seen = []
        async for event in call:
            seen.append(event)
            if event_type(event) == "response.output_text.delta":
                break
        call.cancel()
    rid = body(seen[0]).response.id
    assert rid
    upstream = wire.creates()[-1]
    wait_for(lambda: upstream.client_disconnected or upstream.completed, "the upstream call to end")
    assert upstream.client_disconnected, "the gateway kept reading the upstream after the client cancelled"
    assert upstream.chunks_at_disconnect < 17

    stored = wait_for(
        lambda: (
            (r := stub.GetResponse(rs.GetResponseRequest(response_id=rid), timeout=10)).status == CANCELLED
            and r
        ),
        "the stored response to say cancelled",
    )
    assert stored.id == rid
    # The items the client saw are kept.
    assert [i.message.id for i in stored.output] == [body(seen[2]).item.message.id]
    # The server keeps serving.
    fake.event_delay = 0
    assert stub.CreateResponse(create_request(), timeout=20).status == COMPLETED


def test_deadline_shorter_than_upstream(stub, fake, wire):
    fake.event_delay = 0.25  # ~4 s upstream against a 1 s deadline
    events = []
    with pytest.raises(grpc.RpcError) as err:
        for event in stub.StreamResponse(create_request(), timeout=1.0):
            events.append(event)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert not events or event_type(events[-1]) != "response.completed"
    upstream = wire.creates()[-1]
    wait_for(lambda: upstream.client_disconnected or upstream.completed, "the upstream call to end")
    assert upstream.client_disconnected, "the gateway kept reading the upstream after the deadline"

    fake.event_delay = 0
    assert stub.CreateResponse(create_request(), timeout=20).status == COMPLETED


@pytest.mark.parametrize(
    ("scenario", "says"),
    [
        ("error_event", "An error occurred while processing your request"),
        ("disconnect", "closed the connection"),
    ],
)
def test_stream_failure_ends_with_response_failed(stub, fake, scenario, says):
    fake.enqueue(scenario)
    call = stub.StreamResponse(create_request(), timeout=20)
    events = list(call)
    assert call.code() == grpc.StatusCode.OK
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert event_type(events[-1]) == "response.failed"
    failed = body(events[-1]).response
    assert failed.status == response_pb2.RESPONSE_STATUS_FAILED and says in failed.error.message
    stored = stub.GetResponse(rs.GetResponseRequest(response_id=failed.id), timeout=10)
    assert stored.status == response_pb2.RESPONSE_STATUS_FAILED
    assert stub.CreateResponse(create_request(), timeout=20).status == COMPLETED


def test_cancel_background_over_grpc(stub, fake):
    fake.event_delay = 0.3
    first = next(iter(stub.StreamResponse(create_request(background=True), timeout=20)))
    rid = body(first).response.id
    assert body(first).response.background
    # Leaving the stream does not stop a background response: it is still running.
    running = stub.GetResponse(rs.GetResponseRequest(response_id=rid), timeout=10)
    assert running.status == response_pb2.RESPONSE_STATUS_IN_PROGRESS
    cancelled = stub.CancelResponse(rs.CancelResponseRequest(response_id=rid), timeout=10)
    assert cancelled.id == rid and cancelled.status == CANCELLED
    with pytest.raises(grpc.RpcError) as err:
        stub.CancelResponse(rs.CancelResponseRequest(response_id="resp_unknown"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
