#!/usr/bin/env bash
# Installs what tests/helm needs into .tools/, from package registries only (no release downloads):
#   .tools/bin/helm          helm, built from its Go module with `go install` (Go module proxy)
#   .tools/k8s-schemas/      Kubernetes JSON schemas (strict) for a few versions, taken from the
#                            PyPI package kubernetes-validate (which ships them per version)
#   .tools/node/             npm @kubernetes-models/prometheus-operator: the ServiceMonitor CRD schema,
#                            compiled to a validator (the Kubernetes schemas have no CRDs)
# Idempotent: each part is skipped when its pinned version is already there.
# Cold run on a 2-core machine: ~4.5 min (almost all of it compiling helm); warm: < 1 s.
set -euo pipefail

HELM_VERSION="v3.22.0"
# Default Kubernetes version of `helm template`/`lint` (Capabilities.KubeVersion): helm's own Makefile
# derives it from its k8s.io/client-go (v0.37 -> 1.37); `go install` must pass it the same way.
HELM_K8S_MAJOR="1"
HELM_K8S_MINOR="37"
KUBERNETES_VALIDATE_VERSION="1.37.0"
# Kubernetes versions whose schemas are kept: the chart's minimum (1.27), the first with native
# sidecars (1.29), and the newest kubernetes-validate ships.
K8S_SCHEMA_VERSIONS="1.27.0 1.29.0 1.37.0"
PROMETHEUS_OPERATOR_MODELS_VERSION="6.0.0"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${root}/.tools"
mkdir -p "${tools}/bin"

log() { printf 'install-helm-tools: %s\n' "$*" >&2; }

# --- helm ---------------------------------------------------------------------------------------
helm_bin="${tools}/bin/helm"
helm_stamp="${tools}/bin/.helm-build"
helm_build="${HELM_VERSION} k8s=${HELM_K8S_MAJOR}.${HELM_K8S_MINOR}"
if [ -x "${helm_bin}" ] && [ "$(cat "${helm_stamp}" 2>/dev/null || true)" = "${helm_build}" ] \
   && [ "$("${helm_bin}" version --template '{{.Version}}' 2>/dev/null || true)" = "${HELM_VERSION}" ]; then
  log "helm ${HELM_VERSION} present"
else
  command -v go >/dev/null || { log "go is required to build helm"; exit 1; }
  log "building helm ${HELM_VERSION} with go install (a few minutes on a cold cache)"
  start=$(date +%s)
  GOBIN="${tools}/bin" CGO_ENABLED=0 GOFLAGS="-modcacherw" \
    go install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} \
        -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=${HELM_K8S_MAJOR} \
        -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${HELM_K8S_MINOR} \
        -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=${HELM_K8S_MAJOR} \
        -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${HELM_K8S_MINOR}" \
      "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
  printf '%s\n' "${helm_build}" > "${helm_stamp}"
  log "helm built in $(( $(date +%s) - start ))s: $("${helm_bin}" version --short)"
fi

# --- Kubernetes JSON schemas --------------------------------------------------------------------
schemas="${tools}/k8s-schemas"
marker="${schemas}/.kubernetes-validate-${KUBERNETES_VALIDATE_VERSION}"
want_all=1
for v in ${K8S_SCHEMA_VERSIONS}; do
  [ -f "${schemas}/v${v}-local-strict/_definitions.json" ] || want_all=0
done
if [ -f "${marker}" ] && [ "${want_all}" = 1 ]; then
  log "Kubernetes schemas (kubernetes-validate ${KUBERNETES_VALIDATE_VERSION}) present"
else
  python="${root}/.venv/bin/python"
  [ -x "${python}" ] || python="$(command -v python3)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "${tmp}"' EXIT
  log "fetching kubernetes-validate ${KUBERNETES_VALIDATE_VERSION} from PyPI for its schemas"
  "${python}" -m pip download --quiet --no-deps --only-binary=:all: \
    --dest "${tmp}" "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}"
  rm -rf "${schemas}"
  mkdir -p "${schemas}"
  "${python}" - "${tmp}" "${schemas}" ${K8S_SCHEMA_VERSIONS} <<'PY'
import pathlib, sys, zipfile
src, dest, versions = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3:]
wheel = next(src.glob("kubernetes_validate-*.whl"))
prefix = "kubernetes_validate/kubernetes-json-schema/"
wanted = {f"v{v}-local-strict" for v in versions}
found = set()
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        if not name.startswith(prefix) or name.endswith("/"):
            continue
        rel = name[len(prefix):]
        top = rel.split("/", 1)[0]
        if top in wanted:
            found.add(top)
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(zf.read(name))
missing = wanted - found
if missing:
    sys.exit(f"kubernetes-validate has no schemas for {sorted(missing)}")
PY
  touch "${marker}"
  log "schemas for ${K8S_SCHEMA_VERSIONS} in ${schemas}"
fi

# --- ServiceMonitor CRD validator (npm) ---------------------------------------------------------
node_dir="${tools}/node"
pkg_json="${node_dir}/node_modules/@kubernetes-models/prometheus-operator/package.json"
have=""
[ -f "${pkg_json}" ] && have="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "${pkg_json}" | head -n1)"
if [ "${have}" = "${PROMETHEUS_OPERATOR_MODELS_VERSION}" ]; then
  log "@kubernetes-models/prometheus-operator ${have} present"
else
  command -v npm >/dev/null || { log "npm is required for the ServiceMonitor schema"; exit 1; }
  log "installing @kubernetes-models/prometheus-operator ${PROMETHEUS_OPERATOR_MODELS_VERSION} from npm"
  mkdir -p "${node_dir}"
  npm install --prefix "${node_dir}" --no-audit --no-fund --loglevel=error --save-exact \
    "@kubernetes-models/prometheus-operator@${PROMETHEUS_OPERATOR_MODELS_VERSION}" >/dev/null
fi

log "done: ${helm_bin}"
