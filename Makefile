# The two commands of the Quick start: `make run` and `make test`. Both create the
# environment first. Everything runs from the hashed locks (requirements*.txt, compiled
# from requirements*.in by `make lock`) in .venv.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-unit lint lock format check-iac check-container bench-api bench-ingest bench-scale load drills clean

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		-r requirements-dev.txt
	$(BIN)/python -m pip check
	touch $@

.env:
	cp .env.example .env

run: $(STAMP) .env
	$(BIN)/python -m scripts.devstack run

# terraform_validate tests need the terraform binary: check-iac runs them (through
# terraform/check.sh, which says SKIPPED loudly when there is no terraform).
test: $(STAMP) lint check-iac check-container test-container
	$(BIN)/python -m pytest -m "not terraform_validate"

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "not integration and not terraform_validate"

# mypy: strict on latam, records, ingestion and gunicorn.conf.py (pyproject.toml).
lint: $(STAMP)
	$(BIN)/python scripts/check_locks.py
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Recompile the hashed locks after editing a requirements*.in (needs PyPI).
lock: $(STAMP)
	LOCK_COMPILE=$(BIN)/pip-compile bash scripts/lock.sh

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# checkov pins conflict with the app's, so it lives in a venv of its own.
.venv-iac/.installed: requirements-iac.txt
	test -x .venv-iac/bin/python || $(PYTHON) -m venv .venv-iac
	.venv-iac/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		-r requirements-iac.txt
	touch $@

check-iac: $(STAMP) .venv-iac/.installed
	CHECKOV=.venv-iac/bin/checkov PYTHON=$(BIN)/python bash terraform/check.sh

check-container: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" bash docker/check.sh

# Builds docker/Dockerfile for real with podman (on a Debian base debootstrapped offline)
# and runs it as Cloud Run would: $PORT, read-only root, non-root, the deploy's smoke test,
# the subscriber, SIGTERM. Needs root and podman (.ci/run installs it); SKIPPED loudly
# when not root. State (podman storage, logs) in .stack/container/, reused between runs.
.PHONY: test-container
test-container: $(STAMP)
	$(BIN)/python -m scripts.container_check

bench-api: $(STAMP)
	$(BIN)/python -m loadtests.bench_api

bench-ingest: $(STAMP)
	$(BIN)/python -m loadtests.bench_ingest

# 100 k then 1 M rows (--sizes for more): read latencies and load rate as the table grows.
bench-scale: $(STAMP)
	$(BIN)/python -m loadtests.bench_scale

# The API under locust within and past its capacity, then a Pub/Sub burst (~8 min; figures,
# CSVs and plots in docs/critical-points/). Non-zero when a threshold or check fails.
load: $(STAMP)
	$(BIN)/python -m loadtests.load
	$(BIN)/python -m loadtests.pipeline_overload

# Six fault drills on the local pipeline (~8 min): one PASS/FAIL line each, a summary,
# non-zero on a fail; figures and timelines in docs/critical-points/.
drills: $(STAMP)
	$(BIN)/python -m loadtests.drills

clean:
	rm -rf $(VENV) .venv-iac .stack staticfiles .pytest_cache .ruff_cache .mypy_cache .hypothesis
