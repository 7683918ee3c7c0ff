"""The Helm chart, checked offline: lint, render, and the Kubernetes API schemas.

Tools come from `scripts/install-helm-tools.sh` (helm, the Kubernetes JSON schemas, the ServiceMonitor
CRD validator), all under `.tools/`. Nothing here is skipped: a missing tool fails with what to run.

The rest of the chart tests sit beside this file: the response store and metrics values
(`test_store_values.py`), the sidecar example chart (`test_sidecar.py`), and the real server booted
with what the chart renders (`test_boot.py`); their helpers are `chart.py`, `scenarios.py` and
`booting.py`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helm.chart import (
    CHART,
    HEALTH_SERVICE,
    KUBE_VERSIONS,
    LIVENESS_SERVICE,
    STORE_URL_ENV,
    arg_value,
    by_kind,
    check_hardened,
    check_pod_wiring,
    dockerfile_instruction,
    gateway_container,
    one,
    render,
    run_helm,
    servicemonitor_errors,
    validate_all,
    values_file,
)
from tests.helm.scenarios import POSTGRES, SCENARIOS


def test_lint_default(helm: Path) -> None:
    out = run_helm(helm, "lint", CHART, "--strict").stdout
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_lint_and_render_validate(helm: Path, tmp_path: Path, scenario: str) -> None:
    values = SCENARIOS[scenario]
    vf = values_file(tmp_path, values)
    run_helm(helm, "lint", CHART, "--strict", "--values", vf)
    for kube_version in KUBE_VERSIONS:
        docs = render(helm, tmp_path, values, kube_version)
        assert docs, "nothing rendered"
        validate_all(docs, kube_version)
        for doc in docs:
            if doc["kind"] not in ("Pod",):  # the helm-test pod is named after the release too
                assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == "rg"


def test_default_deployment_probes_ports_security(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, {})
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    c = gateway_container(deployment)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"grpc": 50051, "http": 8080}

    # Kubernetes native gRPC probes against grpc.health.v1.Health on the gRPC container port.
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert set(c[probe]) & {"grpc", "exec", "httpGet", "tcpSocket"} == {"grpc"}, probe
        assert c[probe]["grpc"]["port"] == ports["grpc"]
    # Readiness sees the store; liveness and start-up do not (a restart does not cure a store outage).
    assert c["readinessProbe"]["grpc"]["service"] == HEALTH_SERVICE
    assert c["livenessProbe"]["grpc"]["service"] == LIVENESS_SERVICE
    assert c["startupProbe"]["grpc"]["service"] == LIVENESS_SERVICE

    args = c["args"]
    assert arg_value(args, "--grpc-port") == str(ports["grpc"])
    assert arg_value(args, "--http-port") == str(ports["http"])
    assert arg_value(args, "--host") == "0.0.0.0"
    check_hardened(c, pod)
    check_pod_wiring(docs, pod)
    assert pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] == 60

    service = one(docs, "Service")
    sports = {p["name"]: p for p in service["spec"]["ports"]}
    assert sports["grpc"]["appProtocol"] == "grpc" and sports["grpc"]["targetPort"] == "grpc"
    assert sports["http"]["appProtocol"] == "http" and sports["http"]["targetPort"] == "http"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]

    # Default: one replica, SQLite on a PVC mounted writable where the file is, so Recreate.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    config = yaml.safe_load(one(docs, "ConfigMap")["data"]["gateway.yaml"])
    assert config["gateway_settings"]["store"] == {
        "type": "sqlite",
        "path": "/var/lib/responses-gateway/responses.db",
    }
    assert config["gateway_settings"]["metrics"] == {"require_key": False}
    data_mount = next(m for m in c["volumeMounts"] if m["name"] == "gateway-data")
    assert config["gateway_settings"]["store"]["path"] == data_mount["mountPath"] + "/responses.db"
    assert not data_mount.get("readOnly")
    pvc = one(docs, "PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["gateway-data"]["persistentVolumeClaim"] == {"claimName": pvc["metadata"]["name"]}
    assert not any(e["name"] == STORE_URL_ENV for e in c.get("env", []))
    assert {d["kind"] for d in docs} == {
        "ConfigMap",
        "Deployment",
        "Service",
        "ServiceAccount",
        "PodDisruptionBudget",
        "PersistentVolumeClaim",
        "Pod",
    }


def test_chart_args_match_dockerfile(helm: Path, tmp_path: Path) -> None:
    """The chart relies on the image ENTRYPOINT and extends the image's default CMD."""
    entrypoint, cmd = dockerfile_instruction("ENTRYPOINT"), dockerfile_instruction("CMD")
    assert entrypoint == ["responses-gateway"]
    c = gateway_container(one(render(helm, tmp_path, {}), "Deployment"))
    assert "command" not in c, "the chart should use the image ENTRYPOINT"
    assert c["args"][0] == cmd[0] == "serve"
    assert arg_value(c["args"], "--config") == arg_value(cmd, "--config")


def test_config_checksum_rolls_pods(helm: Path, tmp_path: Path) -> None:
    def checksum(values: dict[str, Any]) -> str:
        d = one(render(helm, tmp_path, values), "Deployment")
        return str(d["spec"]["template"]["metadata"]["annotations"]["checksum/gateway-config"])

    base = checksum({})
    changed = copy.deepcopy(yaml.safe_load((CHART / "values.yaml").read_text())["config"])
    changed["model_list"].append(
        {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4"}}
    )
    assert checksum({"config": changed}) != base
    assert checksum({"store": {"ttl": "12h"}}) != base  # the store section is part of the config
    assert checksum({"terminationGracePeriodSeconds": 90}) == base
    d = one(render(helm, tmp_path, SCENARIOS["existing-configmap"]), "Deployment")
    assert "checksum/gateway-config" not in (d["spec"]["template"]["metadata"].get("annotations") or {})


def test_existing_secret_env(helm: Path, tmp_path: Path) -> None:
    c = gateway_container(one(render(helm, tmp_path, SCENARIOS["existing-secret-envfrom"]), "Deployment"))
    assert c["envFrom"] == [{"secretRef": {"name": "llm-provider-keys"}}]

    c = gateway_container(one(render(helm, tmp_path, SCENARIOS["existing-secret-mapped"]), "Deployment"))
    env = {e["name"]: e for e in c["env"]}
    assert env["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "llm-provider-keys",
        "key": "openai",
    }
    assert env["ANTHROPIC_API_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "anthropic"
    assert env["LOG_LEVEL"]["value"] == "debug"
    assert c["envFrom"] == [{"configMapRef": {"name": "gateway-extra-env"}}]

    c = gateway_container(one(render(helm, tmp_path, {}), "Deployment"))
    assert "env" not in c and "envFrom" not in c


def test_existing_configmap(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, SCENARIOS["existing-configmap"])
    assert not by_kind(docs, "ConfigMap")
    volumes = {v["name"]: v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["gateway-config"]["configMap"] == {
        "name": "my-gateway-config",
        "items": [{"key": "config.yaml", "path": "gateway.yaml"}],
    }


def test_autoscaling(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, SCENARIOS["autoscaling"])
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "rg-responses-gateway",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    assert "replicas" not in one(docs, "Deployment")["spec"]
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 2


def test_persistence(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, SCENARIOS["persistence"])
    pvc = one(docs, "PersistentVolumeClaim")
    assert pvc["spec"]["storageClassName"] == "fast-ssd"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert pvc["metadata"]["annotations"] == {"backup/enabled": "true"}
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["gateway-data"] == {
        "name": "gateway-data",
        "persistentVolumeClaim": {"claimName": pvc["metadata"]["name"]},
    }
    assert pod["securityContext"]["fsGroup"] == 10001  # the volume is writable by uid 10001

    docs = render(helm, tmp_path, SCENARIOS["persistence-existing-claim"])
    assert not by_kind(docs, "PersistentVolumeClaim")
    deployment = one(docs, "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["gateway-data"]["persistentVolumeClaim"]["claimName"] == "gw-data"
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # set explicitly: allowed

    # No persistence: an emptyDir per pod (lost with it), so nothing to wait for on a rollout.
    docs = render(helm, tmp_path, SCENARIOS["sqlite-emptydir"])
    assert not by_kind(docs, "PersistentVolumeClaim")
    deployment = one(docs, "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["gateway-data"] == {"name": "gateway-data", "emptyDir": {"sizeLimit": "1Gi"}}
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate"}


def test_metrics_servicemonitor(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, SCENARIOS["metrics"])
    sm = one(docs, "ServiceMonitor")
    service = one(docs, "Service")
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    assert endpoint["scrapeTimeout"] == "10s"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = sm["spec"]["selector"]["matchLabels"]
    assert all(service["metadata"]["labels"].get(k) == v for k, v in selector.items())
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["llm"]}
    # The validator really validates: a bad interval is refused.
    bad = copy.deepcopy(sm)
    bad["spec"]["endpoints"][0]["interval"] = "30 seconds"
    assert servicemonitor_errors([bad])


def test_network_policy(helm: Path, tmp_path: Path) -> None:
    np = one(render(helm, tmp_path, SCENARIOS["network-policy"]), "NetworkPolicy")
    (ingress,) = np["spec"]["ingress"]
    assert {p["port"] for p in ingress["ports"]} == {50051, 8080}
    assert len(ingress["from"]) == 2
    assert {p["port"] for p in np["spec"]["egress"][0]["ports"]} == {53}
    assert np["spec"]["egress"][1] == {"ports": [{"port": 443, "protocol": "TCP"}]}


def test_sidecar_mode_renders_config_only(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, {"mode": "sidecar"})
    assert {d["kind"] for d in docs} == {"ConfigMap", "PersistentVolumeClaim"}
    docs = render(helm, tmp_path, {"mode": "sidecar", "store": POSTGRES})
    assert {d["kind"] for d in docs} == {"ConfigMap"}
    # The chart cannot see the application's replicas in sidecar mode: its own replicaCount is not
    # the application's, so it is no reason to refuse (the application checks; see the example).
    render(helm, tmp_path, {"mode": "sidecar", "replicaCount": 3})


def test_values_schema_rejects_mistakes(helm: Path, tmp_path: Path) -> None:
    for bad in (
        {"replicaCount": "two"},
        {"mode": "daemonset"},
        {"containerPorts": {"grpc": 0, "http": 8080}},
        {"probes": {"handler": "http"}},
        {"replicaCunt": 2},
        {"image": {"pullPolicy": "Sometimes"}},
        {"store": {"type": "mysql"}},
        {"store": {"ttl": "30 days"}},
        {"store": {"leaseSeconds": 0}},
        {"store": {"sqlite": {"path": "responses.db"}}},
        {"persistence": {"enabled": True}},  # moved to store.sqlite.persistence
        {"metrics": {"port": 70000}},
        {"updateStrategy": {"type": "OnDelete"}},
    ):
        proc = run_helm(helm, "template", "rg", CHART, "--values", values_file(tmp_path, bad), check=False)
        assert proc.returncode != 0, f"accepted {bad}"
        assert "schema" in proc.stderr.lower(), proc.stderr
    proc = run_helm(helm, "template", "rg", CHART, "--set", "secretEnv.OPENAI_API_KEY=openai", check=False)
    assert proc.returncode != 0 and "set existingSecret" in proc.stderr


def test_values_documented() -> None:
    """Bitnami style: every value has a `## @param <path>` line, and every such line names a value."""
    text = (CHART / "values.yaml").read_text()
    params = set(re.findall(r"^\s*## @param (\S+)", text, re.MULTILINE))
    values = yaml.safe_load(text)

    def leaves(node: Any, prefix: str) -> Iterator[str]:
        if isinstance(node, dict) and node and prefix not in params:
            for key, child in node.items():
                yield from leaves(child, f"{prefix}.{key}" if prefix else key)
        else:
            yield prefix

    undocumented = [p for p in leaves(values, "") if p not in params]
    assert not undocumented, f"values without ## @param: {undocumented}"

    def exists(path: str) -> bool:
        node: Any = values
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    stale = sorted(p for p in params if not exists(p))
    assert not stale, f"## @param for missing values: {stale}"
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(values)
    assert set(values) <= set(schema["properties"])


def test_workers_value(helm: Path, tmp_path: Path) -> None:
    """Empty (the default) leaves the gateway's own default, one worker per CPU; a number is --workers."""
    default = gateway_container(one(render(helm, tmp_path, {}), "Deployment"))
    assert "--workers" not in default["args"]
    four = gateway_container(one(render(helm, tmp_path, {"server": {"workers": 4}}), "Deployment"))
    assert arg_value(four["args"], "--workers") == "4"
