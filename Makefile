# Qubeflow — `make help` lists the targets. `make run` and `make test` create .venv when missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.qubeflow-installed
# One REGISTRY/TAG names every image; compiled YAML and built images use the same values.
REGISTRY ?= ghcr.io/qubeflow
TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
ARGS ?=
PYTEST_ARGS ?=
# pytest-xdist workers for make test/test-fast: one per CPU this process may use (nproc), at
# most 4; 0 runs the tests in one process. Not -n auto: that counts the host's physical cores,
# not a container's. Modules whose module-scoped fixtures are costly carry an xdist_group mark.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 4 ? n : 4 )))
XDIST := -n $(TEST_WORKERS) --dist loadgroup
# Cluster settings compiled into every task (kfp-kubernetes).
PULL_POLICY ?= IfNotPresent
PULL_SECRETS ?=
export QUBEFLOW_IMAGE_REGISTRY := $(REGISTRY)
export QUBEFLOW_IMAGE_TAG := $(TAG)
export QUBEFLOW_IMAGE_PULL_POLICY := $(PULL_POLICY)
export QUBEFLOW_IMAGE_PULL_SECRETS := $(PULL_SECRETS)
ENV ?= dev
IMAGES_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: bench-baseline bench-fixed help venv serving-venv run test test-fast compile images deploy lint format bench bench-mps bench-scale mlflow-ui serve clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[qiskit,pennylane,dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv with the pinned versions from pyproject.toml (if missing or stale)

# MLServer (the runtime KServe serves MLflow models with) in its own venv, as KServe runs it in
# its own image: the `serving` extra plus the core pins of SERVING_CORE, read from pyproject.toml;
# never the project itself (the served model brings its code in code/).
SERVING_VENV ?= .venv/serving
SERVING_STAMP := $(SERVING_VENV)/.qubeflow-serving-installed
SERVING_CORE ?= mlflow scikit-learn numpy pandas scipy pyarrow tenacity
$(SERVING_STAMP): pyproject.toml
	@test -x $(SERVING_VENV)/bin/python || $(PYTHON) -m venv $(SERVING_VENV)
	$(SERVING_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SERVING_VENV)/bin/python -m pip install --quiet $$($(PYTHON) -c 'import re, sys, tomllib; \
	  p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	  core = [d for d in p["dependencies"] if re.split("[=<>!~ ;\[]", d)[0] in sys.argv[1:]]; \
	  print(" ".join(core + p["optional-dependencies"]["serving"]))' $(SERVING_CORE))
	@touch $(SERVING_STAMP)

serving-venv: $(SERVING_STAMP) ## Create .venv/serving: MLServer + mlserver-mlflow (the KServe runtime) for the serving tests

run: $(STAMP) ## Run the whole retraining pipeline locally (KFP local runner + local MLflow); ARGS="--set k=v"
	$(BIN)/qubeflow run $(ARGS)

test: $(STAMP) $(SERVING_STAMP) ## Run the full test suite (unit, component, end-to-end against real servers)
	QUBEFLOW_SERVING_VENV=$(abspath $(SERVING_VENV)) $(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

test-fast: $(STAMP) ## Run the unit and component tests only (no servers, no pipeline runs; under a minute)
	$(BIN)/python -m pytest tests/unit tests/components $(XDIST) $(PYTEST_ARGS)

compile: $(STAMP) ## Compile the pipeline to build/retraining.yaml (images from REGISTRY/TAG)
	$(BIN)/qubeflow compile --out build

images: $(STAMP) ## Build the base and quantum images (docker, podman or buildah) as $(REGISTRY)/...:$(TAG); IMAGES_ARGS="--base-image X --ca-bundle F"
	$(BIN)/python -m pipelines.image_build $(IMAGES_ARGS)

deploy: ## Apply a Kustomize overlay to the current kube context: make deploy ENV=dev|prod
	kubectl delete -k manifests/overlays/$(ENV) -l qubeflow.dev/rerun=on-deploy --ignore-not-found
	kubectl apply -k manifests/overlays/$(ENV)

lint: $(STAMP) ## Lint: ruff check + format --check, the import-layer contracts (import-linter), hadolint
	$(BIN)/ruff check components pipelines tests benchmarks
	$(BIN)/ruff format --check components pipelines tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/hadolint images/*/Dockerfile

format: $(STAMP) ## Format with ruff
	$(BIN)/ruff format components pipelines tests benchmarks
	$(BIN)/ruff check --fix components pipelines tests benchmarks

BENCH_ARGS ?=
bench: $(STAMP) ## Side-by-side kernel benchmark vs qiskit-machine-learning and PennyLane; BENCH_ARGS="--cap 20"
	$(BIN)/python benchmarks/kernel_bench.py $(BENCH_ARGS)

bench-baseline: $(STAMP) ## The classical baseline's size estimate against a real fit (PASS within 2.5x)
	$(BIN)/python benchmarks/baseline_cost_bench.py $(BENCH_ARGS)

bench-fixed: $(STAMP) ## The default run's fixed costs per task, beside a plain script; BENCH_ARGS="--before-rev REV"
	$(BIN)/python benchmarks/fixed_cost_bench.py $(BENCH_ARGS)

bench-mps: $(STAMP) ## MPS engine: agreement vs statevector, Gram q=100, vs Aer MPS, Nystroem, serving; BENCH_MPS_ARGS="--nm-rows 2000"
	PYTHONPATH=. $(BIN)/python benchmarks/mps_bench.py $(BENCH_MPS_ARGS)

BENCH_SCALE_ARGS ?=
bench-scale: $(STAMP) ## The whole pipeline at 10^3..10^6 rows: time, peak RSS, AUC, targets; BENCH_SCALE_ARGS="--rows 1000,20000"
	$(BIN)/python benchmarks/scale_bench.py $(BENCH_SCALE_ARGS)

mlflow-ui: $(STAMP) ## Serve the MLflow store `make run` writes (.qubeflow/) on http://127.0.0.1:5000
	$(BIN)/mlflow server --backend-store-uri sqlite:///$(CURDIR)/.qubeflow/mlflow.db \
	  --artifacts-destination $(CURDIR)/.qubeflow/mlartifacts --host 127.0.0.1 --port 5000 --workers 1

MODEL ?= qubeflow-classifier
PORT ?= 5001
serve: $(STAMP) ## Serve MODEL@champion on http://127.0.0.1:$(PORT)/invocations (needs MLFLOW_TRACKING_URI)
	@test -n "$$MLFLOW_TRACKING_URI" || { echo "set MLFLOW_TRACKING_URI (e.g. make mlflow-ui, then http://127.0.0.1:5000)"; exit 2; }
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/mlflow models serve -m "models:/$(MODEL)@champion" \
	  --env-manager local -h 127.0.0.1 -p $(PORT)

clean: ## Remove local run state and build output (keeps .venv, incl. .venv/serving)
	rm -rf .qubeflow build .pytest_cache .ruff_cache
