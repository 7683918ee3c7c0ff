"""The same keys over gRPC: the AdminService (master key only), a virtual key's calls, its limits as
RESOURCE_EXHAUSTED with google.rpc.RetryInfo, BUDGET_EXCEEDED, and isolation of its responses."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from responses_gateway.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    request_pb2,
    responses_service_pb2,
    responses_service_pb2_grpc,
)
from tests.platform.conftest import MASTER, admin
from tests.support.process import GatewayProcess


@pytest.fixture
def channel(gateway: GatewayProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(gateway.grpc_target) as ch:
        yield ch


def meta(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def details(error: grpc.RpcError) -> tuple[error_details_pb2.ErrorInfo, error_details_pb2.RetryInfo | None]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    info, retry = error_details_pb2.ErrorInfo(), None
    for d in status.details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            d.Unpack(info)
        elif d.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            d.Unpack(retry)
    return info, retry


def test_admin_service_round_trip(channel: grpc.Channel, gateway: GatewayProcess) -> None:
    stub = admin_pb2_grpc.AdminServiceStub(channel)
    made = stub.GenerateKey(
        admin_pb2.GenerateKeyRequest(models=["m1"], rpm_limit=50, team_id="grpc-team", max_budget=5.0),
        metadata=meta(MASTER),
    )
    assert made.key.startswith("sk-") and made.info.rpm_limit == 50 and list(made.info.models) == ["m1"]
    got = stub.GetKeyInfo(admin_pb2.GetKeyInfoRequest(key=made.info.token), metadata=meta(MASTER))
    assert got.info.team_id == "grpc-team" and got.info.max_budget == 5.0
    # The REST API sees the same key.
    assert admin(gateway, "GET", "/key/info", params={"key": made.key}).json()["info"]["rpm_limit"] == 50
    updated = stub.UpdateKey(admin_pb2.UpdateKeyRequest(key=made.key, tpm_limit=1000), metadata=meta(MASTER))
    assert (
        updated.info.tpm_limit == 1000
        and updated.info.rpm_limit == 50
        and list(updated.info.models) == ["m1"]
    )
    listed = stub.ListKeys(admin_pb2.ListKeysRequest(team_id="grpc-team", size=100), metadata=meta(MASTER))
    assert made.info.token in [k.token for k in listed.keys]
    report = stub.GetSpendReport(admin_pb2.GetSpendReportRequest(group_by="model"), metadata=meta(MASTER))
    assert report.group_by == "model"
    # A virtual key may not use the admin service; no key at all is UNAUTHENTICATED.
    with pytest.raises(grpc.RpcError) as denied:
        stub.ListKeys(admin_pb2.ListKeysRequest(), metadata=meta(made.key))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as anonymous:
        stub.ListKeys(admin_pb2.ListKeysRequest())
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as bad:
        stub.GenerateKey(admin_pb2.GenerateKeyRequest(budget_duration="often"), metadata=meta(MASTER))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    gone = stub.DeleteKeys(admin_pb2.DeleteKeysRequest(keys=[made.key]), metadata=meta(MASTER))
    assert list(gone.deleted_keys) == [made.key]
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetKeyInfo(admin_pb2.GetKeyInfoRequest(key=made.key), metadata=meta(MASTER))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_rpm_over_grpc_is_resource_exhausted_with_retry_info(channel: grpc.Channel) -> None:
    admin_stub = admin_pb2_grpc.AdminServiceStub(channel)
    key = admin_stub.GenerateKey(admin_pb2.GenerateKeyRequest(rpm_limit=1), metadata=meta(MASTER)).key
    stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)
    request = request_pb2.CreateResponseRequest(model="m1")
    request.input.text = "hi"
    response, call = stub.CreateResponse.with_call(request, metadata=meta(key))
    assert response.id and dict(call.trailing_metadata())["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(grpc.RpcError) as limited:
        stub.CreateResponse(request, metadata=meta(key))
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info, retry = details(limited.value)
    assert info.reason == "RATE_LIMITED" and retry is not None and 1 <= retry.retry_delay.seconds <= 60
    with pytest.raises(grpc.RpcError) as streamed:
        list(stub.StreamResponse(request, metadata=meta(key)))
    assert streamed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_budget_and_isolation_over_grpc(channel: grpc.Channel) -> None:
    admin_stub = admin_pb2_grpc.AdminServiceStub(channel)
    owner = admin_stub.GenerateKey(admin_pb2.GenerateKeyRequest(max_budget=1e-9), metadata=meta(MASTER)).key
    other = admin_stub.GenerateKey(admin_pb2.GenerateKeyRequest(), metadata=meta(MASTER)).key
    stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
    request = request_pb2.CreateResponseRequest(model="m1")
    request.input.text = "hi"
    made = stub.CreateResponse(request, metadata=meta(owner))
    with pytest.raises(grpc.RpcError) as broke:
        stub.CreateResponse(request, metadata=meta(owner))
    assert broke.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details(broke.value)[0].reason == "BUDGET_EXCEEDED"
    rid = made.id
    for call in (
        lambda: stub.GetResponse(
            responses_service_pb2.GetResponseRequest(response_id=rid), metadata=meta(other)
        ),
        lambda: stub.ListInputItems(
            responses_service_pb2.ListInputItemsRequest(response_id=rid), metadata=meta(other)
        ),
        lambda: stub.DeleteResponse(
            responses_service_pb2.DeleteResponseRequest(response_id=rid), metadata=meta(other)
        ),
        lambda: stub.CancelResponse(
            responses_service_pb2.CancelResponseRequest(response_id=rid), metadata=meta(other)
        ),
        lambda: list(
            stub.StreamGetResponse(
                responses_service_pb2.GetResponseRequest(response_id=rid, stream=True), metadata=meta(other)
            )
        ),
    ):
        with pytest.raises(grpc.RpcError) as hidden:
            call()
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    follow = request_pb2.CreateResponseRequest(model="m1", previous_response_id=rid)
    follow.input.text = "again"
    with pytest.raises(grpc.RpcError) as chained:
        stub.CreateResponse(follow, metadata=meta(other))
    assert details(chained.value)[0].reason == "PREVIOUS_RESPONSE_NOT_FOUND"
    got = stub.GetResponse(responses_service_pb2.GetResponseRequest(response_id=rid), metadata=meta(owner))
    assert got.id == rid
    assert (
        stub.GetResponse(responses_service_pb2.GetResponseRequest(response_id=rid), metadata=meta(MASTER)).id
        == rid
    )
