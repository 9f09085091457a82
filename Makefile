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

$(STAMP): pyproject.toml clients/python/pyproject.toml
	@command -v python3.11 >/dev/null || { echo "python3.11 is required (Lambda runtime python3.11)"; exit 1; }
	@test -x $(PY) || python3.11 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet -e ./clients/python
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

unit: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile

bench: $(STAMP)
	$(PY) bench/run.py

# Print a fresh token: make -s token KIND=internal|admin|user [SUB=...]
token: $(STAMP)
	@$(PY) -m devserver.tokens $(KIND) $(SUB)

clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache .hypothesis

events: $(STAMP)
	$(PY) scripts/generate_events.py
