"""The chart's response store, replicas and metrics values: what it refuses (and says to set instead),
the shared stores' URL from a Secret, and the metrics port and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import (
    CHART,
    STORE_URL_ENV,
    by_kind,
    check_hardened,
    check_pod_wiring,
    gateway_container,
    one,
    render,
    run_helm,
    store_env,
    values_file,
)
from tests.helm.scenarios import SCENARIOS

SHARED_STORE_HINT = "store.type=postgres or store.type=redis with store.url.secretName"

# Values the chart must refuse, and what the message has to say: what is wrong and what to set.
FAILS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "sqlite-replicas": (
        {"replicaCount": 2},
        ("replicaCount=2 with store.type=sqlite", "Set replicaCount=1", SHARED_STORE_HINT),
    ),
    "sqlite-hpa": (
        {"autoscaling": {"enabled": True}},
        (
            "autoscaling.enabled=true with store.type=sqlite",
            "Set autoscaling.enabled=false",
            SHARED_STORE_HINT,
        ),
    ),
    "sqlite-hpa-emptydir": (  # not the volume alone: separate files are the problem
        {"autoscaling": {"enabled": True}, "store": {"sqlite": {"persistence": {"enabled": False}}}},
        ("autoscaling.enabled=true with store.type=sqlite", SHARED_STORE_HINT),
    ),
    "postgres-no-secret": (
        {"store": {"type": "postgres"}},
        ("store.type=postgres reads its URL from a Secret", "set store.url.secretName"),
    ),
    "redis-no-secret": (
        {"store": {"type": "redis"}, "replicaCount": 3},
        ("store.type=redis reads its URL from a Secret", "set store.url.secretName"),
    ),
    "sqlite-pvc-rolling-update": (
        {"updateStrategy": {"type": "RollingUpdate"}},
        (
            "updateStrategy.type=RollingUpdate with SQLite on a PersistentVolumeClaim",
            "Set updateStrategy.type=Recreate",
        ),
    ),
    "store-type-in-config": (
        {"config": {"gateway_settings": {"store": {"type": "postgres"}}}},
        ("config.gateway_settings.store.type is rendered by the chart", "set store.type instead"),
    ),
    "store-url-in-config": (
        {"config": {"gateway_settings": {"store": {"url": "postgresql://u:pw@db/gw"}}}},
        ("config.gateway_settings.store.url", "set store.url.secretName and store.url.secretKey instead"),
    ),
    "store-ttl-in-config": (
        {"config": {"gateway_settings": {"store": {"ttl": "30d"}}}},
        ("config.gateway_settings.store.ttl", "set store.ttl instead"),
    ),
    "store-lease-in-config": (
        {"config": {"gateway_settings": {"store": {"lease_seconds": 20}}}},
        ("config.gateway_settings.store.lease_seconds", "set store.leaseSeconds instead"),
    ),
    "store-path-in-config": (
        {"config": {"gateway_settings": {"store": {"path": "/data/x.db"}}}},
        ("config.gateway_settings.store.path", "set store.sqlite.path instead"),
    ),
    "metrics-in-config": (
        {"config": {"gateway_settings": {"metrics": {"port": 9090}}}},
        (
            "config.gateway_settings.metrics is rendered by the chart",
            "set metrics.port and metrics.requireKey",
        ),
    ),
    "metrics-port-clash": (
        {"metrics": {"port": 8080}},
        ("metrics.port=8080 is already containerPorts.grpc or containerPorts.http",),
    ),
    "metrics-key-without-credentials": (
        {"metrics": {"requireKey": True, "serviceMonitor": {"enabled": True}}},
        ("metrics.requireKey=true", "Set metrics.serviceMonitor.authorization.secretName"),
    ),
}


@pytest.mark.parametrize("case", sorted(FAILS))
def test_refused_values_say_what_to_set(helm: Path, tmp_path: Path, case: str) -> None:
    values, wanted = FAILS[case]
    proc = run_helm(helm, "template", "rg", CHART, "--values", values_file(tmp_path, values), check=False)
    assert proc.returncode != 0, f"rendered {values}"
    message = proc.stderr.replace("\n", " ")
    assert "execution error" in message, message  # a `fail`, not a schema or YAML error
    for text in wanted:
        assert text in message, f"{text!r} not in: {message}"


@pytest.mark.parametrize(
    ("scenario", "secret", "key"), [("postgres", "gw-store", "dsn"), ("redis", "gw-redis", "url")]
)
def test_shared_store_url_from_secret(
    helm: Path, tmp_path: Path, scenario: str, secret: str, key: str
) -> None:
    values = SCENARIOS[scenario]
    docs = render(helm, tmp_path, values)
    deployment = one(docs, "Deployment")
    c = gateway_container(deployment)
    config = yaml.safe_load(one(docs, "ConfigMap")["data"]["gateway.yaml"])
    store = config["gateway_settings"]["store"]

    # The URL never appears in the config: a reference to the variable the Secret fills.
    assert store["type"] == values["store"]["type"]
    assert store["url"] == f"os.environ/{STORE_URL_ENV}"
    assert store_env(c)["valueFrom"] == {"secretKeyRef": {"name": secret, "key": key}}
    assert "path" not in store
    assert store["ttl"] == values["store"]["ttl"]
    assert store.get("lease_seconds") == values["store"].get("leaseSeconds")

    # No SQLite: no data volume, no claim, and rolling updates are fine.
    assert not by_kind(docs, "PersistentVolumeClaim")
    pod = deployment["spec"]["template"]["spec"]
    assert "gateway-data" not in {v["name"] for v in pod["volumes"]}
    assert "gateway-data" not in {m["name"] for m in c["volumeMounts"]}
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate"}
    check_hardened(c, pod)
    check_pod_wiring(docs, pod)
    if values.get("autoscaling", {}).get("enabled"):
        assert "replicas" not in deployment["spec"]
        one(docs, "HorizontalPodAutoscaler")
    else:
        assert deployment["spec"]["replicas"] == values["replicaCount"]

    # Provider keys still come from existingSecret beside the store URL.
    docs = render(helm, tmp_path, {**values, "existingSecret": "keys", "secretEnv": {"OPENAI_API_KEY": "o"}})
    c = gateway_container(one(docs, "Deployment"))
    assert {e["name"] for e in c["env"]} == {STORE_URL_ENV, "OPENAI_API_KEY"}


def test_store_passthrough_keys_and_ttl_forms(helm: Path, tmp_path: Path) -> None:
    """Store keys the chart does not own (probe_seconds) pass through; ttl keeps its YAML type."""
    values = {
        "config": {"gateway_settings": {"store": {"probe_seconds": 2}, "request_timeout": 30}},
        "store": {"ttl": 3600},
    }
    config = yaml.safe_load(one(render(helm, tmp_path, values), "ConfigMap")["data"]["gateway.yaml"])
    gs = config["gateway_settings"]
    assert gs["store"]["probe_seconds"] == 2 and gs["store"]["ttl"] == 3600
    assert gs["store"]["type"] == "sqlite" and gs["request_timeout"] == 30
    assert "lease_seconds" not in gs["store"]  # empty: the gateway's default


def test_metrics_port_and_key(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, SCENARIOS["metrics-port"])
    config = yaml.safe_load(one(docs, "ConfigMap")["data"]["gateway.yaml"])
    assert config["gateway_settings"]["metrics"] == {"port": 9090, "require_key": True}
    c = gateway_container(one(docs, "Deployment"))
    assert {p["name"]: p["containerPort"] for p in c["ports"]}["metrics"] == 9090
    service = one(docs, "Service")
    sports = {p["name"]: p for p in service["spec"]["ports"]}
    assert sports["metrics"]["port"] == 9090 and sports["metrics"]["targetPort"] == "metrics"
    (endpoint,) = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "gw-master-key", "key": "key"},
    }
    (ingress,) = one(docs, "NetworkPolicy")["spec"]["ingress"]
    assert {p["port"] for p in ingress["ports"]} == {50051, 8080, 9090}

    # Without metrics.port the ServiceMonitor scrapes the http port, without a key.
    docs = render(helm, tmp_path, SCENARIOS["metrics"])
    (endpoint,) = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["port"] == "http" and "authorization" not in endpoint
    assert "metrics" not in {p["name"] for p in one(docs, "Service")["spec"]["ports"]}
