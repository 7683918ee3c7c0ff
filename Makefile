# Responses Gateway build. `make` (or `make help`) lists the targets.
# Pinned tool versions; Python packages are pinned in requirements/dev.lock (`make lock`).
# buf comes from npm (tools/package.json + package-lock.json, into tools/node_modules).
UV_VERSION  := 0.13.9
BUF_VERSION := 1.75.0
PYTHON      ?= $(shell command -v python3.11 || command -v python3)

SHELL       := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
BUF    := tools/node_modules/.bin/buf
LOCK   := requirements/dev.lock
CONFIG ?= config/gateway.yaml
export VENV
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1

# Setup is redone only when one of these changes (content hash kept in the venv).
SETUP_INPUTS := $(LOCK) pyproject.toml clients/python/pyproject.toml
SETUP_KEY     = $$(cat $(SETUP_INPUTS) | sha256sum | cut -c1-16)-uv$(UV_VERSION)
SETUP_STAMP  := $(VENV)/.setup-stamp
# Type-check only what exists (server/ etc. land separately); see [tool.mypy] in pyproject.toml.
MYPY_DIRS     = $(wildcard server clients/python/src scripts bench)

.PHONY: help setup python-env tools native generate check-generate lint fmt test test-tools test-servers run bench bench-soak lock clean distclean

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

setup: python-env tools native ## create/refresh .venv and tools (no-op when nothing changed)
	@if [[ ! -e clients/python/src/responses_gateway/v1/__init__.py ]] \
	   && [[ -n "$$(find proto -name '*.proto' -print -quit 2>/dev/null)" ]]; then scripts/generate.sh; fi

python-env:
	@if [[ -x $(PY) && "$$(cat $(SETUP_STAMP) 2>/dev/null)" == "$(SETUP_KEY)" ]]; then exit 0; fi; \
	if [[ ! -x $(PY) ]]; then \
	  $(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "need Python >= 3.11"'; \
	  $(PYTHON) -m venv $(VENV); \
	fi; \
	[[ "$$($(UV) --version 2>/dev/null)" == "uv $(UV_VERSION) "* ]] \
	  || $(PY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; \
	$(UV) pip sync --quiet --python $(PY) $(LOCK); \
	$(UV) pip install --quiet --python $(PY) --no-deps --no-build-isolation -e clients/python -e .; \
	echo "$(SETUP_KEY)" > $(SETUP_STAMP); \
	echo "setup: $(VENV) synced with $(LOCK)"

# The codec compiled to C extensions (mypyc; server/responses_gateway/codec/native.py): rebuilt when
# its sources, the build script or the environment change; without a C compiler the sources run.
NATIVE_STAMP   := server/responses_gateway/codec/native.stamp
# Every codec source (a superset of native.MODULES): no second list to keep in step.
NATIVE_SOURCES := $(wildcard server/responses_gateway/codec/*.py)
native: python-env $(NATIVE_STAMP) ## compile the codec to C extensions with mypyc (part of setup)
$(NATIVE_STAMP): $(NATIVE_SOURCES) scripts/build_native.py $(SETUP_STAMP)
	$(PY) scripts/build_native.py

tools: $(BUF)
$(BUF): tools/package.json tools/package-lock.json
	@# Not `npm ci`: the registry serves only buf's linux builds, so the lock lacks the other
	@# platforms' optional packages and ci rejects it. --no-save still installs the locked tree.
	cd tools && npm install --no-save --ignore-scripts --no-audit --no-fund --loglevel=error
	@[[ "$$($(BUF) --version)" == "$(BUF_VERSION)" ]] || { echo "buf is not $(BUF_VERSION): fix tools/package.json" >&2; exit 1; }
	@touch $@

generate: setup ## regenerate the client code from proto/, and the Python _sync.py from _async.py
	scripts/generate.sh

check-generate: setup ## fail if the committed generated code is stale
	scripts/generate.sh --check

lint: setup ## ruff, ruff format --check, mypy, import-linter layers, buf lint/format/breaking (vs main)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(MYPY_DIRS)
	$(VENV)/bin/lint-imports --no-cache
	@if [[ ! -d proto ]]; then echo "lint: no proto/ yet, skipping buf"; exit 0; fi; \
	echo "$(BUF) lint"; $(BUF) lint; \
	echo "$(BUF) format --diff --exit-code"; $(BUF) format --diff --exit-code; \
	against="$$(git rev-parse --git-common-dir)#branch=main"; \
	if git cat-file -e main:proto 2>/dev/null; then \
	  echo "$(BUF) breaking --against '$$against'"; $(BUF) breaking --against "$$against"; \
	else echo "lint: main has no proto/ yet (first landing), skipping buf breaking"; fi

fmt: setup ## apply ruff fixes/formatting and buf format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	@if [[ -d proto ]]; then $(BUF) format --write; fi

# Lint is part of `test` (adds ~30 s on CI's 2 cores). SKIP_LINT=1 drops it, e.g. to land
# while a lint failure is being fixed elsewhere.
test: setup check-generate $(if $(SKIP_LINT),,lint) test-tools test-servers ## what CI runs: setup, check-generate, lint, pytest
	$(PY) -m pytest $(PYTEST_ARGS)

test-servers: ## the PostgreSQL and Redis servers the store tests start on loopback (Debian's packages)
	scripts/install-store-servers.sh

test-tools: ## tools the chart tests need: helm and the Kubernetes API schemas (into .tools/)
	scripts/install-helm-tools.sh

run: setup ## serve the gateway (CONFIG=config/gateway.yaml)
	$(VENV)/bin/responses-gateway serve --config $(CONFIG)

bench: setup ## run the benchmark (python -m bench)
	$(PY) -m bench $(BENCH_ARGS)

# SOAK_ARGS=--minutes 60 for a longer run; `python -m bench.soak --help` lists the rest.
bench-soak: setup ## soak `serve --workers 2` with streams for 10 min: RSS / fds per worker (python -m bench.soak)
	$(PY) -m bench.soak $(SOAK_ARGS)

lock: ## re-pin requirements/dev.lock from the pyproject files (UV_ARGS=--upgrade to bump)
	@[[ -x $(UV) ]] || $(MAKE) python-env
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 \
	  --no-emit-package responses-gateway-client --custom-compile-command "make lock" \
	  -o $(LOCK) $(UV_ARGS)
	@# The runtime subset, for the container image (no test or lint tools in it).
	$(UV) pip compile pyproject.toml --python-version 3.11 \
	  --no-emit-package responses-gateway-client --custom-compile-command "make lock" \
	  -o requirements/runtime.lock $(UV_ARGS)

clean: ## remove caches and build output (keeps .venv and tools)
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist $(NATIVE_STAMP)
	find server -name '*.so' -delete
	find . -path ./.venv -prune -o -path ./tools/node_modules -prune -o \
	  \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +

distclean: clean ## also remove .venv and tools/node_modules
	rm -rf $(VENV) tools/node_modules
