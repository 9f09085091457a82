"""A caller's view of the billing API over HTTP, written from the contract (../shared/API.md,
docs/api.md), for the end-to-end tests (tests/e2e/).

Every test gets its own `Caller` with its own internal service subject and admin subject, so the
per-service (200/min) and per-admin (30/min) rate limits never couple two tests, and its own
account ids (`new_account()`), so tests never see each other's money.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import jwt
import requests

from devserver.testing import StackProcess

TIMEOUT = 30
UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")

RESERVE = "/api/internal/billing/reserve"
FINALIZE = "/api/internal/billing/finalize"
RELEASE = "/api/internal/billing/release"
BALANCE = "/api/billing/balance"
HISTORY = "/api/billing/history"
PRICING = "/api/billing/pricing"
OPENAPI = "/api/billing/openapi.json"
MODE = "/admin/billing/config/mode"


def mint_path(account_id: str) -> str:
    return f"/admin/billing/accounts/{account_id}/mint"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def body_of(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def describe(response: requests.Response) -> str:
    """The request and the response, for assertion messages (a mismatch is reported with both)."""
    request = response.request
    sent = request.body
    if isinstance(sent, bytes):
        sent = sent[:300].decode("utf-8", "replace") + ("..." if len(sent) > 300 else "")
    return (f"{request.method} {request.url} body={sent!r} -> {response.status_code} "
            f"{json.dumps(body_of(response))[:800]}")


def assert_status(response: requests.Response, status: int) -> Any:
    assert response.status_code == status, describe(response)
    return body_of(response)


def assert_error(response: requests.Response, status: int | tuple[int, ...], code: str | tuple[str, ...] | None = None
                 ) -> dict[str, Any]:
    """The contract's error shape: {"error": {"code": UPPER_SNAKE, "message": str, "details": {}}}."""
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, describe(response)
    assert response.headers.get("Content-Type", "").startswith("application/json"), describe(response)
    body = body_of(response)
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), describe(response)
    error = body["error"]
    assert isinstance(error.get("code"), str) and UPPER_SNAKE.match(error["code"]), describe(response)
    assert isinstance(error.get("message"), str) and error["message"], describe(response)
    assert isinstance(error.get("details"), dict), describe(response)
    if code is not None:
        codes = (code,) if isinstance(code, str) else code
        assert error["code"] in codes, describe(response)
    return error


class Caller:
    """One test's identities: an internal service, an admin, and users of fresh accounts."""

    def __init__(self, stack: StackProcess, name: str) -> None:
        self.stack = stack
        self.url = stack.url
        self.service = unique(f"svc-e2e-{name}")
        self.admin = unique(f"ops-e2e-{name}")
        self.http = requests.Session()

    # -- tokens ---------------------------------------------------------------------------------
    def internal_token(self, service: str | None = None) -> str:
        return self.stack.token("internal", service or self.service)

    def admin_token(self, admin: str | None = None) -> str:
        return self.stack.token("admin", admin or self.admin)

    def user_token(self, account_id: str) -> str:
        return self.stack.token("user", account_id)

    def signed(self, secret_name: str, claims: dict[str, Any], algorithm: str = "HS256") -> str:
        """A hand-made token signed with one of the stack's secrets (or a literal secret)."""
        secret = self.stack.secrets.get(secret_name, secret_name)
        return jwt.encode(claims, secret, algorithm=algorithm)

    def internal_claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": "loa-finn", "aud": "arrakis-internal", "sub": self.service, "iat": now, "exp": now + 300}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def admin_claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"aud": "arrakis-billing-admin", "sub": self.admin, "iat": now, "exp": now + 600}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    # -- raw HTTP -------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, json_body: Any = None, raw: str | bytes | None = None,
                token: str | None = None, headers: dict[str, str] | None = None,
                params: dict[str, Any] | None = None) -> requests.Response:
        all_headers: dict[str, str] = {}
        data: str | bytes | None = None
        if raw is not None:
            data = raw
            all_headers["Content-Type"] = "application/json"
        elif json_body is not None:
            data = json.dumps(json_body)
            all_headers["Content-Type"] = "application/json"
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        all_headers.update(headers or {})
        return self.http.request(method, self.url + path, data=data, headers=all_headers, params=params,
                                 timeout=TIMEOUT)

    # -- the routes, as a caller uses them ------------------------------------------------------
    def set_mode(self, mode: str) -> dict[str, Any]:
        body = assert_status(self.request("PUT", MODE, json_body={"mode": mode}, token=self.admin_token()), 200)
        assert body["mode"] == mode, body
        return body

    def mint(self, account_id: str, amount: int | str, *, pool: str | None = None, source: str = "deposit",
             key: str | None = None, admin: str | None = None, expect: int | None = 201) -> requests.Response:
        body: dict[str, Any] = {"amountMicro": str(amount), "sourceType": source, "description": "e2e credit"}
        if pool is not None:
            body["poolId"] = pool
        if key is not None:
            body["idempotencyKey"] = key
        response = self.request("POST", mint_path(account_id), json_body=body, token=self.admin_token(admin))
        if expect is not None:
            assert_status(response, expect)
        return response

    def reserve(self, account_id: str, estimate: int | str, *, reservation_id: str | None = None,
                pool: str | None = None, ttl: int | None = None, service: str | None = None) -> requests.Response:
        body: dict[str, Any] = {"accountId": account_id, "estimatedCostMicro": str(estimate)}
        if reservation_id is not None:
            body["reservationId"] = reservation_id
        if pool is not None:
            body["poolId"] = pool
        if ttl is not None:
            body["ttlSeconds"] = ttl
        return self.request("POST", RESERVE, json_body=body, token=self.internal_token(service))

    def reserve_ok(self, account_id: str, estimate: int | str, **kwargs: Any) -> dict[str, Any]:
        return assert_status(self.reserve(account_id, estimate, **kwargs), 201)

    def finalize(self, reservation_id: str, actual: int | str, *, service: str | None = None) -> requests.Response:
        body = {"reservationId": reservation_id, "actualCostMicro": str(actual)}
        return self.request("POST", FINALIZE, json_body=body, token=self.internal_token(service))

    def finalize_ok(self, reservation_id: str, actual: int | str) -> dict[str, Any]:
        return assert_status(self.finalize(reservation_id, actual), 200)

    def release(self, reservation_id: str, *, service: str | None = None) -> requests.Response:
        return self.request("POST", RELEASE, json_body={"reservationId": reservation_id},
                            token=self.internal_token(service))

    def balance(self, account_id: str, **params: Any) -> dict[str, Any]:
        response = self.request("GET", BALANCE, token=self.user_token(account_id), params=params or None)
        return assert_status(response, 200)

    def pool(self, account_id: str, pool: str = "general") -> dict[str, int]:
        """One pool's figures as integers; an account with no lots yet reads as all zeros."""
        body = self.balance(account_id)
        for entry in body["pools"]:
            if entry["poolId"] == pool:
                return {k: int(v) for k, v in entry.items() if k.endswith("Micro")}
        return {"availableMicro": 0, "reservedMicro": 0, "consumedMicro": 0}

    def total_available(self, account_id: str) -> int:
        return int(self.balance(account_id)["totalAvailableMicro"])

    def history(self, account_id: str, **params: Any) -> dict[str, Any]:
        response = self.request("GET", HISTORY, token=self.user_token(account_id), params=params or None)
        return assert_status(response, 200)

    def all_entries(self, account_id: str, **params: Any) -> list[dict[str, Any]]:
        return self.history(account_id, limit=100, **params)["entries"]

    def new_account(self, funded: int | None = None, **mint_kwargs: Any) -> str:
        account_id = unique("acct-e2e")
        if funded:
            self.mint(account_id, funded, **mint_kwargs)
        return account_id
