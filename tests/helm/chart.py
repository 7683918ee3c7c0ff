"""Rendering the Helm chart and checking what it renders: where the chart and the tools are, running
helm, picking manifests apart, and validating them (Kubernetes API schemas, the ServiceMonitor CRD).

Tools come from `scripts/install-helm-tools.sh`, all under `.tools/`; a missing tool fails with what
to run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
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
HEALTH_SERVICE = "responses_gateway.v1.ResponsesService"
LIVENESS_SERVICE = "liveness"  # transport/grpc/server.py: SERVING once started, whatever the store says
STORE_URL_ENV = "RESPONSES_GATEWAY_STORE_URL"
# Oldest supported (Chart.yaml kubeVersion), first with native sidecars, newest schemas shipped.
KUBE_VERSIONS = ("1.27.0", "1.29.0", "1.37.0")
SIDECAR_KUBE_VERSIONS = ("1.29.0", "1.37.0")


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


def store_env(container: dict[str, Any]) -> dict[str, Any]:
    (env,) = [e for e in container.get("env", []) if e["name"] == STORE_URL_ENV]
    return env
