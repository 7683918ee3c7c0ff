"""Sidecar: the example application chart (helm/examples/sidecar-app) that includes the gateway
helpers; the `example_chart` fixture (conftest.py) builds it against this chart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.helm.chart import (
    CHART,
    HEALTH_SERVICE,
    LIVENESS_SERVICE,
    SIDECAR_KUBE_VERSIONS,
    STORE_URL_ENV,
    arg_value,
    check_hardened,
    check_pod_wiring,
    gateway_container,
    one,
    render,
    run_helm,
    store_env,
    validate_all,
    values_file,
)
from tests.helm.scenarios import POSTGRES


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
