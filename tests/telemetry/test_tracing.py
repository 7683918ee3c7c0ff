"""OpenTelemetry spans in an in-memory exporter: GenAI attributes, the caller's trace continued, and
the upstream call made a child of the gateway's span (traceparent sent on)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from responses_gateway.telemetry import tracing
from tests.fakes.openai_upstream import FakeOpenAI
from tests.support.inprocess import InProcessGateway
from tests.telemetry.conftest import config

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def traced(fake: FakeOpenAI, tmp_path: Path) -> Iterator[tuple[InProcessGateway, InMemorySpanExporter]]:
    gw = InProcessGateway(config(tmp_path / "g.yaml", fake.api_base, tmp_path / "r.db"))
    exporter = InMemorySpanExporter()
    tracing.configure(True, exporter=exporter)
    try:
        yield gw, exporter
    finally:
        tracing.configure(False)
        gw.close()


def test_spans_carry_the_genai_attributes(
    traced: tuple[InProcessGateway, InMemorySpanExporter], upstream: FakeOpenAI
) -> None:
    gw, exporter = traced
    r = httpx.post(
        f"{gw.http_base}/v1/responses",
        json={"model": "priced", "input": "hi", "temperature": 0.5, "max_output_tokens": 50},
        headers={"traceparent": CALLER},
        timeout=30,
    )
    assert r.status_code == 200
    body = r.json()
    (span,) = exporter.get_finished_spans()
    a = span.attributes or {}
    assert span.name == "chat priced"
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "priced"
    assert a["gen_ai.response.model"] == body["model"] and a["gen_ai.response.id"] == body["id"]
    assert a["gen_ai.usage.input_tokens"] == body["usage"]["input_tokens"]
    assert a["gen_ai.usage.output_tokens"] == body["usage"]["output_tokens"]
    assert a["gen_ai.request.temperature"] == 0.5 and a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.provider.name"] == "openai" and a["gateway.deployment"] == "priced-1"
    assert a["gateway.cost_usd"] == pytest.approx(body["usage"]["cost"])
    # The caller's trace goes on, and the upstream call is the gateway span's child.
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None and f"{span.parent.span_id:016x}" == "00f067aa0ba902b7"
    sent = upstream.create_requests[-1].headers["traceparent"]
    assert sent == f"00-{TRACE_ID}-{span.context.span_id:016x}-01"


def test_tracing_is_off_by_default_and_the_callers_context_still_goes_upstream(
    fake: FakeOpenAI, tmp_path: Path, upstream: FakeOpenAI
) -> None:
    gw = InProcessGateway(config(tmp_path / "g.yaml", fake.api_base, tmp_path / "r.db"))
    try:
        assert not tracing.enabled()
        r = httpx.post(
            f"{gw.http_base}/v1/responses",
            json={"model": "priced", "input": "hi"},
            headers={"traceparent": CALLER},
            timeout=30,
        )
        assert r.status_code == 200
        # Without a span of its own the gateway passes the caller's trace context on as it came.
        assert upstream.create_requests[-1].headers["traceparent"] == CALLER
    finally:
        gw.close()


def test_litellm_callbacks_otel_turns_tracing_on(tmp_path: Path) -> None:
    from responses_gateway.config.models import GatewayConfig
    from responses_gateway.telemetry import setup

    try:
        setup.configure(GatewayConfig.model_validate({"litellm_settings": {"callbacks": ["otel"]}}))
        assert tracing.enabled()
        setup.configure(GatewayConfig())
        assert not tracing.enabled()
    finally:
        tracing.configure(False)
