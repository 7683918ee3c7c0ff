"""Responses cut short — by a stalled upstream or by a shutdown — end properly on both transports: the
client gets a terminal event (or a status), and the store says the same afterwards."""

from __future__ import annotations

import threading
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2

from responses_gateway.contract.events import event_type
from responses_gateway.v1 import response_pb2, responses_service_pb2_grpc
from responses_gateway.v1 import responses_service_pb2 as rs
from tests.server.conftest import MODEL
from tests.server.test_grpc import create_request
from tests.support.process import GatewayProcess
from tests.support.sse import iter_frames

FAST_TIMEOUTS = {"timeout": 1, "stream_timeout": 1}
NO_RETRIES = {"num_retries": 0}


def error_reason(error: grpc.RpcError) -> str:
    for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            info = error_details_pb2.ErrorInfo()
            status.details[0].Unpack(info)
            return str(info.reason)
    return ""


def grpc_events(gw: GatewayProcess, timeout: float, **fields: Any) -> list[Any]:
    with grpc.insecure_channel(gw.grpc_target) as channel:
        stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
        return list(stub.StreamResponse(create_request(**fields), timeout=timeout))


def sse_events(gw: GatewayProcess, **body: Any) -> list[Any]:
    with (
        httpx.Client(base_url=gw.http_base, timeout=60) as http,
        http.stream(
            "POST", "/v1/responses", json={"model": MODEL, "input": "hi", "stream": True, **body}
        ) as r,
    ):
        assert r.status_code == 200
        return [f for f in iter_frames(r)]


# ------------------------------------------------------------------------------- deployment timeouts
def test_a_grpc_deadline_does_not_lift_the_deployments_timeout(spawn_gateway, fake) -> None:
    """A client deadline of 60 s used to become the upstream timeout: a hung upstream held the call
    until then. The deployment's 1 s holds, and the router sees an upstream timeout."""
    gw = spawn_gateway(grace=1, params=FAST_TIMEOUTS, router=NO_RETRIES)
    fake.stall_after = 0
    with grpc.insecure_channel(gw.grpc_target) as channel:
        stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateResponse(create_request(), timeout=60)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value
    assert error_reason(caught.value) == "UPSTREAM_TIMEOUT"


def test_a_stream_that_stalls_ends_with_response_failed_on_both_transports(spawn_gateway, fake) -> None:
    gw = spawn_gateway(grace=1, params=FAST_TIMEOUTS, router=NO_RETRIES)
    fake.stall_after = 3  # created, in_progress, output_item.added; then silence
    events = grpc_events(gw, timeout=60)
    assert event_type(events[-1]) == "response.failed", [event_type(e) for e in events]
    failed = events[-1].response_failed.response
    assert "did not answer in time" in failed.error.message
    frames = sse_events(gw)
    assert [f.event for f in frames[-2:]] == ["response.failed", None]
    stored_id = frames[-2].json()["response"]["id"]
    with grpc.insecure_channel(gw.grpc_target) as channel:
        stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
        for rid in (failed.id, stored_id):
            got = stub.GetResponse(rs.GetResponseRequest(response_id=rid), timeout=10)
            assert got.status == failed.status and got.error.message == failed.error.message


# ------------------------------------------------------------------------------- shutdown
def test_sigterm_ends_streams_that_outlive_the_grace_period(spawn_gateway, fake) -> None:
    """Streams (REST and gRPC, foreground and background) still running when the grace period ends
    get a terminal `response.failed`, and the store records it before it closes: after a restart,
    every one of them reads `failed`, none `in_progress`."""
    gw = spawn_gateway(grace=2)
    fake.stall_after = 4
    ids: list[str] = []
    last: dict[str, str] = {}
    started = threading.Barrier(7, timeout=30)
    errors: list[BaseException] = []

    def rest(n: int) -> None:
        try:
            with (
                httpx.Client(base_url=gw.http_base, timeout=60) as http,
                http.stream(
                    "POST", "/v1/responses", json={"model": MODEL, "input": "hi", "stream": True}
                ) as r,
            ):
                frames = iter_frames(r)
                ids.append(next(frames).json()["response"]["id"])
                started.wait()
                seen = [f for f in frames]
                last[f"rest{n}"] = str(seen[-2].event) if seen[-1].data == "[DONE]" else "cut"
        except BaseException as e:
            errors.append(e)

    def over_grpc(n: int, background: bool) -> None:
        try:
            with grpc.insecure_channel(gw.grpc_target) as channel:
                stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
                stream = stub.StreamResponse(create_request(background=background), timeout=60)
                ids.append(next(stream).response_created.response.id)
                started.wait()
                seen = list(stream)
                last[f"grpc{n}"] = event_type(seen[-1])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=rest, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=over_grpc, args=(n, n == 2)) for n in range(3)]
    for t in threads:
        t.start()
    started.wait()
    gw.terminate()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert last == {k: "response.failed" for k in last} and len(last) == 6, last
    assert gw.proc is not None and gw.proc.wait(timeout=15) == 0
    assert "Traceback" not in gw.log, gw.log

    again = spawn_gateway(grace=1)
    with grpc.insecure_channel(again.grpc_target) as channel:
        stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
        for rid in ids:
            got = stub.GetResponse(rs.GetResponseRequest(response_id=rid), timeout=10)
            assert got.error.message == "The gateway shut down before the response was complete.", got
            assert got.status == response_pb2.RESPONSE_STATUS_FAILED
