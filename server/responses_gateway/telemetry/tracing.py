"""OpenTelemetry traces after the GenAI semantic conventions: one CLIENT span per response.

Off unless `gateway_settings.telemetry.otel.enabled` or LiteLLM's `callbacks: ["otel"]`; then spans go
to an OTLP/HTTP exporter (or the exporter a test hands `configure`). The span continues the caller's W3C
trace context (HTTP `traceparent` / gRPC metadata of the same name) and is the parent of the upstream
call (`record.outbound_headers`). The gateway keeps its own TracerProvider rather than the global one,
so embedding it does not take over the host's tracing.
"""

from __future__ import annotations

import logging
from typing import Any

from responses_gateway.telemetry.record import CallRecord
from responses_gateway.v1 import request_pb2, response_pb2

log = logging.getLogger(__name__)
_tracer: Any = None
_provider: Any = None
_STATUS_ERROR = {response_pb2.RESPONSE_STATUS_FAILED}


def configure(
    enabled: bool,
    *,
    endpoint: str | None = None,
    headers: dict[str, str] | None = None,
    service_name: str = "responses-gateway",
    exporter: Any = None,
) -> None:
    """Set tracing up (or off). `exporter`: a SpanExporter to use instead of OTLP (tests)."""
    global _tracer, _provider
    shutdown()
    if not enabled:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, headers=headers)))
    _provider = provider
    _tracer = provider.get_tracer("responses_gateway")


def enabled() -> bool:
    return _tracer is not None


def shutdown() -> None:
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def start(record: CallRecord, request: request_pb2.CreateResponseRequest) -> None:
    if _tracer is None:
        return
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {"traceparent": record.traceparent or "", "tracestate": record.tracestate or ""}
    parent = TraceContextTextMapPropagator().extract(carrier) if record.traceparent else None
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": request.model,
        "gateway.request_id": record.request_id,
    }
    if request.HasField("temperature"):
        attributes["gen_ai.request.temperature"] = request.temperature
    if request.HasField("top_p"):
        attributes["gen_ai.request.top_p"] = request.top_p
    if request.HasField("max_output_tokens"):
        attributes["gen_ai.request.max_tokens"] = request.max_output_tokens
    record.span = _tracer.start_span(
        f"chat {request.model}", context=parent, kind=SpanKind.CLIENT, attributes=attributes
    )
    record.on_end.append(_end_unfinished)


def finish(record: CallRecord, response: response_pb2.Response) -> None:
    span = record.span
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("gen_ai.provider.name", record.provider)
    span.set_attribute("gen_ai.response.model", response.model)
    span.set_attribute("gen_ai.response.id", response.id)
    span.set_attribute("gen_ai.response.finish_reasons", [record.status])
    span.set_attribute("gateway.deployment", record.deployment)
    span.set_attribute("gateway.model", record.served_model)
    span.set_attribute("gateway.attempts", record.attempts)
    span.set_attribute("gateway.fallbacks", record.fallbacks)
    if response.HasField("usage"):
        span.set_attribute("gen_ai.usage.input_tokens", response.usage.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", response.usage.output_tokens)
    if record.cost is not None:
        span.set_attribute("gateway.cost_usd", record.cost)
    if response.status in _STATUS_ERROR:
        code = response.error.code or "server_error"
        span.set_attribute("error.type", code)
        span.set_status(Status(StatusCode.ERROR, response.error.message))
    span.end()
    record.span_done = True


def _end_unfinished(record: CallRecord | None) -> None:
    """The call ended without a response (an error before the first event, the client gone)."""
    if record is not None and record.span is not None and not record.span_done:
        from opentelemetry.trace import Status, StatusCode

        record.span.set_attribute("error.type", "no_response")
        record.span.set_status(Status(StatusCode.ERROR))
        record.span.end()
        record.span_done = True
