"""Fixtures of the chart tests: the helm binary, and the sidecar example chart built against this chart."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helm.chart import CHART, EXAMPLE, HELM, INSTALL_HINT, run_helm


@pytest.fixture(scope="session")
def helm() -> Path:
    if not (HELM.is_file() and os.access(HELM, os.X_OK)):
        pytest.fail(f"helm not found at {HELM}: {INSTALL_HINT}", pytrace=False)
    return HELM


@pytest.fixture(scope="session")
def example_chart(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of helm/examples/sidecar-app with its file:// dependency built (offline)."""
    dest = tmp_path_factory.mktemp("example") / "sidecar-app"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    chart_yaml = dest / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace("file://../../responses-gateway", f"file://{CHART}"))
    run_helm(helm, "dependency", "build", dest)
    return dest
