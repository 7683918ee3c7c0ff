"""Telemetry: Prometheus metrics (served on the REST port at /metrics)."""
