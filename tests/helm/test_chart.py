"""The Helm chart, checked offline: lint, render, Kubernetes API schemas, and a boot of the real server.

Tools come from `scripts/install-helm-tools.sh` (helm, the Kubernetes JSON schemas, the ServiceMonitor
CRD validator), all under `.tools/`. Nothing here is skipped: a missing tool fails with what to run.

`test_rendered_command_boots_the_server` runs the server with the exact command and config the chart
renders, so chart and program cannot drift apart; it needs the server installed in `.venv`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "responses-gateway"
EXAMPLE = ROOT / "helm" / "examples" / "sidecar-app"
TOOLS = ROOT / ".tools"
HELM = TOOLS / "bin" / "helm"
SCHEMAS = TOOLS / "k8s-schemas"
SERVICEMONITOR_JS = (
    TOOLS
    / "node"
    / "node_modules"
    / "@kubernetes-models"
    / "prometheus-operator"
    / "monitoring.coreos.com"
    / "v1"
    / "ServiceMonitor.js"
)
INSTALL_HINT = "run `scripts/install-helm-tools.sh` (the Makefile does it before the tests)"
SERVER = ROOT / ".venv" / "bin" / "responses-gateway"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
HEALTH_SERVICE = "responses_gateway.v1.ResponsesService"
LIVENESS_SERVICE = "liveness"  # transport/grpc/server.py: SERVING once started, whatever the store says
STORE_URL_ENV = "RESPONSES_GATEWAY_STORE_URL"
POSTGRES = {"type": "postgres", "url": {"secretName": "gw-store", "secretKey": "dsn"}}
REDIS = {"type": "redis", "url": {"secretName": "gw-redis", "secretKey": "url"}}
# Oldest supported (Chart.yaml kubeVersion), first with native sidecars, newest schemas shipped.
KUBE_VERSIONS = ("1.27.0", "1.29.0", "1.37.0")
SIDECAR_KUBE_VERSIONS = ("1.29.0", "1.37.0")

# ---------------------------------------------------------------------------------------------------
# Value combinations rendered by the tests.
SCENARIOS: dict[str, dict[str, Any]] = {
    "default": {},
    "sidecar-mode": {"mode": "sidecar"},
    "autoscaling": {
        "store": POSTGRES,
        "autoscaling": {
            "enabled": True,
            "minReplicas": 3,
            "maxReplicas": 12,
            "targetMemoryUtilizationPercentage": 80,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
        "pdb": {"minAvailable": 2},
    },
    "existing-secret-envfrom": {"existingSecret": "llm-provider-keys"},
    "existing-secret-mapped": {
        "existingSecret": "llm-provider-keys",
        "envFromSecret": False,
        "secretEnv": {"OPENAI_API_KEY": "openai", "ANTHROPIC_API_KEY": "anthropic"},
        "extraEnvVars": [{"name": "LOG_LEVEL", "value": "debug"}],
        "extraEnvVarsCM": "gateway-extra-env",
    },
    "existing-configmap": {"existingConfigMap": "my-gateway-config", "existingConfigMapKey": "config.yaml"},
    "persistence": {
        "store": {
            "sqlite": {
                "persistence": {
                    "storageClass": "fast-ssd",
                    "size": "5Gi",
                    "annotations": {"backup/enabled": "true"},
                }
            }
        },
    },
    "persistence-existing-claim": {
        "updateStrategy": {"type": "Recreate"},
        "store": {"sqlite": {"persistence": {"existingClaim": "gw-data"}}},
    },
    "sqlite-emptydir": {"store": {"sqlite": {"persistence": {"enabled": False}}}},
    "postgres": {"replicaCount": 3, "store": {**POSTGRES, "ttl": "30d", "leaseSeconds": 15}},
    "redis": {"store": {**REDIS, "ttl": 3600}, "autoscaling": {"enabled": True}},
    "metrics-port": {
        "metrics": {
            "port": 9090,
            "requireKey": True,
            "serviceMonitor": {
                "enabled": True,
                "authorization": {"secretName": "gw-master-key", "secretKey": "key"},
            },
        },
        "networkPolicy": {"enabled": True},
    },
    "metrics": {
        "metrics": {
            "serviceMonitor": {
                "enabled": True,
                "labels": {"release": "kube-prometheus-stack"},
                "scrapeTimeout": "10s",
                "jobLabel": "app.kubernetes.io/name",
                "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}],
                "metricRelabelings": [{"action": "drop", "regex": "go_.*", "sourceLabels": ["__name__"]}],
            }
        }
    },
    "network-policy": {
        "networkPolicy": {
            "enabled": True,
            "allowExternal": False,
            "ingressFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "apps"}}}],
            "allowExternalEgress": False,
            "extraEgress": [{"ports": [{"port": 443, "protocol": "TCP"}]}],
        }
    },
    "kitchen-sink": {
        "fullnameOverride": "gw",
        "commonLabels": {"team": "ml-platform"},
        "commonAnnotations": {"owner": "ml-platform"},
        "image": {
            "repository": "registry.example/rg",
            "digest": "sha256:" + "a" * 64,
            "pullPolicy": "Always",
            "pullSecrets": [{"name": "regcred"}],
        },
        "extraArgs": ["--log-level", "debug"],
        "service": {"clusterIP": "None", "annotations": {"a": "b"}, "labels": {"c": "d"}},
        "serviceAccount": {"name": "gw-sa", "annotations": {"iam.gke.io/gcp-service-account": "gw@p.iam"}},
        "podAnnotations": {"sidecar.istio.io/inject": "false"},
        "podLabels": {"tier": "gateway"},
        "priorityClassName": "high",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {
                                "matchLabels": {"app.kubernetes.io/instance": "{{ .Release.Name }}"}
                            },
                        },
                    }
                ]
            }
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "responses-gateway"}},
            }
        ],
        "initContainers": [{"name": "wait", "image": "busybox:1.36", "command": ["true"]}],
        "sidecars": [{"name": "log-shipper", "image": "busybox:1.36", "command": ["sleep", "infinity"]}],
        "extraVolumes": [{"name": "ca", "configMap": {"name": "corp-ca"}}],
        "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True}],
        "lifecycleHooks": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
        "terminationGracePeriodSeconds": 120,
        "networkPolicy": {"enabled": True},
        "metrics": {"serviceMonitor": {"enabled": True, "namespace": "monitoring"}},
        "autoscaling": {"enabled": True},
        "store": REDIS,
    },
}


# ---------------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="session")
def helm() -> Path:
    if not (HELM.is_file() and os.access(HELM, os.X_OK)):
        pytest.fail(f"helm not found at {HELM}: {INSTALL_HINT}", pytrace=False)
    return HELM


def run_helm(helm: Path, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(helm), *map(str, args)], capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        pytest.fail(f"helm {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    return proc


def values_file(tmp_path: Path, values: dict[str, Any], name: str = "values.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def render(
    helm: Path,
    tmp_path: Path,
    values: dict[str, Any],
    kube_version: str = "1.37.0",
    chart: Path = CHART,
    release: str = "rg",
) -> list[dict[str, Any]]:
    vf = values_file(tmp_path, values, f"values-{abs(hash(json.dumps(values, sort_keys=True)))}.yaml")
    out = run_helm(
        helm, "template", release, chart, "--namespace", "llm", "--kube-version", kube_version, "--values", vf
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def gateway_container(deployment: dict[str, Any], name: str = "gateway") -> dict[str, Any]:
    spec = deployment["spec"]["template"]["spec"]
    for c in spec.get("initContainers", []) + spec["containers"]:
        if c["name"] == name:
            return c
    raise AssertionError(f"no container {name!r} in {deployment['metadata']['name']}")


_registry_cache: dict[str, Registry] = {}


def kubernetes_schema_errors(doc: dict[str, Any], kube_version: str) -> list[str]:
    """Validate against the strict (no unknown fields) Kubernetes JSON schema of that version."""
    directory = SCHEMAS / f"v{kube_version}-local-strict"
    if not (directory / "_definitions.json").is_file():
        pytest.fail(
            f"Kubernetes {kube_version} schemas missing under {SCHEMAS}: {INSTALL_HINT}", pytrace=False
        )
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", doc["apiVersion"])  # apps/v1 -> apps-v1
    schema_file = directory / f"{doc['kind'].lower()}-{group_version}.json"
    assert schema_file.is_file(), f"no Kubernetes {kube_version} schema for {doc['kind']} {doc['apiVersion']}"
    if kube_version not in _registry_cache:
        defs = json.loads((directory / "_definitions.json").read_text())
        _registry_cache[kube_version] = Resource.from_contents(defs) @ Registry()
    schema = json.loads(schema_file.read_text())
    registry = Resource.from_contents(schema) @ _registry_cache[kube_version]
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def servicemonitor_errors(docs: list[dict[str, Any]]) -> list[str]:
    """Validate ServiceMonitors with the prometheus-operator CRD schema (npm @kubernetes-models)."""
    if not SERVICEMONITOR_JS.is_file():
        pytest.fail(f"ServiceMonitor validator missing ({SERVICEMONITOR_JS}): {INSTALL_HINT}", pytrace=False)
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required to validate ServiceMonitors", pytrace=False)
    script = (
        "import {readFileSync} from 'node:fs'; import {pathToFileURL} from 'node:url';"
        f"const {{ServiceMonitor}} = await import(pathToFileURL({json.dumps(str(SERVICEMONITOR_JS))}).href);"
        "const errors = [];"
        "for (const d of JSON.parse(readFileSync(0, 'utf8'))) {"
        "  try { new ServiceMonitor(d).validate(); } catch (e) { errors.push(d.metadata.name + ': ' + e.message); }"
        "}"
        "process.stdout.write(JSON.stringify(errors));"
    )
    proc = subprocess.run(
        [node, "--input-type=module", "-e", script],
        input=json.dumps(docs),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout))


def validate_all(docs: list[dict[str, Any]], kube_version: str) -> None:
    errors: list[str] = []
    monitors = []
    for doc in docs:
        if doc["apiVersion"] == "monitoring.coreos.com/v1":
            monitors.append(doc)
            continue
        errors += [
            f"{doc['kind']}/{doc['metadata']['name']}: {e}"
            for e in kubernetes_schema_errors(doc, kube_version)
        ]
    if monitors:
        errors += servicemonitor_errors(monitors)
    assert not errors, f"schema errors (Kubernetes {kube_version}):\n" + "\n".join(errors)


def check_pod_wiring(docs: list[dict[str, Any]], pod_spec: dict[str, Any]) -> None:
    """Every mount has a volume; every ConfigMap the pod needs from this chart is rendered."""
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    for c in pod_spec.get("initContainers", []) + pod_spec["containers"]:
        for m in c.get("volumeMounts", []):
            assert m["name"] in volumes, f"{c['name']} mounts unknown volume {m['name']}"
    rendered_cms = {d["metadata"]["name"] for d in by_kind(docs, "ConfigMap")}
    cfg = volumes["gateway-config"]["configMap"]
    if cfg["name"] in rendered_cms:
        cm = next(d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == cfg["name"])
        assert cfg["items"][0]["key"] in cm["data"]


HARDENED_CONTAINER = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def check_hardened(container: dict[str, Any], pod_spec: dict[str, Any] | None) -> None:
    sc = container["securityContext"]
    for key, want in HARDENED_CONTAINER.items():
        assert sc.get(key) == want, f"securityContext.{key} = {sc.get(key)!r}, want {want!r}"
    if pod_spec is not None:
        psc = pod_spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    # Read-only root: only the data volume and /tmp are writable, and the store lives on the former.
    writable = [m for m in container["volumeMounts"] if not m.get("readOnly")]
    assert {m["mountPath"] for m in writable} >= {"/tmp"}


def arg_value(args: list[str], flag: str) -> str:
    assert flag in args, f"{flag} missing from {args}"
    return args[args.index(flag) + 1]


def dockerfile_instruction(name: str) -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(rf"^{name}\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert match, f"Dockerfile has no exec-form {name}"
    return list(json.loads(match.group(1)))


# ---------------------------------------------------------------------------------------------------
# lint, render, schema


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


# ---------------------------------------------------------------------------------------------------
# the response store, replicas and metrics

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


def store_env(container: dict[str, Any]) -> dict[str, Any]:
    (env,) = [e for e in container.get("env", []) if e["name"] == STORE_URL_ENV]
    return env


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


# ---------------------------------------------------------------------------------------------------
# sidecar: the example application chart that includes the gateway helpers


@pytest.fixture(scope="session")
def example_chart(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of helm/examples/sidecar-app with its file:// dependency built (offline)."""
    dest = tmp_path_factory.mktemp("example") / "sidecar-app"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    chart_yaml = dest / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace("file://../../responses-gateway", f"file://{CHART}"))
    run_helm(helm, "dependency", "build", dest)
    return dest


@pytest.mark.parametrize("native", [True, False], ids=["native", "plain"])
def test_sidecar_example(helm: Path, tmp_path: Path, example_chart: Path, native: bool) -> None:
    run_helm(helm, "lint", example_chart, "--strict")
    values = {"responses-gateway": {"sidecar": {"native": native}}}
    for kube_version in SIDECAR_KUBE_VERSIONS:
        docs = render(helm, tmp_path, values, kube_version, chart=example_chart, release="shop")
        validate_all(docs, kube_version)
    # SQLite on a PVC by default: Recreate, and the pod's fsGroup makes the volume the gateway's.
    assert {d["kind"] for d in docs} == {"ConfigMap", "Deployment", "PersistentVolumeClaim"}
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["securityContext"] == {"fsGroup": 10001}
    c = gateway_container(deployment, "responses-gateway")
    in_init = any(x["name"] == "responses-gateway" for x in pod.get("initContainers", []))
    assert in_init is native
    assert (c.get("restartPolicy") == "Always") is native
    assert arg_value(c["args"], "--host") == "127.0.0.1"
    assert "ports" not in c, "a loopback sidecar exposes no ports"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        # kubelet probes the pod IP, which a loopback listener does not answer: probe from inside.
        assert "grpc" not in c[probe] and c[probe]["exec"]["command"][0] == "python"
        assert c[probe]["exec"]["command"][3] == "127.0.0.1:" + arg_value(c["args"], "--grpc-port")
    assert c["livenessProbe"]["exec"]["command"][4] == LIVENESS_SERVICE
    assert c["readinessProbe"]["exec"]["command"][4] == HEALTH_SERVICE
    check_hardened(c, None)
    check_pod_wiring(docs, pod)
    assert "checksum/gateway-config" in deployment["spec"]["template"]["metadata"]["annotations"]
    assert c["envFrom"] == [{"secretRef": {"name": "llm-provider-keys"}}]
    app = next(x for x in pod["containers"] if x["name"] == "app")
    assert {"name": "OPENAI_BASE_URL", "value": "http://127.0.0.1:8080/v1"} in app["env"]


def test_sidecar_example_replicas_need_a_shared_store(
    helm: Path, tmp_path: Path, example_chart: Path
) -> None:
    """Each application pod runs its own gateway: several pods on SQLite would not share responses."""
    vf = values_file(tmp_path, {"replicaCount": 3})
    proc = run_helm(helm, "template", "shop", example_chart, "--values", vf, check=False)
    assert proc.returncode != 0
    for text in (
        "3 application replicas and responses-gateway.store.type=sqlite",
        "Set responses-gateway.store.type=postgres or redis with responses-gateway.store.url.secretName",
    ):
        assert text in proc.stderr, proc.stderr

    values = {"replicaCount": 3, "responses-gateway": {"store": POSTGRES}}
    docs = render(helm, tmp_path, values, "1.29.0", chart=example_chart, release="shop")
    validate_all(docs, "1.29.0")
    assert {d["kind"] for d in docs} == {"ConfigMap", "Deployment"}
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert "strategy" not in deployment["spec"]  # the Deployment default, RollingUpdate
    pod = deployment["spec"]["template"]["spec"]
    assert "securityContext" not in pod and "gateway-data" not in {v["name"] for v in pod["volumes"]}
    c = gateway_container(deployment, "responses-gateway")
    assert store_env(c)["valueFrom"]["secretKeyRef"] == {"name": "gw-store", "key": "dsn"}
    config = yaml.safe_load(one(docs, "ConfigMap")["data"]["gateway.yaml"])
    assert config["gateway_settings"]["store"] == {"type": "postgres", "url": f"os.environ/{STORE_URL_ENV}"}


def test_readme_snippet_matches_helper_names() -> None:
    readme = (CHART / "README.md").read_text()
    helpers = "".join(p.read_text() for p in sorted((CHART / "templates").glob("_*.tpl")))
    for name in set(re.findall(r'include "(responses-gateway\.[A-Za-z]+)"', readme)):
        assert f'define "{name}"' in helpers, f"README uses undefined helper {name}"


# ---------------------------------------------------------------------------------------------------
# boot the real server with what the chart renders


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def grpc_health(target: str, service: str, timeout: float = 2.0) -> str:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def remap_paths(node: Any, old_prefix: str, new_prefix: str) -> Any:
    if isinstance(node, dict):
        return {k: remap_paths(v, old_prefix, new_prefix) for k, v in node.items()}
    if isinstance(node, list):
        return [remap_paths(v, old_prefix, new_prefix) for v in node]
    if isinstance(node, str) and (node == old_prefix or node.startswith(old_prefix.rstrip("/") + "/")):
        return new_prefix + node[len(old_prefix.rstrip("/")) :]
    return node


MOCK_MODEL = {
    "model_name": "mock",
    "litellm_params": {"model": "openai/mock", "mock_response": "pong from the chart"},
}


def boot_values() -> dict[str, Any]:
    """Chart defaults plus existingSecret, and a keyless mock model so that a response can round-trip."""
    config = yaml.safe_load((CHART / "values.yaml").read_text())["config"]
    config["model_list"].append(MOCK_MODEL)
    return {"existingSecret": "llm-provider-keys", "config": config}


BOOT_CASES = ("service", "sidecar")  # service: grpc probes, all interfaces; sidecar: loopback, exec probes


class Booted:
    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        log_path: Path,
        container: dict[str, Any],
        grpc_port: int,
        http_port: int,
        data_dir: Path,
        argv: list[str],
        config: dict[str, Any],
    ) -> None:
        self.proc, self.log_path, self.container = proc, log_path, container
        self.grpc_target = f"127.0.0.1:{grpc_port}"
        self.http_base = f"http://127.0.0.1:{http_port}"
        self.data_dir, self.argv, self.config = data_dir, argv, config

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def rendered_config(docs: list[dict[str, Any]], container: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """The rendered config file, with the data volume's mount path moved into `data_dir`."""
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config = yaml.safe_load(one(docs, "ConfigMap")["data"]["gateway.yaml"])
    return dict(remap_paths(config, mounts["gateway-data"], str(data_dir)))


def boot(
    helm: Path, tmp_path: Path, example_chart: Path, case: str, extra: dict[str, Any] | None = None
) -> Booted:
    """Start `.venv/bin/responses-gateway` with the args and the config the chart renders
    (`extra`: more values, service case). A metrics port in the config is moved to a free one.

    Needs the server (`responses-gateway serve`) installed in .venv; fails, never skips, without it.
    """
    if case == "service":
        docs = render(helm, tmp_path, {**boot_values(), **(extra or {})})
        container = gateway_container(one(docs, "Deployment"))
    else:
        values = {"responses-gateway": {"mode": "sidecar", **boot_values()}}
        docs = render(helm, tmp_path, values, "1.29.0", chart=example_chart, release="shop")
        container = gateway_container(one(docs, "Deployment"), "responses-gateway")

    # The command kubelet runs: the container's command, else the image ENTRYPOINT, then args.
    argv = list(container.get("command") or dockerfile_instruction("ENTRYPOINT")) + list(container["args"])
    assert argv[0] == "responses-gateway"
    if not SERVER.exists():
        pytest.fail(
            f"{SERVER} does not exist: install the server into .venv (make setup) "
            "-- these tests boot the real program",
            pytrace=False,
        )
    argv[0] = str(SERVER)

    # Config: the rendered file, with the data volume's mount path moved into the temp dir.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert arg_value(argv, "--config") == mounts["gateway-config"].rstrip("/") + "/gateway.yaml"
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config = rendered_config(docs, container, data_dir)
    if config["gateway_settings"]["metrics"].get("port"):
        config["gateway_settings"]["metrics"]["port"] = free_port()
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(yaml.safe_dump(config))
    grpc_port, http_port = free_port(), free_port()
    for flag, value in (
        ("--config", str(config_path)),
        ("--host", "127.0.0.1"),
        ("--grpc-port", str(grpc_port)),
        ("--http-port", str(http_port)),
    ):
        argv[argv.index(flag) + 1] = value

    # Environment: what the Secret would provide, as dummies; no real provider key leaks in.
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "AZURE_API_KEY"):
        env[var] = "sk-test-not-a-key"
    for e in container.get("env", []):
        env[e["name"]] = e.get("value", "test-secret-value")
    env["TMPDIR"] = str(tmp_path)
    env["PATH"] = f"{SERVER.parent}{os.pathsep}{env.get('PATH', '')}"

    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, cwd=data_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    booted = Booted(proc, log_path, container, grpc_port, http_port, data_dir, argv, config)
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"server exited with {proc.returncode} during startup:\n{booted.log()}", pytrace=False
            )
        try:
            status = grpc_health(booted.grpc_target, "", timeout=1.0)
            if status == "SERVING":
                return booted
        except Exception:  # not listening yet
            pass
        time.sleep(0.25)
    booted.kill()
    pytest.fail(f"gRPC health never SERVING ({status!r}) within 60 s:\n{booted.log()}", pytrace=False)


@pytest.fixture(scope="module", params=BOOT_CASES)
def booted(
    request: pytest.FixtureRequest, helm: Path, example_chart: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Booted]:
    server = boot(helm, tmp_path_factory.mktemp(f"boot-{request.param}"), example_chart, request.param)
    yield server
    server.kill()


def test_boot_rendered_probes_pass(booted: Booted) -> None:
    """The probes exactly as rendered: grpc as kubelet sends them, exec run as in the container."""
    for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = booted.container[probe_name]
        if "grpc" in probe:
            assert grpc_health(booted.grpc_target, probe["grpc"].get("service", "")) == "SERVING", probe_name
        else:
            cmd = list(probe["exec"]["command"])
            assert cmd[0] == "python"
            cmd[0], cmd[3] = str(VENV_PYTHON), booted.grpc_target
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=probe["timeoutSeconds"] + 5)
            assert result.returncode == 0, f"{probe_name} failed: {result.stdout}{result.stderr}"
    assert grpc_health(booted.grpc_target, HEALTH_SERVICE) == "SERVING"


def test_boot_rest_healthz_and_a_response(booted: Booted) -> None:
    import httpx

    with httpx.Client(base_url=booted.http_base, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        reply = client.post("/v1/responses", json={"model": "mock", "input": "ping"})
        assert reply.status_code == 200, reply.text
        assert "pong from the chart" in reply.text
    # The store writes to the data volume (the only writable path besides /tmp).
    assert any(booted.data_dir.iterdir()), "nothing written under the data volume"


def test_boot_metrics_path_served(booted: Booted) -> None:
    """What the ServiceMonitor scrapes: metrics.serviceMonitor.path on the http port."""
    import httpx

    path = yaml.safe_load((CHART / "values.yaml").read_text())["metrics"]["serviceMonitor"]["path"]
    reply = httpx.get(booted.http_base + path, timeout=10)
    assert reply.status_code == 200, (
        f"GET {path} -> {reply.status_code}: the ServiceMonitor would scrape nothing"
    )
    assert reply.text.strip()


@pytest.mark.parametrize("case", BOOT_CASES)
def test_boot_sigterm_drains_and_exits_zero(
    helm: Path, tmp_path: Path, example_chart: Path, case: str
) -> None:
    """SIGTERM (what kubelet sends) ends the server cleanly within the rendered --grace."""
    server = boot(helm, tmp_path, example_chart, case)
    try:
        grace = float(arg_value(server.argv, "--grace"))
        # Fully up (REST answering too) before the signal: SERVING is reported a moment before the
        # server installs its SIGTERM handler, a window kubelet's startup probe makes moot.
        import httpx

        assert httpx.get(server.http_base + "/healthz", timeout=10).status_code == 200
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        try:
            code = server.proc.wait(timeout=grace + 10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {grace + 10:.0f}s after SIGTERM:\n{server.log()}", pytrace=False)
        assert code == 0, f"exit status {code} after SIGTERM:\n{server.log()}"
    finally:
        server.kill()


def test_boot_separate_metrics_port(helm: Path, tmp_path: Path, example_chart: Path) -> None:
    """metrics.port as rendered: /metrics answers there (what the ServiceMonitor's `metrics` port
    scrapes), and no longer on the REST port."""
    import httpx

    server = boot(helm, tmp_path, example_chart, "service", {"metrics": {"port": 9090}})
    try:
        port = server.config["gateway_settings"]["metrics"]["port"]
        path = yaml.safe_load((CHART / "values.yaml").read_text())["metrics"]["serviceMonitor"]["path"]
        reply = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
        assert reply.status_code == 200 and reply.text.strip(), reply.text
        assert httpx.get(server.http_base + path, timeout=10).status_code == 404
    finally:
        server.kill()


def test_boot_store_ttl_and_lease(helm: Path, tmp_path: Path, example_chart: Path) -> None:
    """store.ttl / store.leaseSeconds as rendered are keys the server accepts, and it serves."""
    import httpx

    server = boot(helm, tmp_path, example_chart, "service", {"store": {"ttl": "30d", "leaseSeconds": 15}})
    try:
        store = server.config["gateway_settings"]["store"]
        assert (store["ttl"], store["lease_seconds"]) == ("30d", 15)
        reply = httpx.post(
            server.http_base + "/v1/responses", json={"model": "mock", "input": "ping"}, timeout=10
        )
        assert reply.status_code == 200, reply.text
        assert (
            httpx.get(f"{server.http_base}/v1/responses/{reply.json()['id']}", timeout=10).status_code == 200
        )
    finally:
        server.kill()


def fill_up(db: Any) -> None:
    """The store's "disk" full: no page beyond the current ones, and every free page used (run on
    the store's own connection and thread)."""
    import sqlite3

    db.execute("CREATE TABLE IF NOT EXISTS filler (pad BLOB)")
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    for size in (4000, 400, 40, 1):
        while True:
            try:
                db.execute("INSERT INTO filler VALUES (zeroblob(?))", (size,))
            except sqlite3.OperationalError as e:
                assert "full" in str(e)
                break


def make_room(db: Any) -> None:
    db.execute("PRAGMA max_page_count = 1073741823")
    db.execute("DELETE FROM filler")


def wait_for_status(target: str, service: str, want: str, seconds: float = 15) -> None:
    deadline, status = time.monotonic() + seconds, ""
    while time.monotonic() < deadline:
        status = grpc_health(target, service)
        if status == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"health of {service!r} is {status}, not {want}, after {seconds} s")


def test_liveness_probe_survives_a_failing_store(helm: Path, tmp_path: Path) -> None:
    """The probes' health services as rendered, against a gateway whose store fills up: readiness
    goes NOT_SERVING (the pod leaves the endpoints), liveness and start-up stay SERVING (no restart),
    and readiness comes back when the store does. An in-process gateway, so the test can reach its
    store; the health checks go over a real gRPC channel."""
    import httpx

    from tests.support.inprocess import InProcessGateway

    values = boot_values()
    values["config"]["gateway_settings"] = {"store": {"probe_seconds": 0.2}}  # passes through
    docs = render(helm, tmp_path, values)
    container = gateway_container(one(docs, "Deployment"))
    services = {
        p: container[p]["grpc"].get("service", "")
        for p in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config = rendered_config(docs, container, data_dir)
    assert config["gateway_settings"]["store"]["probe_seconds"] == 0.2
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(yaml.safe_dump(config))

    gw = InProcessGateway(config_path)
    try:
        for service in services.values():
            assert grpc_health(gw.grpc_target, service) == "SERVING"
        gw.run(gw.gw.store.run_raw(fill_up))
        wait_for_status(gw.grpc_target, services["readinessProbe"], "NOT_SERVING")
        assert httpx.get(gw.http_base + "/healthz", timeout=10).status_code == 503
        assert grpc_health(gw.grpc_target, services["livenessProbe"]) == "SERVING"
        assert grpc_health(gw.grpc_target, services["startupProbe"]) == "SERVING"
        gw.run(gw.gw.store.run_raw(make_room))
        wait_for_status(gw.grpc_target, services["readinessProbe"], "SERVING")
    finally:
        gw.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_workers_value(helm: Path, tmp_path: Path) -> None:
    """Empty (the default) leaves the gateway's own default, one worker per CPU; a number is --workers."""
    default = gateway_container(one(render(helm, tmp_path, {}), "Deployment"))
    assert "--workers" not in default["args"]
    four = gateway_container(one(render(helm, tmp_path, {"server": {"workers": 4}}), "Deployment"))
    assert arg_value(four["args"], "--workers") == "4"
