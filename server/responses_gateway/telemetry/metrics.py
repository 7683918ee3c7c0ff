"""Prometheus metrics, recorded by the domain layer so both transports count alike.

Recorded once per response (not per stream event), so they cost nothing on the delta path.

Under `serve --workers N` the supervisor sets PROMETHEUS_MULTIPROC_DIR (fresh per run) before the
workers start: prometheus-client then keeps every value in a per-process file there, and `exposition`
sums the files, so whichever worker serves /metrics shows the whole gateway. Counters and histograms
add up; each Gauge says how (`multiprocess_mode`); a dead worker's gauges drop out (`mark_process_dead`
in the supervisor) while its counts stay.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from responses_gateway.errors import GatewayError
from responses_gateway.v1 import response_pb2

RESPONSES = Counter(
    "responses_gateway_responses_total",
    "Responses finished, by the model_name that served (a fallback's, after a fallback), its provider, "
    "mode (unary / stream / background) and final status.",
    ["model", "provider", "mode", "status"],
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
OVERHEAD = Histogram(
    "responses_gateway_overhead_seconds",
    "The gateway's own share of a response's time: the total minus the upstream's (from the first "
    "upstream call to the upstream's last event), by mode.",
    ["mode"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
TTFT = Histogram(
    "responses_gateway_time_to_first_event_seconds",
    "Streams: time from request to the upstream's first event, by model.",
    ["model"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
GAP = Histogram(
    "responses_gateway_inter_event_gap_seconds",
    "Streams: the mean time between two upstream events of a response (one sample per response), by model.",
    ["model"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
TOKENS = Counter(
    "responses_gateway_tokens_total",
    "Tokens reported by upstreams, by model and kind (input, cached_input, output, reasoning).",
    ["model", "kind"],
)
COST = Counter(
    "responses_gateway_cost_usd_total",
    "What responses cost (USD, from the price table or the deployment's prices), by model.",
    ["model"],
)
UNPRICED = Counter(
    "responses_gateway_unpriced_responses_total",
    "Responses with usage whose model has no price (their cost is unknown, not 0), by model.",
    ["model"],
)
RETRIES = Counter(
    "responses_gateway_retries_total",
    "Upstream calls retried (same or another deployment), by requested model and the failure's reason.",
    ["model", "reason"],
)
FALLBACKS = Counter(
    "responses_gateway_fallbacks_total",
    "Moves to a fallback model group, by the model asked for and the fallback.",
    ["model", "fallback"],
)
COOLDOWNS = Counter(
    "responses_gateway_cooldowns_total",
    "Deployments put in cooldown after allowed_fails failures in a row, by deployment id.",
    ["deployment"],
)
HTTP_CLOSED = Counter(
    "responses_gateway_http_connections_closed_total",
    "HTTP connections the server closed to bound its resources, by reason (header_timeout, "
    "body_timeout, max_connections).",
    ["reason"],
)
ACTIVE_STREAMS = Gauge(
    "responses_gateway_active_streams",
    "Responses currently streaming (background ones included).",
    multiprocess_mode="livesum",
)
CONFIG_RELOADS = Counter(
    "responses_gateway_config_reloads_total",
    "Config reloads (SIGHUP, POST /config/reload), by result: applied, or refused (the previous config "
    "keeps serving).",
    ["result"],
)
CONFIG_RELOAD_OK = Gauge(
    "responses_gateway_config_last_reload_ok",
    "1 when the last config reload was applied (or none was tried), 0 when it was refused.",
    multiprocess_mode="livemin",  # 0 when any worker refused its reload
)
CONFIG_RETIRING = Gauge(
    "responses_gateway_config_retiring",
    "Replaced configs whose calls in flight still run on them (their upstream connections close after).",
    multiprocess_mode="livesum",
)
CONFIG_RELOAD_OK.set(1)

_STATUS = {
    v.number: v.name.removeprefix("RESPONSE_STATUS_").lower()
    for v in response_pb2.ResponseStatus.DESCRIPTOR.values
}


def status_name(status: int) -> str:
    return _STATUS.get(status, "unknown")


class _Series:
    """One model's and mode's children, looked up once: `.labels()` hashes and locks every call."""

    __slots__ = (
        "cached",
        "cost",
        "duration",
        "gap",
        "input",
        "output",
        "overhead",
        "reasoning",
        "responses",
        "ttft",
        "unpriced",
    )

    def __init__(self, model: str, mode: str) -> None:
        self.duration = DURATION.labels(model, mode)
        self.overhead = OVERHEAD.labels(mode)
        self.ttft = TTFT.labels(model)
        self.gap = GAP.labels(model)
        self.input = TOKENS.labels(model, "input")
        self.cached = TOKENS.labels(model, "cached_input")
        self.output = TOKENS.labels(model, "output")
        self.reasoning = TOKENS.labels(model, "reasoning")
        self.cost = COST.labels(model)
        self.unpriced = UNPRICED.labels(model)
        self.responses: dict[tuple[str, int], Any] = {}  # (provider, status) -> RESPONSES child


_SERIES: dict[tuple[str, str], _Series] = {}
_SERIES_LIMIT = 10_000  # wildcard deployments name models after requests: bound the cache, not the metric


def _series(model: str, mode: str) -> _Series:
    key = (model, mode)
    found = _SERIES.get(key)
    if found is None:
        if len(_SERIES) >= _SERIES_LIMIT:
            _SERIES.clear()
        found = _SERIES[key] = _Series(model, mode)
    return found


def observe_response(
    model: str,
    mode: str,
    response: response_pb2.Response,
    seconds: float,
    *,
    provider: str = "",
    overhead: float | None = None,
    first_event: float | None = None,
    gap: float | None = None,
    cost: float | None = None,
) -> None:
    """Once per response. `model` is the model_name that served; `first_event` / `gap` for streams."""
    series = _series(model, mode)
    status = response.status
    counted = series.responses.get((provider, status))
    if counted is None:
        counted = series.responses[(provider, status)] = RESPONSES.labels(
            model, provider, mode, status_name(status)
        )
    counted.inc()
    series.duration.observe(seconds)
    if overhead is not None:
        series.overhead.observe(overhead)
    if first_event is not None:
        series.ttft.observe(first_event)
    if gap is not None:
        series.gap.observe(gap)
    if response.HasField("usage"):
        u = response.usage
        series.input.inc(u.input_tokens)
        series.cached.inc(u.input_tokens_details.cached_tokens)
        series.output.inc(u.output_tokens)
        series.reasoning.inc(u.output_tokens_details.reasoning_tokens)
        if cost is None:
            series.unpriced.inc()
        else:
            series.cost.inc(cost)


def observe_retry(model: str, reason: str) -> None:
    RETRIES.labels(model, reason).inc()


def observe_fallback(model: str, fallback: str) -> None:
    FALLBACKS.labels(model, fallback).inc()


def observe_cooldown(deployment: str) -> None:
    COOLDOWNS.labels(deployment).inc()


def observe_error(operation: str, error: GatewayError) -> None:
    ERRORS.labels(operation, error.reason.value).inc()


def observe_http_closed(reason: str) -> None:
    HTTP_CLOSED.labels(reason).inc()


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every worker's files, read at each scrape (a registry of its own: the collector must not
        # be registered where this process's own values would be counted a second time).
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
