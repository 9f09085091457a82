"""Payment-provider webhooks and top-ups over HTTP, for the end-to-end tests: signed NOWPayments
IPNs and Stripe events, top-up orders, and the money reads that check them to the micro-unit.
Built on tests.support.http's Caller."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import requests

from tests.support.http import Caller, assert_status, body_of, describe, unique

TOPUPS = "/api/billing/topups"
NOWPAYMENTS = "/api/billing/webhooks/nowpayments"
STRIPE = "/api/billing/webhooks/stripe"
DLQ = "/admin/billing/dlq"
USD = 1_000_000  # micro-units per dollar
CENT = 10_000  # micro-units per cent


# -- top-ups, balances and the operator's reads -------------------------------------------------


def admin_path(account_id: str, what: str) -> str:
    return f"/admin/billing/accounts/{account_id}/{what}"


def create_topup(api: Caller, account: str, amount: int | str, provider: str) -> dict[str, Any]:
    response = api.request("POST", TOPUPS, json_body={"amountMicro": str(amount), "provider": provider},
                           token=api.user_token(account))
    body = assert_status(response, 201)
    assert body["status"] == "pending", describe(response)
    assert str(body["amountMicro"]) == str(amount), describe(response)
    return body


def get_topup(api: Caller, account: str, order_id: str) -> dict[str, Any]:
    return assert_status(api.request("GET", f"{TOPUPS}/{order_id}", token=api.user_token(account)), 200)


def admin_get(api: Caller, path: str, **params: Any) -> dict[str, Any]:
    # A fresh operator per read: reads are not what these tests are about, and each operator
    # has its own 30/min budget.
    response = api.request("GET", path, token=api.admin_token(unique("ops-read")), params=params or None)
    return assert_status(response, 200)


def lifetime_paid(api: Caller, account: str) -> int:
    return int(admin_get(api, admin_path(account, "balance"))["lifetimePaidMicro"])


def admin_entries(api: Caller, account: str, entry_type: str | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": 100}
    if entry_type:
        params["entryType"] = entry_type
    return admin_get(api, admin_path(account, "history"), **params)["entries"]


def user_entries(api: Caller, account: str, entry_type: str) -> list[dict[str, Any]]:
    return [e for e in api.all_entries(account) if e["entryType"] == entry_type]


def assert_money(api: Caller, account: str, order_id: str, *, balance: int, status: str | tuple[str, ...] | None,
                 credited: int, refunded: int = 0) -> dict[str, Any]:
    """The account's balance (user view) and the top-up's record, exact to the micro-unit."""
    assert api.total_available(account) == balance, (account, api.balance(account))
    record = get_topup(api, account, order_id)
    assert int(record["creditedMicro"]) == credited, record
    assert int(record["refundedMicro"]) == refunded, record
    if status is not None:
        statuses = (status,) if isinstance(status, str) else status
        assert record["status"] in statuses, record
    return record


# NOWPayments: HMAC-SHA512 over the body re-serialized with sorted keys and compact separators.


def np_secret(api: Caller) -> str:
    return api.stack.secrets["NOWPAYMENTS_IPN_SECRET"]


def np_canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def np_sign(body: dict[str, Any], secret: str) -> str:
    return hmac.new(secret.encode(), np_canonical(body).encode(), hashlib.sha512).hexdigest()


def ipn(order_id: str, status: str, price_amount: Any, *, payment_id: str | int | None = None,
        price_currency: str = "usd", **extra: Any) -> dict[str, Any]:
    body = {
        "payment_id": payment_id if payment_id is not None else int(time.time_ns() % 10**12),
        "payment_status": status,
        "pay_address": "bc1qexampleaddress0000000000000000000000",
        "price_amount": price_amount,
        "price_currency": price_currency,
        "pay_amount": 0.00012345,
        "actually_paid": 0.00012345 if status in ("finished", "partially_paid", "confirmed", "sending") else 0,
        "pay_currency": "btc",
        "order_id": order_id,
        "order_description": "credit top-up",
        "purchase_id": "5837122679",
        "created_at": "2024-01-01T10:00:00.000Z",
        "updated_at": "2024-01-01T10:10:00.000Z",
        "outcome_amount": 0.0001,
        "outcome_currency": "btc",
    }
    body.update(extra)
    return body


def post_ipn(api: Caller, body: dict[str, Any] | None = None, *, raw: str | bytes | None = None,
             signature: str | None = "auto", secret: str | None = None) -> requests.Response:
    if raw is None:
        assert body is not None
        raw = json.dumps(body)
    headers: dict[str, str] = {}
    if signature == "auto":
        assert body is not None
        signature = np_sign(body, secret or np_secret(api))
    if signature is not None:
        headers["x-nowpayments-sig"] = signature
    return api.request("POST", NOWPAYMENTS, raw=raw, headers=headers)


def ipn_ok(api: Caller, body: dict[str, Any]) -> dict[str, Any]:
    response = post_ipn(api, body)
    assert response.status_code in (200, 201, 202, 204), describe(response)
    return body_of(response) if response.content else {}


def np_paid(api: Caller, account: str, amount: int, *, price_amount: Any = None) -> tuple[str, dict[str, Any]]:
    """A NOWPayments top-up of `amount` micro, paid: (orderId, the finished IPN body)."""
    order_id = create_topup(api, account, amount, "nowpayments")["orderId"]
    finished = ipn(order_id, "finished", price_amount if price_amount is not None else amount / USD)
    assert_status(post_ipn(api, finished), 200)
    return order_id, finished


# Stripe: Stripe-Signature t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">.


def stripe_secret(api: Caller) -> str:
    return api.stack.secrets["STRIPE_WEBHOOK_SECRET"]


def stripe_v1(payload: str | bytes, timestamp: int, secret: str) -> str:
    raw = payload.encode() if isinstance(payload, str) else payload
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + raw, hashlib.sha256).hexdigest()


def stripe_header(payload: str | bytes, secret: str, *, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={stripe_v1(payload, ts, secret)}"


def stripe_event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or unique("evt"),
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": event_type,
        "data": {"object": obj},
    }


def checkout_completed(order_id: str, cents: int, *, payment_intent: str | None = None, currency: str = "usd",
                       payment_status: str = "paid", event_id: str | None = None) -> dict[str, Any]:
    return stripe_event("checkout.session.completed", {
        "id": unique("cs_test"),
        "object": "checkout.session",
        "client_reference_id": order_id,
        "amount_subtotal": cents,
        "amount_total": cents,
        "currency": currency,
        "mode": "payment",
        "payment_status": payment_status,
        "status": "complete",
        "payment_intent": payment_intent or unique("pi"),
        "metadata": {"orderId": order_id},
    }, event_id=event_id)


def checkout_expired(order_id: str, cents: int, *, event_id: str | None = None) -> dict[str, Any]:
    return stripe_event("checkout.session.expired", {
        "id": unique("cs_test"),
        "object": "checkout.session",
        "client_reference_id": order_id,
        "amount_total": cents,
        "currency": "usd",
        "payment_status": "unpaid",
        "status": "expired",
        "payment_intent": None,
        "metadata": {"orderId": order_id},
    }, event_id=event_id)


def charge_refunded(order_id: str, cents: int, refunded_cents: int, payment_intent: str, *,
                    event_id: str | None = None) -> dict[str, Any]:
    return stripe_event("charge.refunded", {
        "id": unique("ch"),
        "object": "charge",
        "amount": cents,
        "amount_captured": cents,
        "amount_refunded": refunded_cents,
        "currency": "usd",
        "paid": True,
        "refunded": refunded_cents >= cents,
        "payment_intent": payment_intent,
        "metadata": {"orderId": order_id},
    }, event_id=event_id)


def post_stripe(api: Caller, event: dict[str, Any] | None = None, *, raw: str | bytes | None = None,
                header: str | None = "auto", timestamp: int | None = None,
                secret: str | None = None) -> requests.Response:
    if raw is None:
        assert event is not None
        raw = json.dumps(event, indent=2)  # Stripe pretty-prints; the signature is over these bytes
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if header == "auto":
        header = stripe_header(raw, secret or stripe_secret(api), timestamp=timestamp)
    if header is not None:
        headers["Stripe-Signature"] = header
    return api.request("POST", STRIPE, raw=raw, headers=headers)


def stripe_ok(api: Caller, event: dict[str, Any]) -> dict[str, Any]:
    response = post_stripe(api, event)
    assert response.status_code in (200, 201, 202, 204), describe(response)
    return body_of(response) if response.content else {}


def stripe_paid(api: Caller, account: str, amount: int) -> tuple[str, str]:
    """A Stripe top-up of `amount` micro, paid: (orderId, payment_intent)."""
    order_id = create_topup(api, account, amount, "stripe")["orderId"]
    payment_intent = unique("pi")
    assert_status(post_stripe(api, checkout_completed(order_id, amount // CENT, payment_intent=payment_intent)), 200)
    return order_id, payment_intent


def together(count: int, send: Any) -> list[requests.Response]:
    """`count` calls of send(index) released at once from their own threads."""
    barrier = Barrier(count)

    def one(index: int) -> requests.Response:
        barrier.wait(10)
        return send(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def raw_post(api: Caller, path: str, raw: str, headers: dict[str, str]) -> requests.Response:
    """A POST on its own connection (for threads)."""
    with requests.Session() as session:
        return session.post(api.url + path, data=raw, headers={"Content-Type": "application/json", **headers},
                            timeout=60)
