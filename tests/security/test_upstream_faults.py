"""An upstream that answers with what is not JSON is the upstream's fault: a 502 (gRPC INTERNAL with the
UPSTREAM_ERROR reason), and never "could not parse the JSON body of your request"."""

from __future__ import annotations

import grpc
import httpx
import pytest

from responses_gateway.v1 import request_pb2
from tests.security.conftest import GARBAGE_MODEL, GRPC_AUTH, check_rest, grpc_error_info

SERVICE = "/responses_gateway.v1.ResponsesService/"


@pytest.mark.parametrize("stream", [False, True])
def test_rest_unreadable_upstream_is_a_bad_gateway(http: httpx.Client, stream: bool) -> None:
    r = http.post("/responses", json={"model": GARBAGE_MODEL, "input": "hi", "stream": stream})
    assert r.status_code == 502, r.text[:300]
    error = r.json()["error"]
    assert error["type"] == "server_error" and error["code"] == "bad_gateway", error
    assert "OpenAI" in error["message"] and "your request" not in error["message"], error


def test_rest_the_client_is_still_told_about_its_own_json(http: httpx.Client) -> None:
    r = http.post("/responses", content=b"{oops", headers={"content-type": "application/json"})
    check_rest(r)
    assert r.status_code == 400 and "your request" in r.json()["error"]["message"]


@pytest.mark.parametrize("method", ["CreateResponse", "StreamResponse"])
def test_grpc_unreadable_upstream(channel: grpc.Channel, method: str) -> None:
    request = request_pb2.CreateResponseRequest(model=GARBAGE_MODEL)
    request.input.text = "hi"
    payload = request.SerializeToString()
    with pytest.raises(grpc.RpcError) as err:
        if method == "StreamResponse":
            list(channel.unary_stream(SERVICE + method)(payload, timeout=30, metadata=GRPC_AUTH))
        else:
            channel.unary_unary(SERVICE + method)(payload, timeout=30, metadata=GRPC_AUTH)
    assert err.value.code() == grpc.StatusCode.INTERNAL, err.value.details()
    info = grpc_error_info(err.value)
    assert info is not None and info.reason == "UPSTREAM_ERROR"
    assert "your request" not in (err.value.details() or "")
