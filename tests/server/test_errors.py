"""Bad input, authentication and upstream errors on both transports; the server keeps serving after each."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import openai
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from responses_gateway.v1 import models_pb2, models_pb2_grpc, responses_service_pb2_grpc
from tests.server.conftest import MASTER_KEY, MODEL, SMALL_BODY_LIMIT, sdk
from tests.server.test_grpc import COMPLETED, create_request

ERROR_KEYS = {"message", "type", "param", "code"}


def openai_error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body: dict[str, Any] = r.json()
    assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS, body
    error: dict[str, Any] = body["error"]
    assert error["message"]
    return error


def still_serving(http: httpx.Client, headers: dict[str, str] | None = None) -> None:
    r = http.post("/v1/responses", json={"model": MODEL, "input": "still there?"}, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "completed"


def grpc_error(err: grpc.RpcError) -> tuple[grpc.StatusCode, error_details_pb2.ErrorInfo, list[Any]]:
    """The canonical code and the ErrorInfo of a google.rpc.Status carried in grpc-status-details-bin."""
    assert isinstance(err, grpc.Call)
    status = rpc_status.from_call(err)
    assert status is not None, "no grpc-status-details-bin"
    assert status.code == err.code().value[0] and status.message == err.details()
    infos = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
    assert len(infos) == 1
    assert infos[0].domain == "responses-gateway"
    return err.code(), infos[0], list(status.details)


def grpc_still_serving(stub, metadata=None) -> None:
    assert stub.CreateResponse(create_request(), timeout=20, metadata=metadata).status == COMPLETED


# --------------------------------------------------------------------------------------- REST bad input
@pytest.mark.parametrize("raw", [b'{"model": "gpt-4.1", "input": ', b"not json at all", b"[1, 2]", b""])
def test_malformed_json(http, fake, raw):
    r = http.post("/v1/responses", content=raw, headers={"content-type": "application/json"})
    err = openai_error(r, 400)
    assert err["type"] == "invalid_request_error"
    assert fake.create_requests == []
    still_serving(http)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": MODEL, "input": 5}, "input"),
        ({"model": MODEL, "input": "hi", "temperature": "hot"}, "temperature"),
        ({"model": 42, "input": "hi"}, "model"),
        ({"model": MODEL, "input": "hi", "metadata": "not an object"}, "metadata"),
    ],
)
def test_wrong_type_names_the_param(http, fake, body, param):
    err = openai_error(http.post("/v1/responses", json=body), 400)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert fake.create_requests == []
    still_serving(http)


@pytest.mark.parametrize("depth", [600, 1000])
def test_deeply_nested_json_is_a_400(http, fake, depth):
    """Nesting deep enough to exhaust the converter's recursion is the client's error, not a crash."""
    nested = b"[" * depth + b"]" * depth
    raw = (
        b'{"model": "'
        + MODEL.encode()
        + b'", "input": "hi", "tools": [{"type": "function", "name": "f", "parameters": {"x": '
        + nested
        + b"}}]}"
    )
    err = openai_error(
        http.post("/v1/responses", content=raw, headers={"content-type": "application/json"}), 400
    )
    assert err["type"] == "invalid_request_error" and "nested" in err["message"]
    assert fake.create_requests == []
    still_serving(http)


def test_missing_model(http, client, fake):
    err = openai_error(http.post("/v1/responses", json={"input": "hi"}), 400)
    assert err["param"] == "model"
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(input="hi", stream=True)
    assert isinstance(e.value.body, dict) and e.value.body["param"] == "model"
    still_serving(http)


def test_unknown_model(http, client, fake):
    err = openai_error(http.post("/v1/responses", json={"model": "no-such-model", "input": "hi"}), 404)
    assert err["code"] == "model_not_found" and err["param"] == "model"
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.create(model="no-such-model", input="hi", stream=True)
    assert e.value.code == "model_not_found"
    assert fake.create_requests == []
    still_serving(http)


def test_unknown_path(http):
    err = openai_error(http.get("/v1/nothing-here"), 404)
    assert err["type"] == "invalid_request_error"


@pytest.mark.parametrize("query", ["order=sideways", "limit=0", "limit=abc"])
def test_bad_input_items_query(http, fake, query):
    r = http.post("/v1/responses", json={"model": MODEL, "input": "hi"})
    err = openai_error(http.get(f"/v1/responses/{r.json()['id']}/input_items?{query}"), 400)
    assert err["param"] == query.split("=")[0]


# --------------------------------------------------------------------------------------- gRPC bad input
def test_grpc_missing_model(stub, fake):
    req = create_request()
    req.ClearField("model")
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateResponse(req, timeout=10)
    code, info, _ = grpc_error(err.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.reason == "INVALID_REQUEST" and info.metadata["param"] == "model"
    with pytest.raises(grpc.RpcError) as err:
        list(stub.StreamResponse(req, timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    grpc_still_serving(stub)


def test_grpc_unknown_model(stub, fake):
    with pytest.raises(grpc.RpcError) as err:
        list(stub.StreamResponse(create_request(model="no-such-model"), timeout=10))
    code, info, _ = grpc_error(err.value)
    assert code == grpc.StatusCode.NOT_FOUND
    assert info.reason == "MODEL_NOT_FOUND" and info.metadata["code"] == "model_not_found"
    grpc_still_serving(stub)


def test_grpc_input_of_unknown_shape(stub, fake):
    req = create_request()
    req.input.unknown.CopyFrom(struct_pb2.Value(number_value=5))
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateResponse(req, timeout=10)
    code, info, _ = grpc_error(err.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and info.metadata["param"] == "input"
    grpc_still_serving(stub)


def test_grpc_value_the_upstream_rejects(stub, fake):
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateResponse(create_request(temperature=5.0), timeout=10)
    code, info, _ = grpc_error(err.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.metadata["param"] == "temperature" and info.metadata["upstream_status"] == "400"
    grpc_still_serving(stub)


# --------------------------------------------------------------------------------------- upstream errors
UPSTREAM = [
    ("error-400", 400, grpc.StatusCode.INVALID_ARGUMENT, "invalid_request_error"),
    ("error-429", 429, grpc.StatusCode.RESOURCE_EXHAUSTED, "rate_limit_error"),
    ("error-500", 500, grpc.StatusCode.INTERNAL, "server_error"),
    ("error-503", 503, grpc.StatusCode.UNAVAILABLE, "server_error"),
]


@pytest.mark.parametrize(("scenario", "status", "code", "kind"), UPSTREAM)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_error_rest(http, fake, scenario, status, code, kind, stream):
    fake.enqueue(scenario)
    r = http.post("/v1/responses", json={"model": MODEL, "input": "hi", "stream": stream})
    err = openai_error(r, status)
    assert err["type"] == kind
    if scenario == "error-429":
        assert r.headers["retry-after"] == "1"
        assert err["code"] == "rate_limit_exceeded"
    assert fake.create_requests[-1].scenario == scenario
    still_serving(http)


def test_upstream_error_through_the_sdk(client, fake):
    fake.enqueue("error-429")
    with pytest.raises(openai.RateLimitError) as e:
        client.responses.create(model=MODEL, input="hi")
    assert e.value.response.headers["retry-after"] == "1"
    fake.enqueue("error-503")
    with pytest.raises(openai.InternalServerError) as e2:
        client.responses.create(model=MODEL, input="hi", stream=True)
    assert e2.value.status_code == 503
    assert client.responses.create(model=MODEL, input="hi").status == "completed"


@pytest.mark.parametrize(("scenario", "status", "code", "kind"), UPSTREAM)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_error_grpc(stub, fake, scenario, status, code, kind, stream):
    fake.enqueue(scenario)
    with pytest.raises(grpc.RpcError) as err:
        if stream:
            list(stub.StreamResponse(create_request(), timeout=10))
        else:
            stub.CreateResponse(create_request(), timeout=10)
    got, info, details = grpc_error(err.value)
    assert got == code
    assert info.metadata["upstream_status"] == str(status)
    if scenario == "error-429":
        assert info.reason == "RATE_LIMITED" and info.metadata["retry_after"] == "1"
        retry = [d for d in details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
        assert len(retry) == 1
        ri = error_details_pb2.RetryInfo()
        retry[0].Unpack(ri)
        assert ri.retry_delay.seconds == 1
    grpc_still_serving(stub)


# --------------------------------------------------------------------------------------- auth and limits
@pytest.fixture(scope="module")
def secured_http(secured):
    with httpx.Client(base_url=secured.http_base, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def secured_channel(secured):
    with grpc.insecure_channel(secured.grpc_target) as ch:
        yield ch


KEY = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong-key"}, {"authorization": "Bearer"}, {"authorization": "Basic x"}],
)
def test_rest_bad_or_missing_key(secured_http, fake, headers):
    for method, path in [("POST", "/v1/responses"), ("GET", "/v1/models"), ("GET", "/responses/resp_x")]:
        r = secured_http.request(method, path, json={"model": MODEL, "input": "hi"}, headers=headers)
        err = openai_error(r, 401)
        assert err["code"] == "invalid_api_key"
    assert fake.create_requests == []
    still_serving(secured_http, KEY)


def test_rest_key_through_the_sdk(secured, fake):
    with sdk(f"{secured.http_base}/v1", api_key="wrong") as bad, pytest.raises(openai.AuthenticationError):
        bad.responses.create(model=MODEL, input="hi")
    with sdk(f"{secured.http_base}/v1", api_key=MASTER_KEY) as good:
        assert good.responses.create(model=MODEL, input="hi").status == "completed"
        events = list(good.responses.create(model=MODEL, input="hi", stream=True))
        assert events[-1].type == "response.completed"


def test_rest_healthz_needs_no_key(secured_http):
    r = secured_http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


@pytest.mark.parametrize("metadata", [None, (("authorization", "Bearer wrong-key"),)])
def test_grpc_bad_or_missing_key(secured_channel, fake, metadata):
    stub = responses_service_pb2_grpc.ResponsesServiceStub(secured_channel)
    calls = [
        lambda: stub.CreateResponse(create_request(), timeout=10, metadata=metadata),
        lambda: list(stub.StreamResponse(create_request(), timeout=10, metadata=metadata)),
        lambda: models_pb2_grpc.ModelsServiceStub(secured_channel).ListModels(
            models_pb2.ListModelsRequest(), timeout=10, metadata=metadata
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as err:
            call()
        code, info, _ = grpc_error(err.value)
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert info.reason == "UNAUTHENTICATED"
    assert fake.create_requests == []
    grpc_still_serving(stub, metadata=tuple(KEY.items()))


def test_grpc_health_and_reflection_need_no_key(secured_channel):
    health = health_pb2_grpc.HealthStub(secured_channel)
    for service in ("", "responses_gateway.v1.ResponsesService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(secured_channel)
    replies = list(
        refl.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
    )
    assert "responses_gateway.v1.ResponsesService" in {
        s.name for s in replies[0].list_services_response.service
    }


def test_oversized_body(secured_http, fake):
    big = {"model": MODEL, "input": "x" * (SMALL_BODY_LIMIT * 2)}
    err = openai_error(secured_http.post("/v1/responses", json=big, headers=KEY), 413)
    assert err["type"] == "invalid_request_error" and err["code"] == "request_too_large"

    # Without a content-length (chunked), the limit holds while reading.
    def chunks():
        yield b'{"model": "gpt-4.1", "input": "'
        for _ in range(SMALL_BODY_LIMIT // 512 + 2):
            yield b"x" * 512
        yield b'"}'

    r = secured_http.post(
        "/v1/responses", content=chunks(), headers={**KEY, "content-type": "application/json"}
    )
    openai_error(r, 413)
    assert fake.create_requests == []
    # A body just under the limit is fine.
    fits = {"model": MODEL, "input": "x" * (SMALL_BODY_LIMIT - 100)}
    assert secured_http.post("/v1/responses", json=fits, headers=KEY).status_code == 200
    still_serving(secured_http, KEY)
