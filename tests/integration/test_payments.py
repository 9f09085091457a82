"""Top-ups and provider webhooks in-process: signatures, the payment state machine, exactly-once
credit under redelivery and out-of-order delivery, refunds. Every assertion is on what a user or
an operator sees: the balance to the micro-unit, the top-up's status, the ledger."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest
from billing_core.kernel import clock
from billing_core.payments import signatures as webhook_signatures

from tests.support.env import TEST_ENV

NP_SECRET = TEST_ENV["NOWPAYMENTS_IPN_SECRET"]
STRIPE_SECRET = TEST_ENV["STRIPE_WEBHOOK_SECRET"]


@pytest.fixture
def sqs(aws: Any) -> Any:
    import boto3

    client = boto3.client("sqs", region_name="us-east-1")
    client.create_queue(QueueName="WorkQueue")
    return client


class Payments:
    def __init__(self, api: Any, tokens: Any, account: str) -> None:
        self.api, self.tokens, self.account = api, tokens, account
        self.user = tokens.user(account)
        self.amounts: dict[str, int] = {}

    def topup(self, amount: int, provider: str = "nowpayments") -> str:
        r = self.api.call("createtopup", {"amountMicro": str(amount), "provider": provider}, token=self.user)
        assert r.status == 201, r.body
        self.amounts[r.body["orderId"]] = amount
        return r.body["orderId"]

    def ipn(self, order: str, status: str, *, amount: Any = None, payment_id: Any = 4242, secret: str = NP_SECRET,
            body: bytes | None = None, signature: str | None = None, **extra: Any):
        if amount is None:
            amount = str(Decimal(self.amounts.get(order, 5_000_000)) / 1_000_000)
        raw = body if body is not None else json.dumps({
            "payment_id": payment_id, "payment_status": status, "order_id": order, "price_amount": amount,
            "price_currency": "usd", "pay_currency": "btc", "actually_paid": "0.00012", **extra}).encode()
        sig = signature if signature is not None else webhook_signatures.nowpayments_signature(raw, secret)
        return self.api.call("nowpayments", raw_body=raw.decode(), headers={"x-nowpayments-sig": sig})

    def stripe(self, event: dict[str, Any], *, timestamp: int | None = None, secret: str = STRIPE_SECRET,
               header: str | None = None):
        raw = json.dumps(event).encode()
        sig = header if header is not None else webhook_signatures.stripe_header(raw, secret, timestamp)
        return self.api.call("stripe", raw_body=raw.decode(), headers={"Stripe-Signature": sig})

    def balance(self) -> int:
        r = self.api.call("balance", token=self.user)
        assert r.status == 200, r.body
        return int(r.body["totalAvailableMicro"])

    def order(self, order: str) -> dict[str, Any]:
        r = self.api.call("gettopup", token=self.user, path={"orderId": order})
        assert r.status == 200, r.body
        return r.body

    def deposits(self) -> list[dict[str, Any]]:
        r = self.api.call("history", token=self.user, query={"entryType": "deposit"})
        return r.body["entries"]


def checkout_completed(order: str, cents: int, *, event_id: str = "evt_paid", paid: str = "paid",
                       currency: str = "usd") -> dict[str, Any]:
    return {"id": event_id, "type": "checkout.session.completed", "data": {"object": {
        "id": "cs_test_1", "client_reference_id": order, "amount_total": cents, "currency": currency,
        "payment_status": paid, "payment_intent": f"pi_{order}"}}}


def charge_refunded(order: str, amount: int, refunded: int, *, event_id: str) -> dict[str, Any]:
    return {"id": event_id, "type": "charge.refunded", "data": {"object": {
        "id": "ch_1", "amount": amount, "amount_refunded": refunded, "currency": "usd",
        "payment_intent": f"pi_{order}", "metadata": {"orderId": order}}}}


@pytest.fixture
def pay(api: Any, tokens: Any, sqs: Any, request: pytest.FixtureRequest) -> Payments:
    return Payments(api, tokens, f"acct-{request.node.name[:40].replace('_', '-')}")


# -- top-ups ----------------------------------------------------------------------------------


def test_topup_without_provider_keys_records_a_pending_payment_and_says_no_url_was_created(pay: Payments):
    order = pay.topup(5_000_000)
    record = pay.order(order)
    assert record["status"] == "pending" and record["amountMicro"] == "5000000"
    assert record["paymentUrl"] is None and record["providerInvoiceCreated"] is False
    assert pay.balance() == 0


@pytest.mark.parametrize("amount", ["999999", "1000001", "0", "-5", "1.5", True])
def test_topup_amount_must_be_whole_cents_of_at_least_a_dollar(pay: Payments, amount: Any):
    r = pay.api.call("createtopup", {"amountMicro": amount, "provider": "stripe"}, token=pay.user)
    assert r.status == 422, r.body
    assert r.code in ("INVALID_TOPUP_AMOUNT", "VALIDATION_ERROR")


def test_topup_provider_must_be_known(pay: Payments):
    r = pay.api.call("createtopup", {"amountMicro": "5000000", "provider": "paypal"}, token=pay.user)
    assert r.status == 422 and r.code == "VALIDATION_ERROR"


def test_another_users_topup_is_not_found(pay: Payments, tokens: Any):
    order = pay.topup(2_000_000)
    r = pay.api.call("gettopup", token=tokens.user("acct-someone-else"), path={"orderId": order})
    assert r.status == 404 and r.code == "TOPUP_NOT_FOUND"


def test_topup_with_a_provider_key_returns_the_invoice_url(pay: Payments, monkeypatch: pytest.MonkeyPatch):
    from billing_core.payments import providers as payment_providers

    seen = {}

    def fake_invoice(provider: str, *, order_id: str, amount_micro: int):
        seen.update(provider=provider, order_id=order_id, amount=amount_micro)
        return payment_providers.Invoice(invoice_id="inv_1", url="https://nowpayments.io/payment/?iid=inv_1")

    monkeypatch.setenv("NOWPAYMENTS_API_KEY", "np-key")
    monkeypatch.setattr(payment_providers, "create_invoice", fake_invoice)
    r = pay.api.call("createtopup", {"amountMicro": "7500000", "provider": "nowpayments"}, token=pay.user)
    assert r.status == 201, r.body
    assert r.body["paymentUrl"] == "https://nowpayments.io/payment/?iid=inv_1"
    assert seen == {"provider": "nowpayments", "order_id": r.body["orderId"], "amount": 7_500_000}


def test_provider_failure_is_502_and_the_payment_is_marked_failed(pay: Payments, monkeypatch: pytest.MonkeyPatch):
    from billing_core.payments import providers as payment_providers

    def broken(provider: str, **_: Any):
        raise payment_providers.ProviderError("Stripe checkout: APIConnectionError")

    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_x")
    monkeypatch.setattr(payment_providers, "create_invoice", broken)
    r = pay.api.call("createtopup", {"amountMicro": "7500000", "provider": "stripe"}, token=pay.user)
    assert r.status == 502 and r.code == "PROVIDER_UNAVAILABLE"
    assert "sk_test_x" not in json.dumps(r.body)


def test_nowpayments_amount_formats_are_exact():
    from billing_core.payments.model import usd_to_micro

    assert usd_to_micro("19.99", field="x") == 19_990_000
    assert usd_to_micro("0.000001", field="x") == 1
    for bad in ("0.0000001", "NaN", "-1", "abc"):
        with pytest.raises(Exception):  # noqa: B017 - any refusal
            usd_to_micro(bad, field="x")


# -- NOWPayments ------------------------------------------------------------------------------


def test_nowpayments_finished_credits_the_order_amount_once(pay: Payments):
    order = pay.topup(5_000_000)
    assert pay.ipn(order, "waiting").status == 200
    r = pay.ipn(order, "finished")
    assert r.status == 200 and r.body["outcome"] == "credited"
    assert pay.balance() == 5_000_000
    record = pay.order(order)
    assert record["status"] == "finished" and record["creditedMicro"] == "5000000"
    assert record["providerCurrency"] == "btc" and record["providerAmount"] == "0.00012"  # audit trail
    deposits = pay.deposits()
    assert len(deposits) == 1 and deposits[0]["metadata"]["orderId"] == order


def test_nowpayments_redelivery_never_credits_twice(pay: Payments):
    order = pay.topup(3_000_000)
    outcomes = [pay.ipn(order, "finished").body["outcome"] for _ in range(5)]
    assert outcomes == ["credited"] + ["duplicate"] * 4
    assert pay.balance() == 3_000_000
    assert len(pay.deposits()) == 1


@pytest.mark.parametrize("sequence", [
    ["finished", "waiting", "confirming", "confirmed", "sending"],
    ["confirming", "finished", "waiting", "failed", "expired"],
    ["partially_paid", "finished", "partially_paid"],
])
def test_nowpayments_out_of_order_deliveries_end_in_exactly_one_credit(pay: Payments, sequence: list[str]):
    order = pay.topup(4_000_000)
    for status in sequence:
        assert pay.ipn(order, status).status == 200
    assert pay.balance() == 4_000_000
    assert pay.order(order)["status"] == "finished"


def test_nowpayments_failed_or_expired_payment_credits_nothing(pay: Payments):
    order = pay.topup(4_000_000)
    assert pay.ipn(order, "waiting").status == 200
    r = pay.ipn(order, "expired")
    assert r.status == 200 and r.body["outcome"] == "applied"
    assert pay.balance() == 0 and pay.order(order)["status"] == "expired"


def test_nowpayments_partially_paid_credits_nothing(pay: Payments):
    order = pay.topup(4_000_000)
    assert pay.ipn(order, "partially_paid").status == 200
    assert pay.balance() == 0 and pay.order(order)["status"] == "partially_paid"


@pytest.mark.parametrize("how", ["wrong_secret", "tampered_body", "missing", "garbage", "uppercase_other"])
def test_forged_nowpayments_ipn_is_401_and_changes_nothing(pay: Payments, how: str):
    order = pay.topup(5_000_000)
    good = json.dumps({"payment_id": 1, "payment_status": "finished", "order_id": order, "price_amount": 5,
                       "price_currency": "usd"}).encode()
    if how == "wrong_secret":
        r = pay.ipn(order, "finished", body=good, secret="not-the-secret")
    elif how == "tampered_body":
        sig = webhook_signatures.nowpayments_signature(good, NP_SECRET)
        r = pay.ipn(order, "finished", body=good.replace(b'"price_amount": 5', b'"price_amount": 50'), signature=sig)
    elif how == "missing":
        r = pay.api.call("nowpayments", raw_body=good.decode(), headers={})
    elif how == "garbage":
        r = pay.ipn(order, "finished", body=b"not json", signature="00" * 64)
    else:
        r = pay.ipn(order, "finished", body=good, signature="A" * 128)
    assert r.status == 401 and r.code == "INVALID_SIGNATURE", r.body
    assert pay.balance() == 0 and pay.order(order)["status"] == "pending"


def test_nowpayments_signature_is_over_sorted_keys_not_the_raw_order(pay: Payments):
    order = pay.topup(2_000_000)
    body = ('{"price_currency":"usd","order_id":"' + order + '","payment_status":"finished","price_amount":2,'
            '"payment_id":77}').encode()
    r = pay.ipn(order, "finished", body=body)  # signed by the helper over the sorted form
    assert r.status == 200 and r.body["outcome"] == "credited"


def test_nowpayments_amount_mismatch_is_parked_for_review_not_credited(pay: Payments, admin_token: str):
    order = pay.topup(5_000_000)
    r = pay.ipn(order, "finished", amount="4.99")
    assert r.status == 202 and r.body["outcome"] == "queued"
    assert pay.balance() == 0
    items = pay.api.call("listdlq", token=admin_token, query={"status": "pending"}).body["items"]
    assert [i["itemId"] for i in items] == [r.body["itemId"]]
    assert "4990000" in items[0]["lastError"]


def test_signed_ipn_for_an_unknown_order_is_queued(pay: Payments, admin_token: str):
    r = pay.ipn("ord_does_not_exist", "finished")
    assert r.status == 202 and r.body["outcome"] == "queued"
    again = pay.ipn("ord_does_not_exist", "finished")
    assert again.status == 202 and again.body["itemId"] == r.body["itemId"]  # one item per failure
    items = pay.api.call("listdlq", token=admin_token, query={"status": "pending"}).body["items"]
    assert len(items) == 1 and items[0]["lastError"].startswith("UNKNOWN_ORDER")


def test_nowpayments_refunded_after_finished_debits_the_credit_once(pay: Payments):
    order = pay.topup(5_000_000)
    pay.ipn(order, "finished")
    assert pay.ipn(order, "refunded").body["outcome"] == "refunded"
    assert pay.ipn(order, "refunded").body["outcome"] == "duplicate"
    assert pay.balance() == 0
    assert pay.order(order)["status"] == "refunded"


def test_refund_before_payment_means_a_later_finished_never_credits(pay: Payments):
    order = pay.topup(5_000_000)
    pay.ipn(order, "refunded")
    pay.ipn(order, "finished")
    assert pay.balance() == 0


# -- Stripe -----------------------------------------------------------------------------------


def test_stripe_checkout_completed_credits_amount_total_once(pay: Payments):
    order = pay.topup(12_340_000, "stripe")
    event = checkout_completed(order, 1234)
    assert pay.stripe(event).body["outcome"] == "credited"
    assert pay.stripe(event).body["outcome"] == "duplicate"
    assert pay.stripe({**event, "id": "evt_other_delivery"}).body["outcome"].startswith("ignored")
    assert pay.balance() == 12_340_000


def test_stripe_unpaid_completion_waits_for_async_success(pay: Payments):
    order = pay.topup(2_000_000, "stripe")
    assert pay.stripe(checkout_completed(order, 200, paid="unpaid", event_id="evt_a")).body["outcome"] == "applied"
    assert pay.balance() == 0
    succeeded = checkout_completed(order, 200, event_id="evt_b")
    succeeded["type"] = "checkout.session.async_payment_succeeded"
    assert pay.stripe(succeeded).body["outcome"] == "credited"
    assert pay.balance() == 2_000_000


def test_stripe_expired_after_completed_changes_nothing(pay: Payments):
    order = pay.topup(2_000_000, "stripe")
    pay.stripe(checkout_completed(order, 200))
    expired = {"id": "evt_exp", "type": "checkout.session.expired", "data": {"object": {
        "id": "cs_test_1", "client_reference_id": order, "amount_total": 200, "currency": "usd"}}}
    assert pay.stripe(expired).body["outcome"] == "ignored_out_of_order"
    assert pay.balance() == 2_000_000 and pay.order(order)["status"] == "completed"


def test_stripe_other_event_types_are_acknowledged_and_ignored(pay: Payments):
    r = pay.stripe({"id": "evt_x", "type": "customer.created", "data": {"object": {}}})
    assert r.status == 200 and r.body["outcome"] == "ignored"


def test_stripe_stale_and_future_signatures_are_refused(pay: Payments):
    order = pay.topup(2_000_000, "stripe")
    now = int(clock.now())
    stale = pay.stripe(checkout_completed(order, 200), timestamp=now - 301)
    future = pay.stripe(checkout_completed(order, 200), timestamp=now + 301)
    assert (stale.status, stale.code) == (401, "SIGNATURE_EXPIRED")
    assert (future.status, future.code) == (401, "SIGNATURE_EXPIRED")
    assert pay.stripe(checkout_completed(order, 200), timestamp=now - 299).status == 200
    assert pay.balance() == 2_000_000


def test_stripe_replay_of_a_captured_delivery_after_the_window_is_refused(pay: Payments):
    order = pay.topup(2_000_000, "stripe")
    raw = json.dumps(checkout_completed(order, 200)).encode()
    header = webhook_signatures.stripe_header(raw, STRIPE_SECRET)
    clock.advance(301)
    r = pay.api.call("stripe", raw_body=raw.decode(), headers={"Stripe-Signature": header})
    assert r.status == 401 and pay.balance() == 0


def test_stripe_any_of_several_v1_signatures_may_match(pay: Payments):
    order = pay.topup(2_000_000, "stripe")
    raw = json.dumps(checkout_completed(order, 200)).encode()
    good = webhook_signatures.stripe_header(raw, STRIPE_SECRET)
    t, v1 = good.split(",")
    header = f"{t},v1={'0' * 64},{v1}"
    r = pay.api.call("stripe", raw_body=raw.decode(), headers={"Stripe-Signature": header})
    assert r.status == 200 and r.body["outcome"] == "credited"


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=deadbeef", "t=1700000000", "garbage"])
def test_malformed_stripe_signature_headers_are_401(pay: Payments, header: str):
    order = pay.topup(2_000_000, "stripe")
    r = pay.stripe(checkout_completed(order, 200), header=header)
    assert r.status == 401 and pay.balance() == 0


def test_stripe_partial_then_full_refund_debits_each_cent_once(pay: Payments):
    order = pay.topup(10_000_000, "stripe")
    pay.stripe(checkout_completed(order, 1000))
    assert pay.stripe(charge_refunded(order, 1000, 300, event_id="evt_r1")).body["outcome"] == "refunded"
    assert pay.balance() == 7_000_000
    assert pay.stripe(charge_refunded(order, 1000, 300, event_id="evt_r1")).body["outcome"] == "duplicate"
    assert pay.stripe(charge_refunded(order, 1000, 1000, event_id="evt_r2")).body["outcome"] == "refunded"
    assert pay.balance() == 0
    record = pay.order(order)
    assert record["status"] == "refunded" and record["refundedMicro"] == "10000000"


def test_refund_after_spending_leaves_a_negative_balance(pay: Payments, admin_token: str):
    order = pay.topup(10_000_000, "stripe")
    pay.stripe(checkout_completed(order, 1000))
    r = pay.api.call("adjust", {"deltaMicro": "-8000000", "reason": "spent"}, token=admin_token,
                     path={"accountId": pay.account})
    assert r.status == 200
    pay.stripe(charge_refunded(order, 1000, 1000, event_id="evt_full"))
    assert pay.balance() == -8_000_000


def test_operator_refund_with_order_id_is_not_debited_again_by_the_provider_event(pay: Payments, admin_token: str):
    order = pay.topup(10_000_000, "stripe")
    pay.stripe(checkout_completed(order, 1000))
    r = pay.api.call("refund", {"amountMicro": "4000000", "reason": "goodwill", "orderId": order},
                     token=admin_token, path={"accountId": pay.account})
    assert r.status == 200 and r.body["newBalanceMicro"] == "6000000"
    # Stripe later reports the same 40.00 refunded: nothing more is debited.
    assert pay.stripe(charge_refunded(order, 1000, 400, event_id="evt_dash")).body["outcome"] == "refund_recorded"
    assert pay.balance() == 6_000_000
    over = pay.api.call("refund", {"amountMicro": "6000001", "reason": "too much", "orderId": order},
                        token=admin_token, path={"accountId": pay.account})
    assert over.status == 409 and over.code == "REFUND_EXCEEDS_PAYMENT"


def test_a_keyed_refund_sent_again_answers_the_first_refund(pay: Payments, admin_token: str):
    """A client whose answer was lost re-sends the whole refund with its key: it gets the first
    answer back, not 409 for a refund that now exceeds the payment, and nothing moves twice."""
    order = pay.topup(10_000_000, "stripe")
    pay.stripe(checkout_completed(order, 1000))
    body = {"amountMicro": "10000000", "reason": "chargeback", "orderId": order, "idempotencyKey": "refund-1"}
    first = pay.api.call("refund", body, token=admin_token, path={"accountId": pay.account})
    again = pay.api.call("refund", body, token=admin_token, path={"accountId": pay.account})
    assert first.status == 200 and first.body["newBalanceMicro"] == "0", first.body
    assert (again.status, again.body) == (first.status, first.body)
    assert pay.balance() == 0
    other = pay.api.call("refund", {**body, "amountMicro": "1"}, token=admin_token, path={"accountId": pay.account})
    assert other.status == 409 and other.code == "IDEMPOTENCY_KEY_REUSED", other.body


def test_a_refund_against_a_top_up_debits_the_pool_it_credited(pay: Payments, admin_token: str):
    """Debiting another pool would leave the deposit spendable while the top-up reads refunded,
    so the provider's own refund event would later debit nothing."""
    order = pay.topup(10_000_000, "stripe")
    pay.stripe(checkout_completed(order, 1000))
    elsewhere = pay.api.call("refund", {"amountMicro": "10000000", "reason": "r", "orderId": order, "poolId": "gpu"},
                             token=admin_token, path={"accountId": pay.account})
    assert (elsewhere.status, elsewhere.code) == (422, "REFUND_POOL_MISMATCH"), elsewhere.body
    assert elsewhere.body["error"]["details"] == {"poolId": "general"}
    assert pay.balance() == 10_000_000 and pay.order(order)["status"] == "completed"
    r = pay.api.call("refund", {"amountMicro": "10000000", "reason": "r", "orderId": order},
                     token=admin_token, path={"accountId": pay.account})
    assert r.status == 200 and (r.body["poolId"], r.body["newBalanceMicro"]) == ("general", "0"), r.body


def test_webhook_for_the_other_provider_is_parked(pay: Payments, admin_token: str):
    order = pay.topup(2_000_000, "nowpayments")
    r = pay.stripe(checkout_completed(order, 200))
    assert r.status == 202 and pay.balance() == 0


def test_oversized_webhook_is_413(pay: Payments):
    r = pay.api.call("stripe", raw_body="x" * (64 * 1024 + 1), headers={"Stripe-Signature": "t=1,v1=00"})
    assert r.status == 413


def test_lifetime_paid_counts_payments_not_adjustments(pay: Payments, admin_token: str):
    order = pay.topup(3_000_000)
    pay.ipn(order, "finished")
    pay.api.call("adjust", {"deltaMicro": "1000000", "reason": "bonus"}, token=admin_token,
                 path={"accountId": pay.account})
    r = pay.api.call("accountbalance", token=admin_token, path={"accountId": pay.account})
    assert r.body["lifetimePaidMicro"] == "3000000" and r.body["totalAvailableMicro"] == "4000000"


@pytest.fixture
def admin_token(tokens: Any) -> str:
    return tokens.admin()


def test_secret_never_appears_in_logs(pay: Payments, capsys: pytest.CaptureFixture[str]):
    order = pay.topup(1_000_000)
    pay.ipn(order, "finished", secret="wrong")
    pay.ipn("ord_unknown", "finished")
    out = capsys.readouterr()
    assert NP_SECRET not in out.out + out.err
    assert time.time() > 0
