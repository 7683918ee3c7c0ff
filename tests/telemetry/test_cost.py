"""usage.cost, x-gateway-cost and the gRPC trailers: what the price table (or the deployment's own
prices) says for the usage the upstream reported, on every surface; unknown, never 0, without a price."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import grpc
import httpx
import openai
import pytest
from genai_prices import Usage, calc_price

from responses_gateway.v1 import request_pb2, responses_service_pb2_grpc
from tests.fakes.openai_upstream import FakeOpenAI
from tests.support.process import GatewayProcess
from tests.support.spec import BothSpecs
from tests.support.sse import sse_events
from tests.telemetry.conftest import CUSTOM


def table_cost(response: dict[str, Any]) -> float:
    """The price table's own answer (genai-prices' calculator, not the gateway's cached rates)."""
    u = response["usage"]
    usage = Usage(
        input_tokens=u["input_tokens"],
        cache_read_tokens=u["input_tokens_details"]["cached_tokens"],
        output_tokens=u["output_tokens"],
    )
    return float(calc_price(usage, response["model"], provider_id="openai").total_price)


def post(gw: GatewayProcess, model: str, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{gw.http_base}/v1/responses", json={"model": model, "input": "hi", **body}, timeout=30
    )


def test_cost_equals_the_price_table(gateway: GatewayProcess, upstream: FakeOpenAI) -> None:
    r = post(gateway, "priced")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0
    expected = table_cost(body)
    assert expected > 0
    assert body["usage"]["cost"] == pytest.approx(expected, rel=1e-9)
    assert Decimal(r.headers["x-gateway-cost"]) == pytest.approx(Decimal(str(expected)), rel=Decimal("1e-6"))
    BothSpecs().check_response(body)  # an extra usage field is allowed by both specs
    # Stored as served: GET has the same cost.
    got = httpx.get(f"{gateway.http_base}/v1/responses/{body['id']}", timeout=10).json()
    assert got["usage"]["cost"] == body["usage"]["cost"]


def test_the_deployments_own_prices_win(gateway: GatewayProcess, upstream: FakeOpenAI) -> None:
    body = post(gateway, "custom").json()
    u = body["usage"]
    cached = u["input_tokens_details"]["cached_tokens"]
    expected = (
        (u["input_tokens"] - cached) * CUSTOM["input_cost_per_token"]
        + cached * CUSTOM["cache_read_input_token_cost"]
        + u["output_tokens"] * CUSTOM["output_cost_per_token"]
    )
    assert u["cost"] == pytest.approx(expected, rel=1e-12)
    assert u["cost"] != pytest.approx(table_cost(body))


def test_a_model_without_a_price_says_unknown(gateway: GatewayProcess) -> None:
    r = post(gateway, "mock")
    assert r.status_code == 200
    usage = r.json().get("usage")
    assert usage is not None and "cost" not in usage
    assert r.headers["x-gateway-cost"] == "unknown"


def test_streams_carry_the_cost_in_the_terminal_event(gateway: GatewayProcess, upstream: FakeOpenAI) -> None:
    r = post(gateway, "priced", stream=True)
    events = sse_events(r)
    final = events[-1]["response"]
    assert events[-1]["type"] == "response.completed"
    assert final["usage"]["cost"] == pytest.approx(table_cost(final), rel=1e-9)
    assert r.headers["x-gateway-deployment"] == "priced-1" and r.headers["x-request-id"].startswith("req_")


def test_the_openai_sdk_reads_usage_cost(gateway: GatewayProcess, upstream: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=f"{gateway.http_base}/v1", api_key="unused", max_retries=0)
    raw = client.responses.with_raw_response.create(model="priced", input="hi")
    response = raw.parse()
    assert response.usage is not None
    cost = (response.usage.model_extra or {})["cost"]
    assert cost == pytest.approx(float(raw.headers["x-gateway-cost"]), rel=1e-6)
    assert cost == pytest.approx(table_cost(response.model_dump()), rel=1e-9)


def test_grpc_trailers_name_the_deployment_the_cost_and_the_request_id(
    gateway: GatewayProcess, upstream: FakeOpenAI
) -> None:
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = responses_service_pb2_grpc.ResponsesServiceStub(channel)
        request = request_pb2.CreateResponseRequest(model="priced")
        request.input.text = "hi"
        response, call = stub.CreateResponse.with_call(request, timeout=20)
        trailers = dict(call.trailing_metadata())
        assert trailers["x-gateway-deployment"] == "priced-1" and trailers["x-gateway-model"] == "priced"
        assert float(trailers["x-gateway-cost"]) == pytest.approx(
            response.usage.extra_fields["cost"].number_value
        )
        assert response.usage.extra_fields["cost"].number_value > 0
        # The request id the client got is the one the upstream was sent.
        assert upstream.create_requests[-1].headers["x-request-id"] == trailers["x-request-id"]

        stream = stub.StreamResponse(request, timeout=20)
        last = list(stream)[-1]
        trailers = dict(stream.trailing_metadata())
        assert float(trailers["x-gateway-cost"]) > 0
        assert last.WhichOneof("kind") == "response_completed"


def test_the_request_id_is_returned_and_sent_upstream(gateway: GatewayProcess, upstream: FakeOpenAI) -> None:
    r = post(gateway, "priced")
    assert upstream.create_requests[-1].headers["x-request-id"] == r.headers["x-request-id"]
