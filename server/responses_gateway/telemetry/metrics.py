"""Prometheus metrics, recorded by the domain layer so both transports count alike.

Recorded once per response (not per stream event), so they cost nothing on the delta path.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from responses_gateway.errors import GatewayError
from responses_gateway.v1 import response_pb2

RESPONSES = Counter(
    "responses_gateway_responses_total",
    "Responses finished, by model, mode (unary / stream / background) and final status.",
    ["model", "mode", "status"],
)
ERRORS = Counter(
    "responses_gateway_errors_total",
    "Requests that failed before a response began, by operation (REST route template such as "
    "/v1/responses/{response_id}, 'unmatched', or gRPC method) and error reason.",
    ["operation", "reason"],
)
DURATION = Histogram(
    "responses_gateway_response_duration_seconds",
    "Time from request to the final event, by model and mode.",
    ["model", "mode"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
TOKENS = Counter(
    "responses_gateway_tokens_total",
    "Tokens reported by upstreams, by model and kind (input, cached_input, output, reasoning).",
    ["model", "kind"],
)
HTTP_CLOSED = Counter(
    "responses_gateway_http_connections_closed_total",
    "HTTP connections the server closed to bound its resources, by reason (header_timeout, "
    "body_timeout, max_connections).",
    ["reason"],
)
ACTIVE_STREAMS = Gauge("responses_gateway_active_streams", "Responses currently streaming.")

_STATUS = {
    v.number: v.name.removeprefix("RESPONSE_STATUS_").lower()
    for v in response_pb2.ResponseStatus.DESCRIPTOR.values
}


def observe_response(model: str, mode: str, response: response_pb2.Response, seconds: float) -> None:
    RESPONSES.labels(model, mode, _STATUS.get(response.status, "unknown")).inc()
    DURATION.labels(model, mode).observe(seconds)
    if response.HasField("usage"):
        u = response.usage
        TOKENS.labels(model, "input").inc(u.input_tokens)
        TOKENS.labels(model, "cached_input").inc(u.input_tokens_details.cached_tokens)
        TOKENS.labels(model, "output").inc(u.output_tokens)
        TOKENS.labels(model, "reasoning").inc(u.output_tokens_details.reasoning_tokens)


def observe_error(operation: str, error: GatewayError) -> None:
    ERRORS.labels(operation, error.reason.value).inc()


def observe_http_closed(reason: str) -> None:
    HTTP_CLOSED.labels(reason).inc()


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
