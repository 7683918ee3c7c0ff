# syntax=docker/dockerfile:1
#
# Responses Gateway image. Build from the repository root:
#   docker build -t responses-gateway:0.1.0 .
# The Helm chart (helm/responses-gateway) runs this image's ENTRYPOINT with
#   serve --config /etc/responses-gateway/gateway.yaml --host ... --grpc-port ... --http-port ...
# as uid 10001 on a read-only root filesystem (writable: /data and /tmp, both volumes).

# Both stages must use the same Python build: the venv's interpreter is a symlink into it.
# Pin by digest in release builds: --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:...
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# 1. Pinned third-party dependencies first (own layer: rebuilt only when the lock changes).
#    requirements/runtime.lock (runtime deps only) is preferred; dev.lock also works, with test tools
#    in the image. Either must be a complete, pinned set: it is installed with --no-deps.
COPY requirements/ requirements/
RUN set -eu; \
    if [ -f requirements/runtime.lock ]; then lock=requirements/runtime.lock; \
    elif [ -f requirements/dev.lock ]; then lock=requirements/dev.lock; \
      echo "warning: requirements/runtime.lock missing, installing requirements/dev.lock" >&2; \
    else echo "error: requirements/runtime.lock (or dev.lock) is required" >&2; exit 1; fi; \
    pip install --no-deps -r "$lock"

# 2. The two local packages: generated gRPC stubs, then the server. No dependency resolution here:
#    everything they need came from the lock, so a missing pin fails `pip check` below.
COPY . .
RUN pip install --no-deps ./clients/python . \
 && pip check \
 && responses-gateway --help > /dev/null \
 && python -m compileall -q /opt/venv

FROM ${PYTHON_IMAGE} AS runtime
ARG UID=10001
ARG GID=10001
RUN groupadd --system --gid "${GID}" gateway \
 && useradd --system --uid "${UID}" --gid "${GID}" --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin gateway \
 && mkdir -p /etc/responses-gateway /data \
 && chown "${UID}:${GID}" /data
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TMPDIR=/tmp
WORKDIR /data
USER ${UID}:${GID}
# 50051: gRPC (Responses service, grpc.health.v1.Health, reflection); 8080: REST, /healthz, /metrics.
EXPOSE 50051 8080
# SIGTERM starts the graceful shutdown (in-flight streams finish within the pod's grace period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["responses-gateway"]
CMD ["serve", "--config", "/etc/responses-gateway/gateway.yaml"]
