"""/metrics after real traffic (parsed with prometheus_client's own parser) and the JSON request log."""

from __future__ import annotations

import json
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.openai_upstream import FakeOpenAI
from tests.support.process import GatewayProcess

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(gw: GatewayProcess) -> Series:
    text = httpx.get(f"{gw.http_base}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(series: Series, name: str, **labels: str) -> float:
    return series.get((name, tuple(sorted(labels.items()))), 0.0)


def test_the_overhead_histogram_and_the_routing_counters_move(
    gateway: GatewayProcess, upstream: FakeOpenAI
) -> None:
    before = scrape(gateway)
    for stream in (False, True):
        r = httpx.post(
            f"{gateway.http_base}/v1/responses",
            json={"model": "priced", "input": "hi", "stream": stream},
            timeout=30,
        )
        assert r.status_code == 200
    upstream.fail_next(503)
    assert (
        httpx.post(f"{gateway.http_base}/v1/responses", json={"model": "priced", "input": "hi"}).status_code
        == 200
    )
    after = scrape(gateway)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("responses_gateway_overhead_seconds_count", mode="unary") == 2
    assert moved("responses_gateway_overhead_seconds_count", mode="stream") == 1
    overhead = moved("responses_gateway_overhead_seconds_sum", mode="unary")
    total = moved("responses_gateway_response_duration_seconds_sum", model="priced", mode="unary")
    assert 0 < overhead < total  # the gateway's share is part of the total, not all of it
    assert moved("responses_gateway_time_to_first_event_seconds_count", model="priced") == 1
    assert moved("responses_gateway_inter_event_gap_seconds_count", model="priced") == 1
    assert moved("responses_gateway_retries_total", model="priced", reason="UPSTREAM_UNAVAILABLE") == 1
    assert moved("responses_gateway_cost_usd_total", model="priced") > 0
    assert (
        moved(
            "responses_gateway_responses_total",
            model="priced",
            provider="openai",
            mode="unary",
            status="completed",
        )
        == 2
    )
    assert moved("responses_gateway_tokens_total", model="priced", kind="output") > 0
    assert value(after, "responses_gateway_active_streams") == 0  # the stream ended and was counted off


def test_one_json_line_per_request(gateway: GatewayProcess, upstream: FakeOpenAI) -> None:
    r = httpx.post(f"{gateway.http_base}/v1/responses", json={"model": "custom", "input": "secret words"})
    rid = r.headers["x-request-id"]
    deadline = time.monotonic() + 5
    lines: list[dict[str, object]] = []
    while not lines and time.monotonic() < deadline:
        lines = [json.loads(x) for x in gateway.lines if x.startswith("{") and rid in x]
        time.sleep(0.05)
    assert len(lines) == 1, gateway.log[-2000:]
    line = lines[0]
    assert line["model"] == "custom" and line["deployment"] == "custom-1" and line["status"] == "completed"
    assert line["response_id"] == r.json()["id"] and line["attempts"] == 1
    assert (
        line["cost"] == r.json()["usage"]["cost"]
        and line["input_tokens"] == r.json()["usage"]["input_tokens"]
    )
    assert isinstance(line["latency_ms"], float) and line["latency_ms"] > 0
    assert "secret words" not in json.dumps(line)  # prompts only when configured
