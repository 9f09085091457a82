"""The auth matrix over HTTP (API.md, Auth): missing or invalid token 401; a valid token of
another kind, or one that is not allowed, 403; and what each kind's checks accept."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.support.http import BALANCE, FINALIZE, HISTORY, Caller, assert_error, assert_status, mint_path, unique

WRONG_SECRET = "an-attacker-guessed-secret-that-is-long-enough-0001"
Token = Callable[[Caller], "str | None"]


def _now() -> int:
    return int(time.time())


def _lifetime(api: Caller, seconds: int) -> dict[str, Any]:
    now = _now()
    return api.internal_claims(iat=now, exp=now + seconds)


# -- internal routes ----------------------------------------------------------------------------
# An authorized call here reaches the handler, which answers 404 RESERVATION_NOT_FOUND for a
# reservation that never existed: no money is involved whatever the outcome.

def call_internal(api: Caller, token: str | None, headers: dict[str, str] | None = None) -> requests.Response:
    return api.request("POST", FINALIZE, json_body={"reservationId": unique("nope"), "actualCostMicro": "1"},
                       token=token, headers=headers)


INTERNAL_REFUSED: dict[str, tuple[Token, int, str | None]] = {
    "no-token": (lambda api: None, 401, "MISSING_TOKEN"),
    "garbage": (lambda api: "not-a-jwt", 401, "INVALID_TOKEN"),
    "wrong-secret": (lambda api: api.signed(WRONG_SECRET, api.internal_claims()), 401, "INVALID_TOKEN"),
    "alg-none": (lambda api: api.signed("", api.internal_claims(), algorithm="none"), 401, "INVALID_TOKEN"),
    "expired": (lambda api: api.signed("BILLING_INTERNAL_JWT_SECRET",
                                       api.internal_claims(iat=_now() - 400, exp=_now() - 100)),
                401, "TOKEN_EXPIRED"),
    "lifetime-301s": (lambda api: api.signed("BILLING_INTERNAL_JWT_SECRET", _lifetime(api, 301)),
                      401, "TOKEN_LIFETIME_EXCEEDED"),
    "lifetime-1h": (lambda api: api.signed("BILLING_INTERNAL_JWT_SECRET", _lifetime(api, 3600)),
                    401, "TOKEN_LIFETIME_EXCEEDED"),
    "no-iat": (lambda api: api.signed("BILLING_INTERNAL_JWT_SECRET", api.internal_claims(iat=None)),
               401, "INVALID_TOKEN"),
    "no-exp": (lambda api: api.signed("BILLING_INTERNAL_JWT_SECRET", api.internal_claims(exp=None)),
               401, None),
    "wrong-issuer": (lambda api: api.signed("BILLING_INTERNAL_JWT_SECRET", api.internal_claims(iss="someone-else")),
                     401, None),
    "wrong-audience": (lambda api: api.signed("BILLING_INTERNAL_JWT_SECRET",
                                              api.internal_claims(aud="arrakis-billing-admin")),
                       403, "WRONG_AUDIENCE"),
    "admin-token": (lambda api: api.admin_token(), 403, "WRONG_AUDIENCE"),
    "user-token": (lambda api: api.user_token(unique("acct")), 403, "WRONG_AUDIENCE"),
}


@pytest.mark.parametrize("case", list(INTERNAL_REFUSED))
def test_internal_route_refuses(api: Caller, case: str) -> None:
    make, status, code = INTERNAL_REFUSED[case]
    assert_error(call_internal(api, make(api)), status, code)


def test_internal_route_refuses_other_schemes(api: Caller) -> None:
    assert_error(call_internal(api, None, headers={"Authorization": f"Basic {api.internal_token()}"}), 401)
    assert_error(call_internal(api, None, headers={"Authorization": "Bearer "}), 401)


INTERNAL_ACCEPTED: dict[str, Token] = {
    "fresh": lambda api: api.internal_token(),
    "lifetime-exactly-300s": lambda api: api.signed("BILLING_INTERNAL_JWT_SECRET", _lifetime(api, 300)),
    "expired-within-30s-skew": lambda api: api.signed("BILLING_INTERNAL_JWT_SECRET",
                                                      api.internal_claims(iat=_now() - 290, exp=_now() - 10)),
    "issued-within-30s-skew": lambda api: api.signed("BILLING_INTERNAL_JWT_SECRET",
                                                     api.internal_claims(iat=_now() + 10, exp=_now() + 300)),
}


@pytest.mark.parametrize("case", list(INTERNAL_ACCEPTED))
def test_internal_route_accepts(api: Caller, case: str) -> None:
    assert_error(call_internal(api, INTERNAL_ACCEPTED[case](api)), 404, "RESERVATION_NOT_FOUND")


def test_reservation_belongs_to_the_service_that_made_it(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=1_000)
    reservation_id = api.reserve_ok(account, 400)["reservationId"]
    intruder = unique("svc-intruder")
    assert_error(api.finalize(reservation_id, 400, service=intruder), 403, "NOT_RESERVATION_OWNER")
    assert_error(api.release(reservation_id, service=intruder), 403, "NOT_RESERVATION_OWNER")
    pool = api.pool(account)
    assert (pool["availableMicro"], pool["reservedMicro"], pool["consumedMicro"]) == (600, 400, 0), pool
    api.finalize_ok(reservation_id, 400)


# -- admin routes -------------------------------------------------------------------------------

def call_admin(api: Caller, token: str | None, account: str) -> requests.Response:
    body = {"amountMicro": "1", "sourceType": "admin_mint", "description": "auth matrix"}
    return api.request("POST", mint_path(account), json_body=body, token=token)


ADMIN_REFUSED: dict[str, tuple[Token, int, str | None]] = {
    "no-token": (lambda api: None, 401, "MISSING_TOKEN"),
    "garbage": (lambda api: "a.b.c", 401, "INVALID_TOKEN"),
    "wrong-secret": (lambda api: api.signed(WRONG_SECRET, api.admin_claims()), 401, "INVALID_TOKEN"),
    "expired": (lambda api: api.signed("BILLING_ADMIN_JWT_SECRET",
                                       api.admin_claims(iat=_now() - 7200, exp=_now() - 3600)),
                401, "TOKEN_EXPIRED"),
    "no-iat": (lambda api: api.signed("BILLING_ADMIN_JWT_SECRET", api.admin_claims(iat=None)), 401, None),
    "no-exp": (lambda api: api.signed("BILLING_ADMIN_JWT_SECRET", api.admin_claims(exp=None)), 401, None),
    "internal-token": (lambda api: api.internal_token(), 403, "WRONG_AUDIENCE"),
    "user-token": (lambda api: api.user_token(unique("acct")), 403, "WRONG_AUDIENCE"),
    "wrong-audience": (lambda api: api.signed("BILLING_ADMIN_JWT_SECRET", api.admin_claims(aud="arrakis-internal")),
                       403, "WRONG_AUDIENCE"),
}


@pytest.mark.parametrize("case", list(ADMIN_REFUSED))
def test_admin_route_refuses(api: Caller, case: str) -> None:
    make, status, code = ADMIN_REFUSED[case]
    account = api.new_account()
    assert_error(call_admin(api, make(api), account), status, code)
    assert api.total_available(account) == 0


def test_admin_previous_secret_is_accepted(api: Caller) -> None:
    account = api.new_account()
    token = api.signed("BILLING_ADMIN_JWT_SECRET_PREV", api.admin_claims())
    lot = assert_status(call_admin(api, token, account), 201)
    assert lot["originalMicro"] == "1", lot
    assert api.total_available(account) == 1


# -- user routes --------------------------------------------------------------------------------

USER_REFUSED: dict[str, tuple[Callable[[Caller, str], Any], int, str | None]] = {
    "no-token": (lambda api, acct: None, 401, "MISSING_TOKEN"),
    "garbage": (lambda api, acct: "garbage", 401, "INVALID_TOKEN"),
    "wrong-secret": (lambda api, acct: api.signed(WRONG_SECRET, {"sub": acct, "exp": _now() + 600}),
                     401, "INVALID_TOKEN"),
    "expired": (lambda api, acct: api.signed("BILLING_USER_JWT_SECRET", {"sub": acct, "exp": _now() - 3600}),
                401, "TOKEN_EXPIRED"),
    "no-exp": (lambda api, acct: api.signed("BILLING_USER_JWT_SECRET", {"sub": acct}), 401, None),
    "internal-token": (lambda api, acct: api.internal_token(), 403, "WRONG_AUDIENCE"),
    "admin-token": (lambda api, acct: api.admin_token(), 403, "WRONG_AUDIENCE"),
}


@pytest.mark.parametrize("path", [BALANCE, HISTORY])
@pytest.mark.parametrize("case", list(USER_REFUSED))
def test_user_route_refuses(api: Caller, case: str, path: str) -> None:
    make, status, code = USER_REFUSED[case]
    account = api.new_account()
    assert_error(api.request("GET", path, token=make(api, account)), status, code)


@pytest.mark.parametrize("path", [BALANCE, HISTORY])
def test_user_cannot_read_another_account(api: Caller, path: str) -> None:
    victim = api.new_account(funded=1_234)
    reader = api.new_account()
    response = api.request("GET", path, token=api.user_token(reader), params={"accountId": victim})
    error = assert_error(response, 403, "ACCOUNT_SCOPE")
    assert "1234" not in response.text, error

    # Their own account, named explicitly, is fine.
    own = api.request("GET", path, token=api.user_token(victim), params={"accountId": victim})
    assert_status(own, 200)


def test_user_sees_only_their_own_account(api: Caller) -> None:
    victim = api.new_account(funded=1_234)
    reader = api.new_account(funded=10)
    balance = api.balance(reader)
    assert balance["accountId"] == reader, balance
    assert balance["totalAvailableMicro"] == "10", balance
    entries = api.all_entries(reader)
    assert {e["accountId"] for e in entries} == {reader}, entries
    assert victim not in str(entries)
