"""gateway_settings.http and gateway_settings.metrics: defaults, strictness, and the port clash check."""

from __future__ import annotations

from pathlib import Path

from tests.config.test_loader import error_of, load


def test_defaults(tmp_path: Path) -> None:
    gs = load(tmp_path, "model_list: []\n").config.gateway_settings
    assert (gs.http.header_timeout_seconds, gs.http.body_timeout_seconds, gs.http.max_connections) == (
        10.0,
        30.0,
        1000,
    )
    assert gs.metrics.require_key is False and gs.metrics.port is None


def test_values_are_read(tmp_path: Path) -> None:
    gs = load(
        tmp_path,
        "gateway_settings:\n"
        "  http: {header_timeout_seconds: 2.5, body_timeout_seconds: 60, max_connections: 20}\n"
        "  metrics: {require_key: true, port: 9090}\n",
    ).config.gateway_settings
    assert (gs.http.header_timeout_seconds, gs.http.body_timeout_seconds, gs.http.max_connections) == (
        2.5,
        60.0,
        20,
    )
    assert gs.metrics.require_key is True and gs.metrics.port == 9090


def test_unknown_and_invalid_keys_are_errors(tmp_path: Path) -> None:
    assert "gateway_settings.http.header_timeout: unknown key" in error_of(
        tmp_path, "gateway_settings: {http: {header_timeout: 5}}\n"
    )
    assert "gateway_settings.metrics.requires_key: unknown key" in error_of(
        tmp_path, "gateway_settings: {metrics: {requires_key: true}}\n"
    )
    assert "gateway_settings.http.max_connections" in error_of(
        tmp_path, "gateway_settings: {http: {max_connections: 0}}\n"
    )
    assert "gateway_settings.http.body_timeout_seconds" in error_of(
        tmp_path, "gateway_settings: {http: {body_timeout_seconds: -1}}\n"
    )


def test_metrics_port_must_differ_from_the_api_ports(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "gateway_settings: {http_port: 8080, metrics: {port: 8080}}\n")
    assert "metrics.port 8080 is already the http_port or grpc_port" in msg
