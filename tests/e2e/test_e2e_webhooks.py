"""Money in over HTTP: signed NOWPayments IPNs and Stripe events against top-ups.

Written from the contract (../shared/API.md, ../shared/DESIGN.md, issue 3): a webhook is verified
before anything is trusted (forged, tampered, stale or future-dated deliveries are 401 and change
nothing), credit is minted exactly once on the final paid state however often and in whatever
order the provider delivers, the paid amount must match the order, refunds debit once (a balance
may go negative), and a signed event for an unknown order is queued for retry (202).

Every figure is asserted to the micro-unit. The helpers (signing, delivering, reading the money)
are in tests/support/webhooks.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import Counter
from typing import Any

import pytest

from tests.support.http import RESERVE, Caller, assert_error, assert_status, body_of, describe, unique
from tests.support.webhooks import (
    DLQ,
    NOWPAYMENTS,
    STRIPE,
    USD,
    admin_get,
    assert_money,
    charge_refunded,
    checkout_completed,
    checkout_expired,
    create_topup,
    get_topup,
    ipn,
    ipn_ok,
    lifetime_paid,
    np_canonical,
    np_paid,
    np_secret,
    np_sign,
    post_ipn,
    post_stripe,
    raw_post,
    stripe_event,
    stripe_header,
    stripe_ok,
    stripe_paid,
    stripe_secret,
    stripe_v1,
    together,
    user_entries,
)

# -- NOWPayments: valid, and exactly once --------------------------------------------------------


def test_nowpayments_finished_credits_the_order_amount_once(api: Caller) -> None:
    account = api.new_account()
    amount = 12_340_000  # 12.34 USD
    order_id = create_topup(api, account, amount, "nowpayments")["orderId"]
    assert_money(api, account, order_id, balance=0, status="pending", credited=0)
    payment_id = 4_500_000_001
    for status in ("waiting", "confirming", "confirmed", "sending"):
        ipn_ok(api, ipn(order_id, status, 12.34, payment_id=payment_id))
        assert_money(api, account, order_id, balance=0, status=status, credited=0)

    finished = ipn(order_id, "finished", 12.34, payment_id=payment_id)
    response = post_ipn(api, finished)
    assert_status(response, 200)
    record = assert_money(api, account, order_id, balance=amount, status="finished", credited=amount)
    assert record["providerCurrency"] == "btc", record
    assert record["providerAmount"] is not None and "0.00012345" in str(record["providerAmount"]), record

    deposits = user_entries(api, account, "deposit")
    assert len(deposits) == 1 and int(deposits[0]["amountMicro"]) == amount, deposits
    assert lifetime_paid(api, account) == amount


def test_nowpayments_body_is_verified_on_its_sorted_compact_form(api: Caller) -> None:
    """The provider signs the JSON with keys sorted; the bytes on the wire may be laid out otherwise."""
    account = api.new_account()
    order_id = create_topup(api, account, 3 * USD, "nowpayments")["orderId"]
    body = ipn(order_id, "finished", 3, fee={"depositFee": 0, "withdrawalFee": 0, "currency": "btc"})
    signature = np_sign(body, np_secret(api))
    unsorted_pretty = json.dumps(dict(reversed(list(body.items()))), indent=3)
    assert_status(post_ipn(api, body, raw=unsorted_pretty, signature=signature), 200)
    assert_money(api, account, order_id, balance=3 * USD, status="finished", credited=3 * USD)


def test_nowpayments_amount_with_float_hazard_is_credited_exactly(api: Caller) -> None:
    # 2.01 * 1e6 is 2009999.9999999998 in binary floating point: a float conversion loses a micro.
    account = api.new_account()
    order_id, _ = np_paid(api, account, 2_010_000, price_amount=2.01)
    assert_money(api, account, order_id, balance=2_010_000, status="finished", credited=2_010_000)


def test_nowpayments_finished_delivered_five_times_credits_once(api: Caller) -> None:
    account = api.new_account()
    amount = 5 * USD
    order_id = create_topup(api, account, amount, "nowpayments")["orderId"]
    finished = ipn(order_id, "finished", 5)
    for _ in range(5):
        ipn_ok(api, finished)
    assert_money(api, account, order_id, balance=amount, status="finished", credited=amount)
    assert len(user_entries(api, account, "deposit")) == 1
    assert lifetime_paid(api, account) == amount


def test_nowpayments_finished_delivered_concurrently_credits_once(api: Caller) -> None:
    account = api.new_account()
    amount = 7 * USD
    order_id = create_topup(api, account, amount, "nowpayments")["orderId"]
    finished = ipn(order_id, "finished", 7)
    raw, signature = json.dumps(finished), np_sign(finished, np_secret(api))
    replies = together(8, lambda i: raw_post(api, NOWPAYMENTS, raw, {"x-nowpayments-sig": signature}))
    assert all(r.status_code in (200, 202) for r in replies), [describe(r) for r in replies]
    assert_money(api, account, order_id, balance=amount, status="finished", credited=amount)
    assert len(user_entries(api, account, "deposit")) == 1
    assert lifetime_paid(api, account) == amount


def test_nowpayments_two_payments_finished_for_one_order_credit_once(api: Caller) -> None:
    """Two provider payment ids both reported finished for one order: the order is credited once."""
    account = api.new_account()
    amount = 4 * USD
    order_id = create_topup(api, account, amount, "nowpayments")["orderId"]
    ipn_ok(api, ipn(order_id, "finished", 4, payment_id=111_111))
    ipn_ok(api, ipn(order_id, "finished", 4, payment_id=222_222))
    assert_money(api, account, order_id, balance=amount, status="finished", credited=amount)
    assert len(user_entries(api, account, "deposit")) == 1


def test_nowpayments_out_of_order_states_never_credit_twice_or_undo(api: Caller) -> None:
    account = api.new_account()
    amount = 6 * USD
    order_id = create_topup(api, account, amount, "nowpayments")["orderId"]
    payment_id = 333_333
    ipn_ok(api, ipn(order_id, "finished", 6, payment_id=payment_id))
    assert_money(api, account, order_id, balance=amount, status="finished", credited=amount)
    # Late, earlier states; then failure states after the payment finished.
    for status in ("waiting", "confirming", "confirmed", "sending", "partially_paid", "failed", "expired",
                   "waiting", "finished"):
        ipn_ok(api, ipn(order_id, status, 6, payment_id=payment_id))
    assert_money(api, account, order_id, balance=amount, status="finished", credited=amount)
    assert len(user_entries(api, account, "deposit")) == 1
    assert lifetime_paid(api, account) == amount


def test_nowpayments_non_final_states_credit_nothing(api: Caller) -> None:
    account = api.new_account()
    order_id = create_topup(api, account, 2 * USD, "nowpayments")["orderId"]
    for status in ("waiting", "confirming", "confirmed", "sending", "partially_paid"):
        ipn_ok(api, ipn(order_id, status, 2, payment_id=444_444))
    assert_money(api, account, order_id, balance=0, status="partially_paid", credited=0)
    ipn_ok(api, ipn(order_id, "failed", 2, payment_id=444_444))
    assert_money(api, account, order_id, balance=0, status="failed", credited=0)
    assert user_entries(api, account, "deposit") == []
    assert lifetime_paid(api, account) == 0


def test_nowpayments_expired_order_is_not_credited(api: Caller) -> None:
    account = api.new_account()
    order_id = create_topup(api, account, 2 * USD, "nowpayments")["orderId"]
    ipn_ok(api, ipn(order_id, "waiting", 2, payment_id=454_545))
    ipn_ok(api, ipn(order_id, "expired", 2, payment_id=454_545))
    assert_money(api, account, order_id, balance=0, status="expired", credited=0)


@pytest.mark.parametrize(("price_amount", "price_currency"), [
    (9.99, "usd"),  # less than the order
    (10.01, "usd"),  # more than the order
    (100, "usd"),  # a lot more
    (10, "eur"),  # right number, wrong currency
])
def test_nowpayments_amount_mismatch_credits_nothing(api: Caller, price_amount: Any, price_currency: str) -> None:
    account = api.new_account()
    order_id = create_topup(api, account, 10 * USD, "nowpayments")["orderId"]
    response = post_ipn(api, ipn(order_id, "finished", price_amount, price_currency=price_currency))
    assert response.status_code in (200, 202, 409, 422), describe(response)
    record = assert_money(api, account, order_id, balance=0, status=None, credited=0)
    assert record["status"] != "finished" or int(record["creditedMicro"]) == 0, record
    assert user_entries(api, account, "deposit") == []
    assert lifetime_paid(api, account) == 0


def test_nowpayments_ipn_for_a_stripe_order_credits_nothing(api: Caller) -> None:
    account = api.new_account()
    order_id = create_topup(api, account, 3 * USD, "stripe")["orderId"]
    response = post_ipn(api, ipn(order_id, "finished", 3))
    assert response.status_code in (200, 202, 409, 422), describe(response)
    assert_money(api, account, order_id, balance=0, status="pending", credited=0)


def test_nowpayments_refunded_after_finished_debits_the_credit_once(api: Caller) -> None:
    account = api.new_account()
    amount = 8 * USD
    order_id = create_topup(api, account, amount, "nowpayments")["orderId"]
    ipn_ok(api, ipn(order_id, "finished", 8, payment_id=555_555))
    assert_money(api, account, order_id, balance=amount, status="finished", credited=amount)
    refunded = ipn(order_id, "refunded", 8, payment_id=555_555)
    for _ in range(3):
        ipn_ok(api, refunded)
        assert_money(api, account, order_id, balance=0, status="refunded", credited=amount, refunded=amount)
    # A late `finished` cannot bring the money back.
    ipn_ok(api, ipn(order_id, "finished", 8, payment_id=555_555))
    assert_money(api, account, order_id, balance=0, status="refunded", credited=amount, refunded=amount)
    refunds = user_entries(api, account, "refund")
    assert len(refunds) == 1 and int(refunds[0]["amountMicro"]) == amount, refunds


def test_nowpayments_refund_after_spending_leaves_a_negative_balance(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account()
    amount = 5 * USD
    order_id = create_topup(api, account, amount, "nowpayments")["orderId"]
    ipn_ok(api, ipn(order_id, "finished", 5, payment_id=565_656))
    reservation = api.reserve_ok(account, 4 * USD)["reservationId"]
    api.finalize_ok(reservation, 4 * USD)
    assert api.total_available(account) == 1 * USD
    ipn_ok(api, ipn(order_id, "refunded", 5, payment_id=565_656))
    assert_money(api, account, order_id, balance=-4 * USD, status="refunded", credited=amount, refunded=amount)
    assert api.pool(account)["availableMicro"] == -4 * USD


# -- NOWPayments: forged -------------------------------------------------------------------------


def test_nowpayments_forged_ipns_are_401_and_change_nothing(api: Caller) -> None:
    account = api.new_account()
    amount = 10 * USD
    order_id = create_topup(api, account, amount, "nowpayments")["orderId"]
    good = ipn(order_id, "finished", 10, payment_id=666_666)
    secret = np_secret(api)
    signature = np_sign(good, secret)

    tampered_amount = {**good, "price_amount": 1000}
    tampered_order = {**good, "order_id": order_id + "x"}
    raw = json.dumps(good)
    flipped = raw.replace('"finished"', '"finishee"')
    forgeries = [
        ("no signature", post_ipn(api, good, signature=None)),
        ("empty signature", post_ipn(api, good, signature="")),
        ("wrong secret", post_ipn(api, good, secret="not-the-ipn-secret-" + secret)),
        ("tampered amount", post_ipn(api, tampered_amount, raw=json.dumps(tampered_amount), signature=signature)),
        ("tampered order", post_ipn(api, tampered_order, raw=json.dumps(tampered_order), signature=signature)),
        ("tampered byte", post_ipn(api, good, raw=flipped, signature=signature)),
        ("sha256 not sha512", post_ipn(api, good, signature=hmac.new(
            secret.encode(), np_canonical(good).encode(), hashlib.sha256).hexdigest())),
        ("truncated signature", post_ipn(api, good, signature=signature[:64])),
        ("garbage signature", post_ipn(api, good, signature="zz" * 64)),
        ("not json", post_ipn(api, None, raw="finished=1&order_id=" + order_id, signature=signature)),
    ]
    for label, response in forgeries:
        assert response.status_code == 401, (label, describe(response))
        assert_error(response, 401)
    assert_money(api, account, order_id, balance=0, status="pending", credited=0)
    assert lifetime_paid(api, account) == 0

    # The genuine one still works afterwards, once.
    ipn_ok(api, good)
    assert_money(api, account, order_id, balance=amount, status="finished", credited=amount)


def test_nowpayments_forged_refund_does_not_debit(api: Caller) -> None:
    account = api.new_account()
    order_id, finished = np_paid(api, account, 3 * USD)
    refunded = {**finished, "payment_status": "refunded"}
    response = post_ipn(api, refunded, signature=np_sign(refunded, "wrong-secret-of-enough-length-000000"))
    assert_error(response, 401)
    assert_money(api, account, order_id, balance=3 * USD, status="finished", credited=3 * USD)


# -- Stripe: valid, and exactly once -------------------------------------------------------------


def test_stripe_checkout_completed_credits_amount_total_once(api: Caller) -> None:
    account = api.new_account()
    amount = 25 * USD
    order_id = create_topup(api, account, amount, "stripe")["orderId"]
    event = checkout_completed(order_id, 2_500)
    assert_status(post_stripe(api, event), 200)
    record = assert_money(api, account, order_id, balance=amount, status=None, credited=amount)
    assert record["status"] not in ("pending", "expired", "failed"), record
    deposits = user_entries(api, account, "deposit")
    assert len(deposits) == 1 and int(deposits[0]["amountMicro"]) == amount, deposits
    assert lifetime_paid(api, account) == amount


def test_stripe_same_event_five_times_credits_once(api: Caller) -> None:
    account = api.new_account()
    amount = 9 * USD
    order_id = create_topup(api, account, amount, "stripe")["orderId"]
    event = checkout_completed(order_id, 900)
    for _ in range(5):
        stripe_ok(api, event)
    assert_money(api, account, order_id, balance=amount, status=None, credited=amount)
    assert len(user_entries(api, account, "deposit")) == 1
    assert lifetime_paid(api, account) == amount


def test_stripe_same_event_concurrently_credits_once(api: Caller) -> None:
    account = api.new_account()
    amount = 11 * USD
    order_id = create_topup(api, account, amount, "stripe")["orderId"]
    raw = json.dumps(checkout_completed(order_id, 1_100))
    header = stripe_header(raw, stripe_secret(api))
    replies = together(8, lambda i: raw_post(api, STRIPE, raw, {"Stripe-Signature": header}))
    assert all(r.status_code in (200, 202) for r in replies), [describe(r) for r in replies]
    assert_money(api, account, order_id, balance=amount, status=None, credited=amount)
    assert len(user_entries(api, account, "deposit")) == 1
    assert lifetime_paid(api, account) == amount


def test_stripe_completed_under_distinct_event_ids_concurrently_credits_once(api: Caller) -> None:
    """Stripe may send the same checkout completion as separate events (retries after a timeout
    on its side carry the same id, but a resent event or a second endpoint does not)."""
    account = api.new_account()
    amount = 13 * USD
    order_id = create_topup(api, account, amount, "stripe")["orderId"]
    payment_intent = unique("pi")
    secret = stripe_secret(api)
    raws = [json.dumps(checkout_completed(order_id, 1_300, payment_intent=payment_intent)) for _ in range(6)]
    replies = together(6, lambda i: raw_post(api, STRIPE, raws[i],
                                             {"Stripe-Signature": stripe_header(raws[i], secret)}))
    assert all(r.status_code in (200, 202) for r in replies), [describe(r) for r in replies]
    assert_money(api, account, order_id, balance=amount, status=None, credited=amount)
    assert len(user_entries(api, account, "deposit")) == 1


def test_stripe_expired_after_completed_changes_nothing(api: Caller) -> None:
    account = api.new_account()
    amount = 4 * USD
    order_id = create_topup(api, account, amount, "stripe")["orderId"]
    stripe_ok(api, checkout_completed(order_id, 400))
    paid = assert_money(api, account, order_id, balance=amount, status=None, credited=amount)
    stripe_ok(api, checkout_expired(order_id, 400))
    assert_money(api, account, order_id, balance=amount, status=paid["status"], credited=amount)


def test_stripe_checkout_expired_marks_the_order_expired(api: Caller) -> None:
    account = api.new_account()
    order_id = create_topup(api, account, 4 * USD, "stripe")["orderId"]
    stripe_ok(api, checkout_expired(order_id, 400))
    assert_money(api, account, order_id, balance=0, status="expired", credited=0)


def test_stripe_unpaid_completed_session_credits_nothing(api: Caller) -> None:
    """checkout.session.completed with payment_status other than "paid" (an asynchronous method
    still pending) is not money yet."""
    account = api.new_account()
    order_id = create_topup(api, account, 4 * USD, "stripe")["orderId"]
    response = post_stripe(api, checkout_completed(order_id, 400, payment_status="unpaid"))
    assert response.status_code in (200, 202), describe(response)
    assert_money(api, account, order_id, balance=0, status=None, credited=0)


@pytest.mark.parametrize(("cents", "currency"), [(999, "usd"), (1_001, "usd"), (100_000, "usd"), (1_000, "eur")])
def test_stripe_amount_mismatch_credits_nothing(api: Caller, cents: int, currency: str) -> None:
    account = api.new_account()
    order_id = create_topup(api, account, 10 * USD, "stripe")["orderId"]
    response = post_stripe(api, checkout_completed(order_id, cents, currency=currency))
    assert response.status_code in (200, 202, 409, 422), describe(response)
    assert_money(api, account, order_id, balance=0, status=None, credited=0)
    assert user_entries(api, account, "deposit") == []
    assert lifetime_paid(api, account) == 0


def test_stripe_event_for_a_nowpayments_order_credits_nothing(api: Caller) -> None:
    account = api.new_account()
    order_id = create_topup(api, account, 3 * USD, "nowpayments")["orderId"]
    response = post_stripe(api, checkout_completed(order_id, 300))
    assert response.status_code in (200, 202, 409, 422), describe(response)
    assert_money(api, account, order_id, balance=0, status="pending", credited=0)


def test_stripe_unknown_event_types_are_acknowledged_and_ignored(api: Caller) -> None:
    account = api.new_account()
    order_id = create_topup(api, account, 3 * USD, "stripe")["orderId"]
    for event_type in ("customer.created", "payment_method.attached", "checkout.session.something_new"):
        event = stripe_event(event_type, {"id": unique("obj"), "client_reference_id": order_id,
                                          "amount_total": 300, "currency": "usd", "payment_status": "paid"})
        assert_status(post_stripe(api, event), 200)
    assert_money(api, account, order_id, balance=0, status="pending", credited=0)
    # Unknown types still need a valid signature.
    event = stripe_event("customer.created", {"id": unique("cus")})
    assert_error(post_stripe(api, event, header="t=1,v1=00"), 401)


def test_stripe_partial_then_full_refund_debits_each_part_once(api: Caller) -> None:
    account = api.new_account()
    amount = 10 * USD
    order_id, payment_intent = stripe_paid(api, account, amount)
    assert_money(api, account, order_id, balance=amount, status=None, credited=amount)

    partial = charge_refunded(order_id, 1_000, 300, payment_intent)
    for _ in range(2):
        stripe_ok(api, partial)
        assert_money(api, account, order_id, balance=7 * USD, status=None, credited=amount, refunded=3 * USD)

    full = charge_refunded(order_id, 1_000, 1_000, payment_intent)
    for _ in range(2):
        stripe_ok(api, full)
        assert_money(api, account, order_id, balance=0, status=None, credited=amount, refunded=amount)
    # The earlier partial refund, redelivered under a new event id: cumulative, so nothing more.
    stripe_ok(api, charge_refunded(order_id, 1_000, 300, payment_intent))
    record = assert_money(api, account, order_id, balance=0, status=None, credited=amount, refunded=amount)
    assert "refund" in record["status"], record

    refunds = user_entries(api, account, "refund")
    assert sorted(int(e["amountMicro"]) for e in refunds) == [3 * USD, 7 * USD], refunds
    assert lifetime_paid(api, account) == amount  # payments in; refunds are tracked apart


def test_stripe_refund_after_spending_makes_the_balance_negative(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account()
    order_id, payment_intent = stripe_paid(api, account, 5 * USD)
    reservation = api.reserve_ok(account, 3 * USD)["reservationId"]
    api.finalize_ok(reservation, 3 * USD)
    stripe_ok(api, charge_refunded(order_id, 500, 500, payment_intent))
    assert_money(api, account, order_id, balance=-3 * USD, status=None, credited=5 * USD, refunded=5 * USD)
    # A negative balance is refused in live mode, not overdrawn further.
    assert_error(api.reserve(account, 1), 402, "INSUFFICIENT_CREDIT")


def test_stripe_refund_delivered_concurrently_debits_once(api: Caller) -> None:
    account = api.new_account()
    order_id, payment_intent = stripe_paid(api, account, 6 * USD)
    raw = json.dumps(charge_refunded(order_id, 600, 200, payment_intent))
    header = stripe_header(raw, stripe_secret(api))
    replies = together(8, lambda i: raw_post(api, STRIPE, raw, {"Stripe-Signature": header}))
    assert all(r.status_code in (200, 202) for r in replies), [describe(r) for r in replies]
    assert_money(api, account, order_id, balance=4 * USD, status=None, credited=6 * USD, refunded=2 * USD)
    assert len(user_entries(api, account, "refund")) == 1


def test_stripe_refund_arriving_before_the_completion_nets_to_zero(api: Caller) -> None:
    """Stripe does not guarantee delivery order: a refund may overtake the checkout completion.
    Whatever the path, the customer ends with neither the credit nor a debt."""
    account = api.new_account()
    order_id = create_topup(api, account, 5 * USD, "stripe")["orderId"]
    payment_intent = unique("pi")
    response = post_stripe(api, charge_refunded(order_id, 500, 500, payment_intent))
    assert response.status_code in (200, 202), describe(response)
    response = post_stripe(api, checkout_completed(order_id, 500, payment_intent=payment_intent))
    assert response.status_code in (200, 202), describe(response)
    assert api.total_available(account) == 0, api.balance(account)


# -- Stripe: forged, stale, future ---------------------------------------------------------------


def test_stripe_forged_signatures_are_401_and_change_nothing(api: Caller) -> None:
    account = api.new_account()
    amount = 10 * USD
    order_id = create_topup(api, account, amount, "stripe")["orderId"]
    event = checkout_completed(order_id, 1_000)
    raw = json.dumps(event)
    secret = stripe_secret(api)
    now = int(time.time())
    good_sig = stripe_v1(raw, now, secret)
    tampered_amount = raw.replace('"amount_total": 1000', '"amount_total": 100000')
    assert tampered_amount != raw
    tampered_byte = raw[:-2] + (" " if raw[-2] != " " else "\t") + raw[-1]
    forgeries = {
        "no header": post_stripe(api, raw=raw, header=None),
        "empty header": post_stripe(api, raw=raw, header=""),
        "garbage header": post_stripe(api, raw=raw, header="nonsense"),
        "no timestamp": post_stripe(api, raw=raw, header=f"v1={good_sig}"),
        "no v1": post_stripe(api, raw=raw, header=f"t={now}"),
        "v0 only": post_stripe(api, raw=raw, header=f"t={now},v0={good_sig}"),
        "wrong secret": post_stripe(api, raw=raw, secret=secret + "x"),
        "secret without prefix": post_stripe(api, raw=raw, secret=secret.removeprefix("whsec_") + "-other"),
        "tampered amount": post_stripe(api, raw=tampered_amount, header=f"t={now},v1={good_sig}"),
        "tampered byte": post_stripe(api, raw=tampered_byte, header=f"t={now},v1={good_sig}"),
        "timestamp swapped": post_stripe(api, raw=raw, header=f"t={now - 1},v1={good_sig}"),
        "sha512": post_stripe(api, raw=raw, header=f"t={now},v1=" + hmac.new(
            secret.encode(), f"{now}.{raw}".encode(), hashlib.sha512).hexdigest()),
        "body only signed": post_stripe(api, raw=raw, header=f"t={now},v1=" + hmac.new(
            secret.encode(), raw.encode(), hashlib.sha256).hexdigest()),
    }
    for label, response in forgeries.items():
        assert response.status_code == 401, (label, describe(response))
        assert_error(response, 401)
    assert_money(api, account, order_id, balance=0, status="pending", credited=0)
    assert lifetime_paid(api, account) == 0

    assert_status(post_stripe(api, raw=raw), 200)
    assert_money(api, account, order_id, balance=amount, status=None, credited=amount)


def test_stripe_stale_and_future_signatures_are_refused(api: Caller) -> None:
    account = api.new_account()
    amount = 3 * USD
    order_id = create_topup(api, account, amount, "stripe")["orderId"]
    raw = json.dumps(checkout_completed(order_id, 300))
    now = int(time.time())
    for label, ts in (("stale by 10 minutes", now - 600), ("stale just past 300 s", now - 320),
                      ("a day old", now - 86_400), ("future by 10 minutes", now + 600),
                      ("future just past 300 s", now + 320)):
        response = post_stripe(api, raw=raw, timestamp=ts)
        assert response.status_code == 401, (label, describe(response))
        assert_error(response, 401)
    assert_money(api, account, order_id, balance=0, status="pending", credited=0)

    # Within the tolerance either way it is accepted (once).
    assert_status(post_stripe(api, raw=raw, timestamp=now - 240), 200)
    assert_status(post_stripe(api, raw=raw, timestamp=int(time.time()) + 240), 200)
    assert_money(api, account, order_id, balance=amount, status=None, credited=amount)


def test_stripe_several_v1_signatures_any_may_match(api: Caller) -> None:
    """During a secret rotation Stripe signs with each secret: one matching v1 is enough."""
    secret = stripe_secret(api)
    for place in ("first", "last"):
        account = api.new_account()
        order_id = create_topup(api, account, 2 * USD, "stripe")["orderId"]
        raw = json.dumps(checkout_completed(order_id, 200))
        ts = int(time.time())
        good = stripe_v1(raw, ts, secret)
        bad = stripe_v1(raw, ts, "whsec_some-other-endpoint-secret-000000")
        pairs = [good, bad] if place == "first" else [bad, bad, good]
        header = f"t={ts}," + ",".join(f"v1={sig}" for sig in pairs)
        assert_status(post_stripe(api, raw=raw, header=header), 200)
        assert_money(api, account, order_id, balance=2 * USD, status=None, credited=2 * USD)


def test_stripe_forged_refund_does_not_debit(api: Caller) -> None:
    account = api.new_account()
    order_id, payment_intent = stripe_paid(api, account, 5 * USD)
    raw = json.dumps(charge_refunded(order_id, 500, 500, payment_intent))
    assert_error(post_stripe(api, raw=raw, secret="whsec_attacker-secret-0000000000000"), 401)
    assert_error(post_stripe(api, raw=raw, timestamp=int(time.time()) - 3_600), 401)
    assert_money(api, account, order_id, balance=5 * USD, status=None, credited=5 * USD, refunded=0)


# -- unknown orders: queued, not lost ------------------------------------------------------------


def _dlq_item_ids(api: Caller, status: str) -> set[str]:
    found: set[str] = set()
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"status": status, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = admin_get(api, DLQ, **params)
        found |= {item["itemId"] for item in page["items"]}
        cursor = page["pagination"].get("nextCursor")
        if not cursor:
            break
    return found


def test_signed_events_for_unknown_orders_are_queued_and_visible_to_operators(api: Caller) -> None:
    unknown_np = unique("ord_unknown")
    unknown_stripe = unique("ord_unknown")
    np_body = ipn(unknown_np, "finished", 5)
    np_reply = post_ipn(api, np_body)
    stripe_reply = post_stripe(api, checkout_completed(unknown_stripe, 500))
    items = []
    for reply in (np_reply, stripe_reply):
        body = assert_status(reply, 202)
        assert body.get("outcome") == "queued" and body.get("itemId"), describe(reply)
        items.append(body["itemId"])
    listed = _dlq_item_ids(api, "pending") | _dlq_item_ids(api, "manual_review")
    assert set(items) <= listed, (items, listed)

    # Redelivered by the provider while still unknown: queued again, never an error the provider
    # would give up on.
    again = assert_status(post_ipn(api, np_body), 202)
    assert again["outcome"] == "queued", again


def test_unsigned_event_for_unknown_order_is_401_not_queued(api: Caller) -> None:
    reply = post_ipn(api, ipn(unique("ord_unknown"), "finished", 5), signature="00" * 64)
    assert_error(reply, 401)
    reply = post_stripe(api, checkout_completed(unique("ord_unknown"), 500), header="t=1,v1=00")
    assert_error(reply, 401)


# -- users and the money they see ----------------------------------------------------------------


def test_webhook_credit_is_spendable_and_visible_in_the_users_balance(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account()
    np_paid(api, account, 3 * USD)
    stripe_paid(api, account, 2 * USD)
    balance = api.balance(account)
    general = [p for p in balance["pools"] if p["poolId"] == "general"]
    assert general and int(general[0]["availableMicro"]) == 5 * USD, balance
    assert int(balance["totalAvailableMicro"]) == 5 * USD, balance
    reservation = api.reserve_ok(account, 5 * USD)["reservationId"]
    api.finalize_ok(reservation, 5 * USD)
    assert api.total_available(account) == 0
    assert_error(api.reserve(account, 1), 402, "INSUFFICIENT_CREDIT")
    assert lifetime_paid(api, account) == 5 * USD


def test_mixed_deliveries_across_orders_credit_each_order_exactly_once(api: Caller) -> None:
    """A burst of concurrent deliveries for three orders of one account (finished twice per
    order, plus stray earlier states): each order is credited once, to the micro-unit."""
    account = api.new_account()
    amounts = [1_230_000, 4_560_000, 7_890_000]
    orders = [create_topup(api, account, a, "nowpayments")["orderId"] for a in amounts]
    secret = np_secret(api)
    bodies = []
    for order_id, amount in zip(orders, amounts, strict=True):
        price = amount / USD
        pid = int(time.time_ns() % 10**9)
        bodies += [ipn(order_id, "finished", price, payment_id=pid)] * 2
        bodies += [ipn(order_id, "confirming", price, payment_id=pid), ipn(order_id, "waiting", price, payment_id=pid)]
    signed = [(json.dumps(b), np_sign(b, secret)) for b in bodies]
    replies = together(len(signed), lambda i: raw_post(api, NOWPAYMENTS, signed[i][0],
                                                       {"x-nowpayments-sig": signed[i][1]}))
    assert Counter(r.status_code for r in replies).keys() <= {200, 202}, [describe(r) for r in replies]
    for order_id, amount in zip(orders, amounts, strict=True):
        assert_money(api, account, order_id, balance=sum(amounts), status="finished", credited=amount)
    deposits = user_entries(api, account, "deposit")
    assert sorted(int(e["amountMicro"]) for e in deposits) == sorted(amounts), deposits
    assert lifetime_paid(api, account) == sum(amounts)


def test_reserve_route_is_unaffected_by_webhook_tokens(api: Caller) -> None:
    """A webhook signature is not a credential anywhere else."""
    account = api.new_account()
    create_topup(api, account, 1 * USD, "stripe")
    body = {"accountId": account, "estimatedCostMicro": "1"}
    reply = api.request("POST", RESERVE, json_body=body,
                        headers={"Stripe-Signature": stripe_header(json.dumps(body), stripe_secret(api))})
    assert_error(reply, 401)


# -- a payment and its refund racing each other --------------------------------------------------


def test_nowpayments_refunded_arriving_before_finished_nets_to_zero(api: Caller) -> None:
    account = api.new_account()
    order_id = create_topup(api, account, 3 * USD, "nowpayments")["orderId"]
    ipn_ok(api, ipn(order_id, "refunded", 3, payment_id=777_001))
    ipn_ok(api, ipn(order_id, "finished", 3, payment_id=777_001))
    assert api.total_available(account) == 0, api.balance(account)


@pytest.mark.parametrize("provider", ["stripe", "nowpayments"])
def test_payment_and_its_refund_delivered_at_once_net_to_zero(api: Caller, provider: str) -> None:
    """The completion and the full refund of one payment, delivered at the same moment (on
    several orders in turn): whichever lands first, every account ends at zero. A credit that
    survives its own refund is money created from nothing."""
    wrong = []
    for n in range(10):
        account = api.new_account()
        order_id = create_topup(api, account, 4 * USD, provider)["orderId"]
        if provider == "stripe":
            payment_intent = unique("pi")
            raws = [json.dumps(checkout_completed(order_id, 400, payment_intent=payment_intent)),
                    json.dumps(charge_refunded(order_id, 400, 400, payment_intent))]
            pair = [(STRIPE, raw, {"Stripe-Signature": stripe_header(raw, stripe_secret(api))}) for raw in raws]
        else:
            bodies = [ipn(order_id, status, 4, payment_id=880_000 + n) for status in ("finished", "refunded")]
            pair = [(NOWPAYMENTS, json.dumps(b), {"x-nowpayments-sig": np_sign(b, np_secret(api))}) for b in bodies]
        replies = together(2, lambda i, pair=pair: raw_post(api, *pair[i]))
        assert all(r.status_code in (200, 202) for r in replies), [describe(r) for r in replies]
        balance = api.total_available(account)
        if balance != 0:
            record = get_topup(api, account, order_id)
            wrong.append({"balance": balance, "status": record["status"], "creditedMicro": record["creditedMicro"],
                          "refundedMicro": record["refundedMicro"], "replies": [body_of(r) for r in replies]})
    assert not wrong, json.dumps(wrong)
