"""The contract: schemathesis against the local stack, driven only by the document the stack serves.

The run (tests/contract/schemathesis.toml) covers every operation in the coverage and fuzzing
phases with the checks not_a_server_error, status_code_conformance, content_type_conformance,
response_schema_conformance, response_headers_conformance, negative_data_rejection and
positive_data_acceptance; any failure fails this test with schemathesis' own report. Valid bearer
tokens per security scheme come from tests/contract/hooks.py. The stack's rate limits are raised
for the run: the fuzzer sends thousands of requests a minute, and a 429 would only hide answers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from devserver.testing import start_stack

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
DOCUMENT = ROOT / "functions" / "openapi" / "openapi.json"
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance", "negative_data_rejection",
          "positive_data_acceptance")
TIMEOUT_SECONDS = 600  # the run takes ~1.5 min on 2 cores; this only bounds a hang


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    # No background jobs: the fuzzer registers webhook endpoints at any public name, and a
    # delivery would reach out of the machine.
    running = start_stack(log_dir=tmp_path_factory.mktemp("contract-stack"), background=False, env={
        "BILLING_RATE_LIMIT_INTERNAL_PER_MIN": "1000000", "BILLING_RATE_LIMIT_ADMIN_PER_MIN": "1000000"})
    try:
        yield running
    finally:
        running.stop()


def test_the_served_document_is_the_committed_one(stack) -> None:
    """The committed document is checked against the handlers by `make openapi-check`; this checks
    that the stack serves exactly it (a stale build or a cached copy would not)."""
    served = requests.get(f"{stack.url}/api/billing/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.headers["Content-Type"].startswith("application/json")
    assert served.text == DOCUMENT.read_text(), "the stack serves another document: run `make openapi` and rebuild"


def test_schemathesis_finds_no_failure(stack, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("st")), "--config-file", str(HERE / "schemathesis.toml"), "run",
        f"{stack.url}/api/billing/openapi.json", "--url", stack.url, "--checks", ",".join(CHECKS),
        "--phases", "coverage,fuzzing", "--report", "junit", "--report-dir", str(tmp_path), "--no-color",
    ]
    environ = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.contract.hooks",
               "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers" / "billing_core")])}
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True,
                            timeout=TIMEOUT_SECONDS, check=False)
    elapsed = time.monotonic() - started
    report = result.stdout[-20_000:] + result.stderr[-5_000:]
    print(f"schemathesis finished in {elapsed:.0f} s with exit code {result.returncode}")
    assert result.returncode == 0, report
    selected = re.search(r"Selected: (\d+)/(\d+)", result.stdout)
    tested = re.search(r"Tested: (\d+)", result.stdout)
    assert selected and tested and selected[1] == selected[2] == tested[1], report  # every operation ran
    assert re.search(r"✅ Coverage", result.stdout) and re.search(r"✅ Fuzzing", result.stdout), report
