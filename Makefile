# The Makefile is PhotoVeil's interface: `make help` lists what it can do.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 3000
PYTEST_ARGS ?=
N ?= 1000
CLIENTS ?= 32
MODEL := src/photoveil/models/centerface.onnx
STAMP := $(VENV)/.installed

.PHONY: help install run test bench bench-local screenshots lint format checkov build deploy invoke load redrive clean simulate simulate-validate

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[image,local,dev,cli,bench]'
	@touch $@

$(MODEL): scripts/fetch_model.py | $(STAMP)
	$(BIN)/python scripts/fetch_model.py --dest $@

TEST_IMAGES := tests/.images/astronaut.png

$(TEST_IMAGES): scripts/fetch_test_images.py | $(STAMP)
	$(BIN)/python scripts/fetch_test_images.py --dest tests/.images

install: $(STAMP) $(MODEL) $(TEST_IMAGES) ## Create .venv and install everything, including the face model

run: install ## Start the whole product on this machine: http://127.0.0.1:3000 (PORT=N to change)
	$(BIN)/photoveil local --port $(PORT) $(if $(WORKERS),--workers $(WORKERS))

test: install ## Install everything and run the whole test suite
	@bash scripts/ensure_chromium.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

screenshots: install ## Retake docs/screenshot*.png (the README's) with the browser test against the local stack
	@bash scripts/ensure_chromium.sh
	PHOTOVEIL_UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/e2e/test_browser.py -k "comes_back_blurred_through_the_local_stack or opens_the_viewer_page"

bench: install ## Print speed and memory figures (12 MP photos, a crowd) and each function's cold start
	@# The package's bytecode, as a non-editable install has it (OpenCV, the floor's, has its own): an
	@# editable one leaves it to the first run, and PYTHONDONTWRITEBYTECODE (set here) stops that.
	$(BIN)/python -m compileall -q src/photoveil
	$(BIN)/python bench/bench.py
	$(BIN)/python bench/cold_start.py

bench-local: install ## Upload-to-blurred latency and throughput of the local stack
	$(BIN)/python bench/local_latency.py

load: install ## Burst N photos (default 1000) from CLIENTS concurrent clients (default 32) through the local stack
	$(BIN)/python bench/load.py --photos $(N) --clients $(CLIENTS)

build: install ## sam build (no Docker): arm64 artifacts for the template's Python runtime, sizes printed
	bash scripts/build.sh

deploy: build ## sam deploy --guided, then publish the website with the stack's outputs
	bash scripts/deploy.sh

invoke: install ## sam local invoke of an events/ file against the local stack, checked: make invoke EVENT=events/sqs_s3_put.json [FN=BlurFunction]
	bash scripts/invoke.sh event "$(FN)" "$(EVENT)"

.PHONY: invoke-photo invoke-check
invoke-photo: install ## A photo end to end, each function in its Lambda container (PHOTO=path to choose it)
	bash scripts/invoke.sh photo $(if $(PHOTO),"$(PHOTO)")

invoke-check: install ## Every events/ file and a photo end to end in arm64 Lambda containers, each outcome checked (CI)
	bash scripts/invoke.sh check

redrive: install ## Move photos from BlurDLQ back to BlurQueue (local stack; TARGET=aws STACK=name for AWS)
	bash scripts/redrive.sh $(if $(filter aws,$(TARGET)),aws $(STACK),local)

checkov: ## Run checkov on template.yaml (its own venv: its pins clash with boto3)
	bash scripts/checkov.sh

LINTED := src tests scripts bench tools build-support

lint: install ## Ruff (check and format) and cfn-lint
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/cfn-lint template.yaml

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)

clean: ## Remove build output and caches (keeps .venv)
	rm -rf .aws-sam build .pytest_cache .ruff_cache test-artifacts bench-out

SIMULATE_FIGURES := bench-out/simulate/figures

simulate: install ## Capacity simulation, 10 -> 10,000 photos/min (tables + PNGs in bench-out/simulate/; ~1 min)
	$(BIN)/python bench/simulate.py $(SIMULATE_ARGS)

simulate-figures: install ## Measure the per-photo CPU times and INIT that make simulate reads (~4 min)
	@mkdir -p $(SIMULATE_FIGURES)
	@# OpenBLAS at one thread, as photoveil sets for itself in the worker: the bench process imports numpy
	@# before photoveil, and two spinning BLAS threads on a shared machine inflate the in-process figures.
	OPENBLAS_NUM_THREADS=1 $(BIN)/python bench/bench.py --runs 3 --json-out $(SIMULATE_FIGURES)/bench.json
	$(BIN)/python bench/cold_start.py --runs 3 --json-out $(SIMULATE_FIGURES)/cold_start.json

simulate-validate: install ## Check the simulation against make load (N=200 CLIENTS=32, 2 workers) on this machine
	$(BIN)/python bench/simulate.py validate --photos $(or $(VALIDATE_N),200) --clients $(CLIENTS) --workers 2
