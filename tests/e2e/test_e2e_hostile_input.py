"""Hostile and malformed input over HTTP: each gets a clear 4xx in the contract's error shape, and
changes nothing (the account's balance and history are byte-for-byte the same afterwards)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.support.http import (
    BALANCE,
    FINALIZE,
    HISTORY,
    MODE,
    PRICING,
    RELEASE,
    RESERVE,
    Caller,
    assert_error,
    assert_status,
    mint_path,
)

# Amounts the contract refuses: floats, exponents, signs, booleans, above the ceiling, non-digits.
BAD_AMOUNTS: dict[str, str] = {  # id -> the JSON text of the value
    "float": "1.5",
    "float-whole": "1.0",
    "exponent": "1e3",
    "exponent-upper": "1E+3",
    "float-string": '"1.5"',
    "exponent-string": '"1e3"',
    "negative": "-5",
    "negative-string": '"-5"',
    "plus-string": '"+5"',
    "true": "true",
    "false": "false",
    "null": "null",
    "empty-string": '""',
    "space-string": '" 5"',
    "hex-string": '"0x10"',
    "arabic-digits": '"\\u0661\\u0662\\u0663"',
    "list": "[1]",
    "object": '{"v": 1}',
    "over-ceiling": "1000000000001",
    "over-ceiling-string": '"1000000000001"',
    "huge": "1" + "0" * 40,
    "trailing-newline-string": '"5\\n"',
    "leading-newline-string": '"\\n5"',
}


def snapshot(api: Caller, account: str) -> tuple[Any, Any]:
    return api.balance(account), api.history(account, limit=100)


@pytest.fixture
def funded(api: Caller) -> str:
    api.set_mode("live")
    return api.new_account(funded=1_000_000)


@pytest.mark.parametrize("value", list(BAD_AMOUNTS.values()), ids=list(BAD_AMOUNTS))
def test_bad_amount_is_refused_by_reserve_finalize_and_mint(api: Caller, funded: str, value: str) -> None:
    reservation_id = api.reserve_ok(funded, 1_000)["reservationId"]
    before = snapshot(api, funded)

    raw = f'{{"accountId": {json.dumps(funded)}, "estimatedCostMicro": {value}}}'
    assert_error(api.request("POST", RESERVE, raw=raw, token=api.internal_token()), 422, "VALIDATION_ERROR")
    raw = f'{{"reservationId": {json.dumps(reservation_id)}, "actualCostMicro": {value}}}'
    assert_error(api.request("POST", FINALIZE, raw=raw, token=api.internal_token()), 422, "VALIDATION_ERROR")
    raw = f'{{"amountMicro": {value}, "sourceType": "deposit", "description": "hostile"}}'
    assert_error(api.request("POST", mint_path(funded), raw=raw, token=api.admin_token()), 422, "VALIDATION_ERROR")

    assert snapshot(api, funded) == before
    # The reservation is untouched and still usable.
    assert api.finalize_ok(reservation_id, 10)["finalizedMicro"] == "10"


def test_reserve_zero_is_refused(api: Caller, funded: str) -> None:
    before = snapshot(api, funded)
    raw = f'{{"accountId": {json.dumps(funded)}, "estimatedCostMicro": 0}}'
    assert_error(api.request("POST", RESERVE, raw=raw, token=api.internal_token()), 422)
    assert snapshot(api, funded) == before


def test_integer_and_digit_string_amounts_are_both_accepted(api: Caller, funded: str) -> None:
    as_int = api.request("POST", RESERVE, json_body={"accountId": funded, "estimatedCostMicro": 1000},
                         token=api.internal_token())
    as_str = api.request("POST", RESERVE, json_body={"accountId": funded, "estimatedCostMicro": "1000"},
                         token=api.internal_token())
    assert assert_status(as_int, 201)["reservedMicro"] == "1000"
    assert assert_status(as_str, 201)["reservedMicro"] == "1000"
    ceiling = api.request("POST", RESERVE, json_body={"accountId": funded, "estimatedCostMicro": 10**12},
                          token=api.internal_token())
    assert_error(ceiling, 402, "INSUFFICIENT_CREDIT")  # at the ceiling: valid input, just too much


# Whole-body attacks, on every money-moving route.
def _big_body() -> str:
    return json.dumps({"accountId": "acct-big", "estimatedCostMicro": "1", "reservationId": "big-1",
                       "actualCostMicro": "1", "amountMicro": "1", "sourceType": "deposit",
                       "description": "x", "padding": "x" * (64 * 1024 + 1)})


BODIES: dict[str, tuple[str, dict[str, str], int | tuple[int, ...], str | tuple[str, ...] | None]] = {
    # id -> (raw body, extra headers, status, code)
    "over-64KiB": (_big_body(), {}, 413, "PAYLOAD_TOO_LARGE"),
    "invalid-json": ('{"accountId": ', {}, 400, "INVALID_JSON"),
    "trailing-garbage": ('{"accountId": "a"} x', {}, 400, "INVALID_JSON"),
    "not-utf8": (b'{"accountId": "\xff\xfe"}'.decode("latin-1"), {}, (400, 422), None),
    "list-body": ("[1, 2]", {}, (400, 422), ("INVALID_JSON", "VALIDATION_ERROR")),
    "string-body": ('"reserve please"', {}, (400, 422), ("INVALID_JSON", "VALIDATION_ERROR")),
    "null-body": ("null", {}, (400, 422), ("INVALID_JSON", "VALIDATION_ERROR")),
    "number-body": ("42", {}, (400, 422), ("INVALID_JSON", "VALIDATION_ERROR")),
    "empty-object": ("{}", {}, 422, "VALIDATION_ERROR"),
    "text-plain": ('{"accountId": "a", "estimatedCostMicro": "1"}', {"Content-Type": "text/plain"},
                   415, "UNSUPPORTED_MEDIA_TYPE"),
    "form-encoded": ("accountId=a&estimatedCostMicro=1", {"Content-Type": "application/x-www-form-urlencoded"},
                     415, "UNSUPPORTED_MEDIA_TYPE"),
}


@pytest.mark.parametrize("case", list(BODIES))
def test_hostile_body_is_refused_by_every_money_route(api: Caller, funded: str, case: str) -> None:
    raw, headers, status, code = BODIES[case]
    data = raw.encode("latin-1") if case == "not-utf8" else raw
    before = snapshot(api, funded)
    for path, token in ((RESERVE, api.internal_token()), (FINALIZE, api.internal_token()),
                        (RELEASE, api.internal_token()), (mint_path(funded), api.admin_token())):
        assert_error(api.request("POST", path, raw=data, token=token, headers=headers), status, code)
    assert snapshot(api, funded) == before


FIELD_CASES: dict[str, tuple[str, dict[str, Any], int, str | tuple[str, ...]]] = {
    "ttl-zero": ("reserve", {"ttlSeconds": 0}, 422, ("VALIDATION_ERROR", "INVALID_TTL")),
    "ttl-over-a-day": ("reserve", {"ttlSeconds": 86_401}, 422, ("VALIDATION_ERROR", "INVALID_TTL")),
    "ttl-float": ("reserve", {"ttlSeconds": 1.5}, 422, ("VALIDATION_ERROR", "INVALID_TTL")),
    "ttl-string": ("reserve", {"ttlSeconds": "soon"}, 422, ("VALIDATION_ERROR", "INVALID_TTL")),
    "bad-reservation-id": ("reserve", {"reservationId": "../../etc/passwd"}, 422, ("VALIDATION_ERROR", "INVALID_ID")),
    "long-reservation-id": ("reserve", {"reservationId": "r" * 500}, 422, ("VALIDATION_ERROR", "INVALID_ID")),
    "bad-pool": ("reserve", {"poolId": "Pool With Spaces"}, 422, ("VALIDATION_ERROR", "INVALID_ID")),
    "account-id-object": ("reserve", {"accountId": {"$ne": None}}, 422, ("VALIDATION_ERROR", "INVALID_ID")),
    "mint-bad-source": ("mint", {"sourceType": "printing-press"}, 422, "VALIDATION_ERROR"),
    "mint-expiry-in-past": ("mint", {"expiresAt": "2000-01-01T00:00:00Z"}, 422, ("EXPIRY_IN_PAST", "VALIDATION_ERROR")),
    "mint-expiry-garbage": ("mint", {"expiresAt": "tomorrow-ish"}, 422, ("VALIDATION_ERROR", "EXPIRY_IN_PAST")),
    "mint-no-description": ("mint", {"description": None}, 422, "VALIDATION_ERROR"),
}


@pytest.mark.parametrize("case", list(FIELD_CASES))
def test_bad_fields_are_refused(api: Caller, funded: str, case: str) -> None:
    route, override, status, code = FIELD_CASES[case]
    before = snapshot(api, funded)
    if route == "reserve":
        body = {"accountId": funded, "estimatedCostMicro": "1000", **override}
        response = api.request("POST", RESERVE, json_body=body, token=api.internal_token())
    else:
        body = {"amountMicro": "1000", "sourceType": "deposit", "description": "hostile", **override}
        body = {k: v for k, v in body.items() if v is not None}
        response = api.request("POST", mint_path(funded), json_body=body, token=api.admin_token())
    assert_error(response, status, code)
    assert snapshot(api, funded) == before


def test_system_accounts_cannot_spend_or_be_minted(api: Caller) -> None:
    api.set_mode("live")
    assert_error(api.reserve("sys-foundation", 1), 422, "SYSTEM_ACCOUNT")
    assert_error(api.mint("sys-commons", 1, expect=None), 422, "SYSTEM_ACCOUNT")


def test_bad_account_id_in_mint_path(api: Caller) -> None:
    api.set_mode("live")
    response = api.request("POST", mint_path("bad%20id%3B"), json_body={
        "amountMicro": "1", "sourceType": "deposit", "description": "x"}, token=api.admin_token())
    assert_error(response, (404, 422), ("INVALID_ID", "VALIDATION_ERROR", "ROUTE_NOT_FOUND"))


def test_bad_mode_is_refused_and_mode_unchanged(api: Caller) -> None:
    api.set_mode("live")
    for body in ({"mode": "turbo"}, {"mode": "LIVE"}, {"mode": None}, {}, {"mode": ["live"]}):
        response = api.request("PUT", MODE, json_body=body, token=api.admin_token())
        assert_error(response, 422, ("VALIDATION_ERROR", "INVALID_MODE"))
    assert assert_status(api.request("GET", PRICING), 200)["billingMode"] == "live"


def _admin_view(api: Caller, account: str) -> tuple[Any, Any]:
    admin = api.admin_token()
    balance = api.request("GET", f"/admin/billing/accounts/{account}/balance", token=admin)
    history = api.request("GET", f"/admin/billing/accounts/{account}/history", token=admin, params={"limit": 100})
    return assert_status(balance, 200), assert_status(history, 200)["entries"]


@pytest.mark.parametrize("path", [BALANCE, HISTORY, "/api/v1/billing/org/summary"])
def test_a_user_token_never_names_a_system_account(api: Caller, path: str) -> None:
    """A system account's partitions hold every customer's revenue shares: no user reads them."""
    before = _admin_view(api, "sys-foundation")
    for subject in ("sys-foundation", "sys-commons", "sys-community-pool", "sys-new"):
        assert_error(api.request("GET", path, token=api.user_token(subject)), 403, "SYSTEM_ACCOUNT")
    assert _admin_view(api, "sys-foundation") == before


@pytest.mark.parametrize("claims", [
    {"iat": "numeric-string"}, {"exp": "numeric-string"}, {"nbf": "numeric-string"}, {"exp": True},
    {"sub": "s" * 10_000}, {"sub": "ACCT#acct-x"},
], ids=["iat-string", "exp-string", "nbf-string", "exp-bool", "sub-10000-chars", "sub-key-prefix"])
def test_token_claims_of_the_wrong_type_or_shape_are_401(api: Caller, funded: str, claims: dict[str, Any]) -> None:
    now = int(time.time())
    values = {k: (str(now + 60) if v == "numeric-string" else v) for k, v in claims.items()}
    before = snapshot(api, funded)
    body = {"accountId": funded, "estimatedCostMicro": "1000"}
    token = api.signed("BILLING_INTERNAL_JWT_SECRET", api.internal_claims(**values))
    assert_error(api.request("POST", RESERVE, json_body=body, token=token), 401, "INVALID_TOKEN")
    token = api.signed("BILLING_ADMIN_JWT_SECRET", api.admin_claims(**values))
    assert_error(api.request("POST", mint_path(funded), json_body={
        "amountMicro": "1", "sourceType": "deposit", "description": "x"}, token=token), 401, "INVALID_TOKEN")
    assert snapshot(api, funded) == before
