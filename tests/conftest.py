"""Shared fixtures: an in-process, patched moto with the template's tables, handler invocation
without HTTP, and token minting for the three caller kinds."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest

from devserver.inprocess import billing_backend
from devserver.invoke import event, invoke, load_handler, reply

ROOT = Path(__file__).resolve().parents[1]

TEST_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "BILLING_TABLE": "BillingTable",
    "LEDGER_TABLE": "LedgerTable",
    "BILLING_INTERNAL_JWT_SECRET": "test-internal-secret-0123456789abcdef",
    "BILLING_ADMIN_JWT_SECRET": "test-admin-secret-0123456789abcdef0123",
    "BILLING_ADMIN_JWT_SECRET_PREV": "test-admin-previous-secret-0123456789",
    "BILLING_USER_JWT_SECRET": "test-user-secret-0123456789abcdef01234",
    "BILLING_CONFIG_CACHE_SECONDS": "0",
    "BILLING_RATE_LIMIT_INTERNAL_PER_MIN": "200",
    "BILLING_RATE_LIMIT_ADMIN_PER_MIN": "30",
    "WORK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/WorkQueue",
    "BILLING_RETRY_BASE_SECONDS": "30",
    "BILLING_MAX_WORK_ATTEMPTS": "6",
    "NOWPAYMENTS_IPN_SECRET": "test-nowpayments-ipn-secret-0123456789",
    "STRIPE_WEBHOOK_SECRET": "whsec_test_0123456789abcdef0123456789",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_SERVICE_NAME": "billing",
    "POWERTOOLS_METRICS_NAMESPACE": "CreditBilling",
}
# Handler modules are imported at collection (some suites build their parameters from the
# routes), and a handler validates its configuration when it is imported: give it the test
# environment from the start. Every test still gets exactly TEST_ENV (the fixture below).
for _name, _value in TEST_ENV.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)


@pytest.fixture
def aws(_environment: None):
    """A fresh patched moto (item-level transaction rollback, serialized) with the template's
    tables, seeded like a new deployment (shadow mode)."""
    with billing_backend(ROOT / "template.yaml") as client:
        yield client


class Tokens:
    """Mint tokens the way callers would (and the ways they get it wrong)."""

    @staticmethod
    def internal(sub: str = "svc-test", *, lifetime: int = 300, secret: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": "loa-finn", "aud": "arrakis-internal", "sub": sub, "iat": now, "exp": now + lifetime,
                   **claims}
        return jwt.encode(payload, secret or TEST_ENV["BILLING_INTERNAL_JWT_SECRET"], algorithm="HS256")

    @staticmethod
    def admin(sub: str = "ops-test", *, previous: bool = False, lifetime: int = 3600, **claims: Any) -> str:
        now = int(time.time())
        secret = TEST_ENV["BILLING_ADMIN_JWT_SECRET_PREV" if previous else "BILLING_ADMIN_JWT_SECRET"]
        payload = {"aud": "arrakis-billing-admin", "sub": sub, "iat": now, "exp": now + lifetime, **claims}
        return jwt.encode(payload, secret, algorithm="HS256")

    @staticmethod
    def user(sub: str = "acct-test", *, lifetime: int = 3600, **claims: Any) -> str:
        now = int(time.time())
        payload = {"sub": sub, "exp": now + lifetime, **claims}
        return jwt.encode(payload, TEST_ENV["BILLING_USER_JWT_SECRET"], algorithm="HS256")


@pytest.fixture
def tokens() -> type[Tokens]:
    return Tokens


def handler_module(name: str) -> Any:
    return load_handler(name)


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        return (self.body.get("error") or {}).get("code")


class Api:
    """Invoke handlers in-process with API Gateway proxy events, as the Lambda service would."""

    def call(self, route: str, body: Any = None, *, token: str | None = None, query: dict | None = None,
             path: dict | None = None, raw_body: str | None = None, headers: dict | None = None) -> Reply:
        proxy = event(route, body, token=token, query=query, path=path, raw_body=raw_body, headers=headers)
        return Reply(*reply(invoke(route, proxy)))

    # Shortcuts used by most tests.
    def mint(self, account: str, amount: int | str, *, token: str, pool: str = "general", **extra: Any) -> Reply:
        body = {"amountMicro": str(amount), "poolId": pool, "sourceType": "deposit", "description": "test credit",
                **extra}
        return self.call("mint", body, token=token, path={"accountId": account})

    def set_mode(self, mode: str, *, token: str) -> Reply:
        return self.call("mode", {"mode": mode}, token=token)


@pytest.fixture
def api(aws: Any) -> Api:
    return Api()


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("HYPOTHESIS_PROFILE", "ci")


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
