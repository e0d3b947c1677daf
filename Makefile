# churnops: `make demo` and `make test` do everything on a fresh machine (they run `setup` first).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := trainer/.venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.churnops-installed
NODE_STAMP := node_modules/.churnops-installed
# onnxruntime-node's install script would fetch optional CUDA files from a host we cannot (and need not) reach.
export ONNXRUNTIME_NODE_INSTALL := skip

SPARK_STAMP := $(VENV)/.churnops-spark-installed
BENCH_STAMP := $(VENV)/.churnops-bench-installed
PYSPARK := pyspark==4.0.1

.PHONY: help setup build demo test test-ts test-py test-spark test-deploy lint bench bench-quality clean

help:
	@echo "make setup  install the Python trainer (venv) and the TypeScript product (npm ci + build)"
	@echo "make demo   synthesize customers, train, promote, score, show the top-risk customers"
	@echo "make test   vitest (SQLite + PostgreSQL), pytest, cross-language parity, Spark local mode"
	@echo "make lint   biome + tsc + ruff"
	@echo "make bench  benchmarks (print JSON)"
	@echo "make bench-quality  churnops against CatBoost, LightGBM, XGBoost, ... on the same folds (JSON; installs the peers)"

$(VENV_STAMP): trainer/requirements.lock trainer/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r trainer/requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e trainer
	touch $@

$(NODE_STAMP): package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

build: $(NODE_STAMP)
	npm run --silent build

# The console's browser tests drive Debian's chromium (installed from the distribution, never a browser download),
# with a Japanese font so the Japanese pages' screenshots show text. Only the tests need them, not the demo.
CHROMIUM := /usr/bin/chromium
BROWSER_PACKAGES := chromium fonts-noto-cjk
$(CHROMIUM):
	apt-get install -y --no-install-recommends $(BROWSER_PACKAGES) || (apt-get update && apt-get install -y --no-install-recommends $(BROWSER_PACKAGES))

setup: $(VENV_STAMP) build

demo: setup
	./bin/churnops.js demo

test: setup $(CHROMIUM) test-ts test-py test-spark test-deploy

# Each suite prints its wall time (bash's `time`), so a slow CI run shows where its minutes went.
test-ts:
	time npx vitest run

test-py:
	cd trainer && time .venv/bin/python -m pytest -q -m "not spark"

# pyspark is large and optional (`make setup` does not need it); the tests install it and run Spark in local mode.
$(SPARK_STAMP): $(VENV_STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check '$(PYSPARK)'
	touch $@

test-spark: $(SPARK_STAMP)
	cd trainer && time .venv/bin/python -m pytest -q -m spark

# The quality benchmark's peers (the trainer's `bench` extra, pinned with their dependencies in
# requirements-bench.lock): installed here only, never by setup or test.
$(BENCH_STAMP): $(VENV_STAMP) trainer/requirements-bench.lock
	$(PY) -m pip install --quiet --disable-pip-version-check -r trainer/requirements-bench.lock
	touch $@

bench-quality: $(BENCH_STAMP)
	$(PY) benchmarks/model_quality.py

# Compose, Kubernetes (kustomize + schemas), Prometheus rules and workflows, checked offline.
test-deploy:
	time deploy/validate.sh

lint: setup
	npx biome check src test benchmarks
	npx tsc -p tsconfig.json --noEmit
	cd trainer && .venv/bin/ruff check . && .venv/bin/ruff format --check .
	$(VENV)/bin/ruff check benchmarks && $(VENV)/bin/ruff format --check benchmarks

bench: setup
	node --import tsx benchmarks/score_throughput.ts 1000000,10000000
	$(PY) benchmarks/train_quality.py
	$(PY) benchmarks/train_speed.py
	node --import tsx benchmarks/api_latency.ts
	npx tsx benchmarks/monitor_scenarios.ts
	node --import tsx benchmarks/estimated_performance.ts

# churnops:dev and churnops-trainer:dev from local Debian bookworm bases, smoke-tested inside (root; buildah).
.PHONY: images
images:
	deploy/images/build.sh

clean:
	rm -rf dist node_modules $(VENV) .churnops
