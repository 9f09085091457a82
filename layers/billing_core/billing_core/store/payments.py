"""Payment items (BillingTable `PAY#<orderId>` / `PAY`) and provider event records
(`PAYEVT#<provider>#sha256(eventId)` / `PAYEVT`: one per event applied, so a redelivered event
finds it and changes nothing)."""

from __future__ import annotations

from typing import Any

from billing_core.kernel import clock, settings
from billing_core.payments.model import Payment, PaymentEvent
from billing_core.store import dynamo, keys


def _table() -> str:
    return settings.get().billing_table


def from_item(item: dict[str, Any]) -> Payment:
    return Payment(
        order_id=item["orderId"], account_id=item["accountId"], pool_id=item["poolId"], provider=item["provider"],
        amount_micro=item["amountMicro"], status=item["status"], status_rank=item["statusRank"],
        credited_micro=item.get("creditedMicro", 0), refunded_micro=item.get("refundedMicro", 0),
        created_at=item["createdAt"], updated_at=item["updatedAt"], payment_url=item.get("paymentUrl"),
        provider_invoice_id=item.get("providerInvoiceId"), provider_payment_id=item.get("providerPaymentId"),
        provider_currency=item.get("providerCurrency"), provider_amount=item.get("providerAmount"),
        lot_id=item.get("lotId"), credited="creditedAt" in item,
    )


def get(order_id: str) -> Payment | None:
    item = dynamo.get(_table(), keys.payment_key(order_id))
    return from_item(item) if item else None


def create(payment: Payment, *, created_by: str) -> Payment:
    item = {**keys.payment_key(payment.order_id), "orderId": payment.order_id, "accountId": payment.account_id,
            "poolId": payment.pool_id, "provider": payment.provider, "amountMicro": payment.amount_micro,
            "status": payment.status, "statusRank": payment.status_rank, "creditedMicro": 0, "refundedMicro": 0,
            "createdAt": payment.created_at, "updatedAt": payment.updated_at, "createdBy": created_by}
    dynamo.put_item(_table(), item, condition="attribute_not_exists(pk)")
    return payment


def record_invoice(order_id: str, invoice_id: str, url: str) -> Payment:
    """What the provider's invoice call gave: its id and where the customer pays."""
    return _set(order_id, {"providerInvoiceId": invoice_id, "paymentUrl": url})


def mark_failed(order_id: str, rank: int, reason: str) -> Payment:
    """The provider refused to create the invoice: the top-up ends failed."""
    return _set(order_id, {"status": "failed", "statusRank": rank, "failureReason": reason})


def _set(order_id: str, fields: dict[str, Any]) -> Payment:
    fields = {**fields, "updatedAt": clock.iso(clock.now())}
    names = {f"#f{i}": k for i, k in enumerate(fields)}
    values = {f":v{i}": v for i, v in enumerate(fields.values())}
    new = dynamo.update_item(_table(), keys.payment_key(order_id),
                             "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
                             condition="attribute_exists(pk)", names=names, values=values, return_new=True)
    assert new is not None
    return from_item(new)


def event_seen(event: PaymentEvent) -> bool:
    return dynamo.get(_table(), keys.provider_event_key(event.provider, event.event_id)) is not None


def record_event(event: PaymentEvent, outcome: str, at: str) -> dynamo.Action:
    return dynamo.put(_table(), {
        **keys.provider_event_key(event.provider, event.event_id), "provider": event.provider,
        "eventId": event.event_id, "orderId": event.order_id, "status": event.status,
        "providerStatus": event.provider_status, "outcome": outcome, "receivedAt": at,
    }, tag="event", condition="attribute_not_exists(pk)")


def advance(event: PaymentEvent, rank: int, at: str) -> dynamo.Action:
    """Move to a higher-ranked state (never back)."""
    return dynamo.update(
        _table(), keys.payment_key(event.order_id),
        "SET #s = :s, statusRank = :r, providerStatus = :ps, updatedAt = :now, "
        "providerPaymentId = if_not_exists(providerPaymentId, :pid)",
        condition="statusRank < :r", names={"#s": "status"},
        values={":s": event.status, ":r": rank, ":ps": event.provider_status, ":now": at,
                ":pid": event.provider_payment_id}, tag="payment")


def credit(event: PaymentEvent, rank: int, amount: int, lot_id: str, at: str) -> dynamo.Action:
    """The paid state, once: below it and never credited before."""
    return dynamo.update(
        _table(), keys.payment_key(event.order_id),
        "SET #s = :s, statusRank = :r, providerStatus = :ps, updatedAt = :now, creditedAt = :now, "
        "creditedMicro = :a, lotId = :lot, providerPaymentId = :pid, providerCurrency = :pc, providerAmount = :pa",
        condition="statusRank < :r AND attribute_not_exists(creditedAt)", names={"#s": "status"},
        values={":s": event.status, ":r": rank, ":ps": event.provider_status, ":now": at, ":a": amount,
                ":lot": lot_id, ":pid": event.provider_payment_id, ":pc": event.provider_currency,
                ":pa": event.provider_amount}, tag="payment")


def refunded_before_credit(order_id: str, status: str, rank: int, seen_refunded: int, at: str) -> dynamo.Action:
    """A refund of a payment never credited: it must never be credited later (still uncredited
    when this commits, or a credit landing meanwhile would be missed)."""
    return dynamo.update(
        _table(), keys.payment_key(order_id), "SET #s = :s, statusRank = :r, updatedAt = :now",
        condition="statusRank <= :r AND refundedMicro = :already AND attribute_not_exists(creditedAt)",
        names={"#s": "status"}, values={":s": status, ":r": rank, ":now": at, ":already": seen_refunded},
        tag="payment")


def refund(order_id: str, *, seen_refunded: int, delta: int, status: str, rank: int) -> dynamo.Action:
    """Raise the refunded total from what was read, never past what was credited."""
    return dynamo.update(
        _table(), keys.payment_key(order_id),
        "SET refundedMicro = :new, #s = :s, statusRank = :r, updatedAt = :now",
        condition="refundedMicro = :already AND creditedMicro >= :new", names={"#s": "status"},
        values={":new": seen_refunded + delta, ":already": seen_refunded, ":s": status, ":r": rank,
                ":now": clock.iso(clock.now())}, tag="payment")
