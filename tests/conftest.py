"""Shared fixtures: the test environment for every test, an in-process patched moto with the
template's tables (`aws`), handler invocation without HTTP (`api`), and token minting for the
three caller kinds (`tokens`). The helpers behind them live in tests/support/."""

from __future__ import annotations

import os
from typing import Any

import pytest

# The helpers' own asserts (assert_status, assert_lot_invariant, ...) report like a test's.
pytest.register_assert_rewrite("tests.support")

from devserver.inprocess import billing_backend  # noqa: E402
from tests.support.env import TEMPLATE, TEST_ENV  # noqa: E402
from tests.support.handlers import Api  # noqa: E402
from tests.support.tokens import Tokens  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    # Handler modules are imported at collection (some suites build their parameters from the
    # routes), and a handler validates its configuration when it is imported: give it the test
    # environment from the start. Every test still gets exactly TEST_ENV (the fixture below).
    for name, value in TEST_ENV.items():
        os.environ.setdefault(name, value)


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", raising=False)


@pytest.fixture
def aws(_environment: None):
    """A fresh patched moto (item-level transaction rollback, serialized) with the template's
    tables, seeded like a new deployment (shadow mode)."""
    with billing_backend(TEMPLATE) as client:
        yield client


@pytest.fixture
def tokens() -> type[Tokens]:
    return Tokens


@pytest.fixture
def api(aws: Any) -> Api:
    return Api()


# Suites whose every case is answered by the HTTP edge before the engine matters (tokens, body
# and field validation): `make test` runs them on moto only, not again on DynamoDB Local.
EDGE_ONLY = ("tests/integration/test_auth_matrix.py", "tests/integration/test_hostile_input.py",
             "tests/e2e/test_e2e_auth.py", "tests/e2e/test_e2e_hostile_input.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from devserver.dynamodb_local import MOTO, selected_engine

    if selected_engine() == MOTO:
        return
    kept, skipped = [], []
    for item in items:
        (skipped if item.nodeid.split("::")[0] in EDGE_ONLY else kept).append(item)
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        items[:] = kept
