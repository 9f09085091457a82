"""Top-ups over HTTP: a user starts a payment for their own account, in whole cents of at least
1 USD, and reads it back; nobody else can read it, and creating one moves no money.

Locally no provider keys are configured, so a top-up is recorded as pending with no invoice and
no payment URL, and the response says so. Credit only arrives with a signed webhook
(test_e2e_webhooks.py); here the record is also read after one.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support.http import Caller, assert_error, assert_status, describe, unique
from tests.support.webhooks import (
    CENT,
    TOPUPS,
    USD,
    checkout_completed,
    create_topup,
    get_topup,
    ipn,
    lifetime_paid,
    post_ipn,
    post_stripe,
)


def post_topup(api: Caller, account: str, body: Any, *, token: str | None = "user") -> Any:
    return api.request("POST", TOPUPS, json_body=body,
                       token=api.user_token(account) if token == "user" else token)


@pytest.mark.parametrize("provider", ["nowpayments", "stripe"])
def test_topup_is_a_pending_order_without_a_provider_invoice_locally(api: Caller, provider: str) -> None:
    account = api.new_account()
    response = post_topup(api, account, {"amountMicro": "10000000", "provider": provider})
    body = assert_status(response, 201)
    assert isinstance(body.get("orderId"), str) and body["orderId"], describe(response)
    assert body["status"] == "pending", describe(response)
    assert body["amountMicro"] == "10000000", describe(response)
    assert "paymentUrl" in body and body["paymentUrl"] is None, describe(response)
    assert body.get("providerInvoiceCreated") is False, describe(response)
    assert isinstance(body.get("message"), str) and body["message"], describe(response)

    record = get_topup(api, account, body["orderId"])
    assert record["orderId"] == body["orderId"], record
    assert record["status"] == "pending", record
    assert record["amountMicro"] == "10000000", record
    assert (record["creditedMicro"], record["refundedMicro"]) == ("0", "0"), record
    for field in ("providerCurrency", "providerAmount"):
        assert field in record, record

    # Asking to pay moves no money.
    assert api.total_available(account) == 0
    assert api.all_entries(account) == []
    assert lifetime_paid(api, account) == 0


def test_each_topup_is_its_own_order(api: Caller) -> None:
    account = api.new_account()
    first = create_topup(api, account, 5 * USD, "stripe")
    second = create_topup(api, account, 5 * USD, "stripe")
    third = create_topup(api, account, 7 * USD, "nowpayments")
    assert len({first["orderId"], second["orderId"], third["orderId"]}) == 3
    assert get_topup(api, account, second["orderId"])["amountMicro"] == str(5 * USD)
    assert get_topup(api, account, third["orderId"])["amountMicro"] == str(7 * USD)


@pytest.mark.parametrize("amount", ["1000000", 1_000_000, "1010000", "99999990000", 123_450_000])
def test_whole_cent_amounts_of_at_least_one_dollar_are_accepted(api: Caller, amount: Any) -> None:
    account = api.new_account()
    body = assert_status(post_topup(api, account, {"amountMicro": amount, "provider": "nowpayments"}), 201)
    assert body["amountMicro"] == str(amount), body


INVALID_TOPUPS: list[tuple[str, Any]] = [
    ("below one dollar", {"amountMicro": "999999", "provider": "stripe"}),
    ("99 cents", {"amountMicro": "990000", "provider": "stripe"}),
    ("not whole cents", {"amountMicro": "1000001", "provider": "stripe"}),
    ("half a cent", {"amountMicro": "1005000", "provider": "nowpayments"}),
    ("sub-cent above minimum", {"amountMicro": "12345678", "provider": "nowpayments"}),
    ("zero", {"amountMicro": "0", "provider": "stripe"}),
    ("negative", {"amountMicro": "-5000000", "provider": "stripe"}),
    ("float", {"amountMicro": 5000000.0, "provider": "stripe"}),
    ("float string", {"amountMicro": "5000000.5", "provider": "stripe"}),
    ("exponent", {"amountMicro": "5e6", "provider": "stripe"}),
    ("boolean", {"amountMicro": True, "provider": "stripe"}),
    ("above the ceiling", {"amountMicro": "1000000000010000", "provider": "stripe"}),
    ("missing amount", {"provider": "stripe"}),
    ("unknown provider", {"amountMicro": "5000000", "provider": "paypal"}),
    ("provider wrong case", {"amountMicro": "5000000", "provider": "Stripe"}),
    ("missing provider", {"amountMicro": "5000000"}),
]


def test_invalid_topups_are_422_with_a_stable_code_and_record_nothing(api: Caller) -> None:
    account = api.new_account()
    refused = []
    for label, body in INVALID_TOPUPS:
        response = post_topup(api, account, body)
        if response.status_code != 422:
            refused.append((label, describe(response)))
            continue
        first = assert_error(response, 422)
        again = assert_error(post_topup(api, account, body), 422)
        assert first["code"] == again["code"], (label, first, again)  # a stable code
    assert not refused, refused
    assert api.total_available(account) == 0
    assert api.all_entries(account) == []


def test_amount_errors_share_a_stable_code(api: Caller) -> None:
    account = api.new_account()
    codes = {assert_error(post_topup(api, account, {"amountMicro": amount, "provider": "stripe"}), 422)["code"]
             for amount in ("999999", "1000001", "500000")}
    assert len(codes) == 1, codes


def test_topup_requires_a_user_token(api: Caller) -> None:
    account = api.new_account()
    body = {"amountMicro": "5000000", "provider": "stripe"}
    assert_error(post_topup(api, account, body, token=None), 401)
    assert_error(post_topup(api, account, body, token="not-a-jwt"), 401)
    now = int(time.time())
    expired = api.signed("BILLING_USER_JWT_SECRET", {"sub": account, "iat": now - 7_200, "exp": now - 3_600})
    assert_error(post_topup(api, account, body, token=expired), 401)
    forged = api.signed("a-secret-that-is-not-the-user-secret-000000", {"sub": account, "iat": now, "exp": now + 600})
    assert_error(post_topup(api, account, body, token=forged), 401)
    assert_error(post_topup(api, account, body, token=api.admin_token()), (401, 403))
    assert_error(post_topup(api, account, body, token=api.internal_token()), (401, 403))
    assert api.total_available(account) == 0


def test_system_accounts_cannot_top_up(api: Caller) -> None:
    response = api.request("POST", TOPUPS, json_body={"amountMicro": "5000000", "provider": "stripe"},
                           token=api.user_token("sys-foundation"))
    assert_error(response, (403, 422))


def test_another_users_order_is_not_found(api: Caller) -> None:
    owner, other = api.new_account(), api.new_account()
    order_id = create_topup(api, owner, 5 * USD, "stripe")["orderId"]
    response = api.request("GET", f"{TOPUPS}/{order_id}", token=api.user_token(other))
    assert_error(response, 404)
    assert_error(api.request("GET", f"{TOPUPS}/{unique('ord_missing')}", token=api.user_token(owner)), 404)
    assert_error(api.request("GET", f"{TOPUPS}/{order_id}"), 401)
    # The owner still sees it.
    assert get_topup(api, owner, order_id)["orderId"] == order_id


def test_another_users_order_does_not_leak_its_details(api: Caller) -> None:
    owner, other = api.new_account(), api.new_account()
    order_id = create_topup(api, owner, 5 * USD, "stripe")["orderId"]
    response = api.request("GET", f"{TOPUPS}/{order_id}", token=api.user_token(other))
    assert response.status_code == 404, describe(response)
    assert owner not in response.text and "5000000" not in response.text, describe(response)


def test_paid_topup_reads_back_credited_with_the_providers_figures(api: Caller) -> None:
    account = api.new_account()
    amount = 15_500_000
    order_id = create_topup(api, account, amount, "nowpayments")["orderId"]
    body = ipn(order_id, "finished", 15.5, pay_currency="eth", actually_paid=0.0061234, payment_id=987_654_321)
    assert_status(post_ipn(api, body), 200)
    record = get_topup(api, account, order_id)
    assert record["status"] == "finished", record
    assert record["creditedMicro"] == str(amount) and record["refundedMicro"] == "0", record
    assert record["providerCurrency"] == "eth", record
    assert str(record["providerAmount"]) == "0.0061234", record
    assert api.total_available(account) == amount


def test_paid_stripe_topup_reads_back_credited(api: Caller) -> None:
    account = api.new_account()
    amount = 42 * USD
    order_id = create_topup(api, account, amount, "stripe")["orderId"]
    assert_status(post_stripe(api, checkout_completed(order_id, amount // CENT)), 200)
    record = get_topup(api, account, order_id)
    assert record["creditedMicro"] == str(amount), record
    assert record["status"] not in ("pending", "failed", "expired"), record
    assert api.total_available(account) == amount
    # The payment does not show up on anyone else's account.
    other = api.new_account()
    assert api.total_available(other) == 0
    assert_error(api.request("GET", f"{TOPUPS}/{order_id}", token=api.user_token(other)), 404)
