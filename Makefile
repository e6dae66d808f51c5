# The two commands of the Quick start: `make run` and `make test`. Both create the
# environment first. Everything runs from the pinned requirements in .venv.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-unit lint format check-iac check-container bench-api bench-ingest clean

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip check
	touch $@

.env:
	cp .env.example .env

run: $(STAMP) .env
	$(BIN)/python -m scripts.devstack run

# terraform_validate tests need the terraform binary: check-iac runs them (through
# terraform/check.sh, which says SKIPPED loudly when there is no terraform).
test: $(STAMP) lint check-iac check-container
	$(BIN)/python -m pytest -m "not terraform_validate"

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "not integration and not terraform_validate"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# checkov pins conflict with the app's, so it lives in a venv of its own.
.venv-iac/.installed: requirements-iac.txt
	test -x .venv-iac/bin/python || $(PYTHON) -m venv .venv-iac
	.venv-iac/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-iac.txt
	touch $@

check-iac: $(STAMP) .venv-iac/.installed
	CHECKOV=.venv-iac/bin/checkov PYTHON=$(BIN)/python bash terraform/check.sh

check-container: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" bash docker/check.sh

bench-api: $(STAMP)
	$(BIN)/python -m loadtests.bench_api

bench-ingest: $(STAMP)
	$(BIN)/python -m loadtests.bench_ingest

clean:
	rm -rf $(VENV) .venv-iac .stack staticfiles .pytest_cache .ruff_cache .hypothesis
