"""Provider payloads -> PaymentEvent. Runs only on bodies whose signature was verified.

NOWPayments IPN: `order_id` is our orderId, `payment_status` the state, USD `price_amount` is
what the order was for (credited on `finished`); the crypto actually paid (`pay_currency`,
`actually_paid`) is kept for the audit trail. Stripe: `checkout.session.*` carry our orderId as
`client_reference_id` and `amount_total` in cents; `charge.refunded` finds the order through
the charge's `metadata.orderId` (set on the PaymentIntent when the checkout is created).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from billing_core.kernel.errors import InvalidInput
from billing_core.payments.model import CENT_MICRO, RANKS, PaymentEvent, usd_to_micro

STRIPE_TYPES = {
    "checkout.session.completed", "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed", "checkout.session.expired", "charge.refunded",
}


def _text(value: Any, field: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise InvalidInput(f"{field} is missing or not a string", code="INVALID_EVENT")
    text = str(value)
    if len(text) > 256:
        raise InvalidInput(f"{field} is too long", code="INVALID_EVENT")
    return text


def _object(raw: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (ValueError, RecursionError):
        raise InvalidInput("event body is not JSON", code="INVALID_EVENT") from None
    if not isinstance(parsed, dict):
        raise InvalidInput("event body must be a JSON object", code="INVALID_EVENT")
    return parsed


def parse_nowpayments(raw: bytes) -> PaymentEvent:
    ipn = _object(raw)
    status = _text(ipn.get("payment_status"), "payment_status")
    assert status is not None
    if status not in RANKS or status in ("pending", "processing", "completed", "partially_refunded"):
        raise InvalidInput(f"unknown payment_status {status!r}", code="INVALID_EVENT")
    payment_id = _text(ipn.get("payment_id"), "payment_id")
    order_id = _text(ipn.get("order_id"), "order_id")
    assert payment_id is not None and order_id is not None
    paid = None
    if str(ipn.get("price_currency", "")).lower() == "usd" and ipn.get("price_amount") is not None:
        paid = usd_to_micro(ipn["price_amount"], field="price_amount")
    actually = ipn.get("actually_paid", ipn.get("pay_amount"))
    return PaymentEvent(
        provider="nowpayments", event_id=f"{payment_id}:{status}", order_id=order_id, status=status,
        provider_status=status, provider_payment_id=payment_id, paid_micro=paid,
        provider_currency=_text(ipn.get("pay_currency"), "pay_currency", required=False),
        provider_amount=None if actually is None else str(actually),
    )


def parse_stripe(raw: bytes) -> PaymentEvent | None:
    """None for event types this system does not act on (acknowledged and ignored)."""
    event = _object(raw)
    event_type = event.get("type")
    if event_type not in STRIPE_TYPES:
        return None
    event_id = _text(event.get("id"), "id")
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        raise InvalidInput("data.object is missing", code="INVALID_EVENT")
    assert event_id is not None
    currency = str(obj.get("currency") or "").lower() or None
    if event_type == "charge.refunded":
        order_id = (obj.get("metadata") or {}).get("orderId") or ""
        refunded = obj.get("amount_refunded")
        if isinstance(refunded, bool) or not isinstance(refunded, int) or refunded < 0 or currency != "usd":
            raise InvalidInput("amount_refunded must be whole USD cents", code="INVALID_EVENT")
        amount = obj.get("amount")
        status = "refunded" if isinstance(amount, int) and refunded >= amount else "partially_refunded"
        return PaymentEvent(
            provider="stripe", event_id=event_id, order_id=str(order_id)[:256], status=status,
            provider_status=event_type, provider_payment_id=_text(obj.get("payment_intent"), "payment_intent",
                                                                  required=False),
            refunded_total_micro=refunded * CENT_MICRO, provider_currency=currency, provider_amount=str(refunded),
        )
    if not obj.get("client_reference_id"):
        return None  # a session this system did not create (e.g. another product on the account)
    order_id = _text(obj.get("client_reference_id"), "client_reference_id")
    assert order_id is not None
    if event_type == "checkout.session.expired":
        status = "expired"
    elif event_type == "checkout.session.async_payment_failed":
        status = "failed"
    elif event_type == "checkout.session.completed" and obj.get("payment_status") != "paid":
        status = "processing"  # an asynchronous method: async_payment_succeeded will follow
    else:
        status = "completed"
    total = obj.get("amount_total")
    paid = None
    if status == "completed":
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise InvalidInput("amount_total must be whole cents", code="INVALID_EVENT")
        paid = total * CENT_MICRO if currency == "usd" else None
    return PaymentEvent(
        provider="stripe", event_id=event_id, order_id=order_id, status=status, provider_status=event_type,
        provider_payment_id=_text(obj.get("payment_intent") or obj.get("id"), "payment_intent", required=False),
        paid_micro=paid, provider_currency=currency, provider_amount=None if total is None else str(total),
    )
