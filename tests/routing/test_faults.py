"""Injected upstream faults, end to end: the client sees a success served by a healthy deployment, and
the response says who served it (x-gateway-deployment / x-gateway-model / x-gateway-attempts)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.fakes.openai_upstream import FakeOpenAI
from tests.routing.conftest import entry
from tests.support.process import GatewayProcess
from tests.support.sse import sse_events

CONTEXT_ERROR = {
    "error": {
        "message": "This model's maximum context length is 1047576 tokens. However, your messages "
        "resulted in 2000000 tokens.",
        "type": "invalid_request_error",
        "param": "input",
        "code": "context_length_exceeded",
    }
}
POLICY_ERROR = {
    "error": {
        "message": "Your request was rejected as a result of our safety system.",
        "type": "invalid_request_error",
        "param": None,
        "code": "content_policy_violation",
    }
}


def post(gw: GatewayProcess, model: str, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{gw.http_base}/v1/responses", json={"model": model, "input": "hi", **body}, timeout=30
    )


def test_retries_and_fallbacks_reach_a_healthy_deployment(
    spawn: Callable[..., GatewayProcess], upstreams: dict[str, FakeOpenAI], dead_base: str
) -> None:
    a, b, c = upstreams["a"], upstreams["b"], upstreams["c"]
    gw = spawn(
        [
            entry("solo", "solo-a", a.api_base),
            entry("refused", "refused-dead", dead_base),
            entry("slow", "slow-c", c.api_base, timeout=0.5, stream_timeout=0.5),
            entry("small", "small-a", a.api_base),
            entry("strict", "strict-a", a.api_base),
            entry("big", "big-b", b.api_base),
        ],
        router_settings={"num_retries": 2, "retry_after": 0},
        litellm_settings={
            # LiteLLM's docs place these here too; router_settings would win.
            "fallbacks": [{"refused": ["big"]}, {"slow": ["big"]}],
            "context_window_fallbacks": [{"small": ["big"]}],
            "content_policy_fallbacks": [{"strict": ["big"]}],
        },
    )

    # 500 then 503: the third try on the same deployment answers.
    a.fail_next(500)
    a.fail_next(503)
    r = post(gw, "solo")
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-deployment"] == "solo-a" and r.headers["x-gateway-attempts"] == "3"
    assert r.json()["status"] == "completed"

    # 429 with Retry-After: 1 -> the gateway waits that long, then succeeds.
    a.fail_next(429, retry_after=1)
    started = time.monotonic()
    r = post(gw, "solo")
    assert r.status_code == 200 and r.headers["x-gateway-attempts"] == "2"
    assert time.monotonic() - started >= 0.95

    # Connection refused on every try -> the fallback model serves; the response says so.
    r = post(gw, "refused")
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-model"] == "big" and r.headers["x-gateway-deployment"] == "big-b"
    assert r.headers["x-gateway-attempts"] == "4"  # 1 + 2 retries on the dead one, then the fallback

    # A slow upstream (sends nothing) times out and falls back, streaming too, before any event.
    c.stall_after = 0
    r = post(gw, "slow", stream=True)
    assert r.status_code == 200 and r.headers["x-gateway-model"] == "big"
    events = sse_events(r)
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.completed"

    # A context-length refusal is not retried: the context-window fallback serves at once.
    before_a, before_b = len(a.create_requests), len(b.create_requests)
    a.fail_next(400, body=CONTEXT_ERROR)
    r = post(gw, "small")
    assert r.status_code == 200 and r.headers["x-gateway-model"] == "big"
    assert len(a.create_requests) == before_a + 1 and len(b.create_requests) == before_b + 1

    a.fail_next(400, body=POLICY_ERROR)
    r = post(gw, "strict")
    assert r.status_code == 200 and r.headers["x-gateway-deployment"] == "big-b"

    # Without a fallback for it, the client gets the upstream's 400 as it was.
    a.fail_next(400, body=CONTEXT_ERROR)
    r = post(gw, "solo")
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"


def test_a_stream_failing_before_its_first_event_falls_back_invisibly(
    spawn: Callable[..., GatewayProcess], upstreams: dict[str, FakeOpenAI]
) -> None:
    a, b = upstreams["a"], upstreams["b"]
    gw = spawn(
        [entry("m", "m-a", a.api_base), entry("backup", "backup-b", b.api_base)],
        router_settings={"num_retries": 0, "fallbacks": [{"m": ["backup"]}]},
    )
    a.fail_next(503)
    r = post(gw, "m", stream=True)
    assert r.status_code == 200 and r.headers["x-gateway-deployment"] == "backup-b"
    types = [e["type"] for e in sse_events(r)]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "error" not in types and "response.failed" not in types


def test_a_stream_failing_after_created_but_before_output_falls_back_invisibly(
    spawn: Callable[..., GatewayProcess], upstreams: dict[str, FakeOpenAI]
) -> None:
    a, b = upstreams["a"], upstreams["b"]
    gw = spawn(
        [entry("m", "m-a", a.api_base, stream_timeout=0.5), entry("backup", "backup-b", b.api_base)],
        router_settings={"num_retries": 0, "fallbacks": [{"m": ["backup"]}]},
    )
    a.stall_after = 2  # response.created and response.in_progress, then silence
    try:
        r = post(gw, "m", stream=True)
    finally:
        a.stall_after = None
    assert r.status_code == 200 and r.headers["x-gateway-deployment"] == "backup-b"
    events = sse_events(r)
    types = [e["type"] for e in events]
    assert types.count("response.created") == 1 and types[-1] == "response.completed"
    assert "response.failed" not in types and "error" not in types
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    # One response: the one the backup made, from its first event to its last.
    assert {e["response"]["id"] for e in events if "response" in e} == {events[-1]["response"]["id"]}


def test_a_stream_that_stops_halfway_ends_with_a_clean_failure(
    spawn: Callable[..., GatewayProcess], upstreams: dict[str, FakeOpenAI]
) -> None:
    a = upstreams["a"]
    gw = spawn([entry("m", "m-a", a.api_base, stream_timeout=0.5)], router_settings={"num_retries": 2})
    for setup in (lambda: a.enqueue("disconnect"), lambda: setattr(a, "stall_after", 3)):
        setup()
        before = len(a.create_requests)
        r = post(gw, "m", stream=True)
        assert r.status_code == 200
        events = sse_events(r)
        assert events[-1]["type"] == "response.failed", events[-1]
        assert events[-1]["response"]["error"]["code"] == "server_error"
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        # Output had begun: no retry (the client saw events already).
        assert len(a.create_requests) == before + 1
        a.stall_after = None


def test_cooldown_after_allowed_fails_and_the_return(
    spawn: Callable[..., GatewayProcess], upstreams: dict[str, FakeOpenAI]
) -> None:
    a, b = upstreams["a"], upstreams["b"]
    gw = spawn(
        [entry("m", "m-a", a.api_base), entry("m", "m-b", b.api_base)],
        router_settings={
            "routing_strategy": "round-robin",
            "num_retries": 1,
            "allowed_fails": 1,
            "cooldown_time": 2,
        },
    )
    a.fail_next(503, times=1)
    served = [post(gw, "m").headers["x-gateway-deployment"] for _ in range(2)]
    assert served == ["m-b", "m-b"]  # a's failure moved the first on to b; then a is cooling down
    tried_a = len(a.create_requests)
    assert tried_a == 1
    for _ in range(6):
        r = post(gw, "m")
        assert r.headers["x-gateway-deployment"] == "m-b" and r.headers["x-gateway-attempts"] == "1"
    assert len(a.create_requests) == tried_a  # never tried while cooling down
    time.sleep(2.1)
    back = {post(gw, "m").headers["x-gateway-deployment"] for _ in range(4)}
    assert back == {"m-a", "m-b"}
    metrics = httpx.get(f"{gw.http_base}/metrics").text
    assert 'responses_gateway_cooldowns_total{deployment="m-a"} 1.0' in metrics
