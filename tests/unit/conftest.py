"""The unit tier: pure rules and fake stores, no moto. The root conftest's moto-backed fixtures
are refused here, so a test that needs tables says so at once and goes to tests/integration/
(tests/contract/test_tiers.py checks that collecting this tier imports no moto)."""

from __future__ import annotations

from typing import NoReturn

import pytest

MOVE = ("is backed by moto, and the unit tier runs without it: put this test in tests/integration/ "
        "(or give it a fake store, as test_retry_bound.py does)")


@pytest.fixture
def aws() -> NoReturn:
    pytest.fail(f"the `aws` fixture {MOVE}", pytrace=False)


@pytest.fixture
def api() -> NoReturn:
    pytest.fail(f"the `api` fixture {MOVE}", pytrace=False)
