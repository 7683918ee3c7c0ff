"""Turns the telemetry the config asks for on: the request log and the traces."""

from __future__ import annotations

from responses_gateway.config.models import GatewayConfig
from responses_gateway.telemetry import requestlog, tracing

OTEL_CALLBACK = "otel"  # LiteLLM's name of its OpenTelemetry callback


def configure(config: GatewayConfig) -> None:
    t = config.gateway_settings.telemetry
    requestlog.configure(t.request_log)
    ls = config.litellm_settings
    asked = OTEL_CALLBACK in (ls.callbacks or [])
    tracing.configure(
        t.otel.enabled or asked,
        endpoint=t.otel.endpoint,
        headers=t.otel.headers or None,
        service_name=t.otel.service_name,
    )
