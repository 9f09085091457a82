"""Top-ups and the payment state machine: money in from NOWPayments and Stripe.

A top-up is a payment record (`PAY#<orderId>`) created before the provider is asked for an
invoice. Provider events move it forward through ranked states; an event whose rank is not
above the record's is out of order or repeated and changes nothing but its own audit item.
Credit is minted exactly once, on the final paid state, in the transaction that also moves the
record to it (condition: rank below and never credited), records the provider's event id
(condition: not seen) and the deposit's idempotency record keyed by the provider payment id.
Refunds (provider-side, or by an operator) debit the account through adjustments, in the
transaction that raises the record's refunded total, so the same refund is never debited twice.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from billing_core.kernel import clock, money, observability, settings
from billing_core.kernel.errors import BillingError, Conflict, InvalidInput, NotFound
from billing_core.ledger import adjustments, lots
from billing_core.payments import providers as payment_providers
from billing_core.store import dynamo, keys
from billing_core.store.ratelimit import RateCharge
from billing_core.work.items import NeedsReview, operation

PROVIDERS = ("nowpayments", "stripe")
MIN_TOPUP_MICRO = 1_000_000  # 1 USD
CENT_MICRO = 10_000

# Rank of each state: an event applies only if it moves the record to a higher rank.
RANKS = {
    "pending": 0,
    # NOWPayments payment_status values
    "waiting": 10, "confirming": 20, "confirmed": 30, "sending": 40, "partially_paid": 50,
    "failed": 90, "expired": 90, "finished": 100, "refunded": 110,
    # Stripe checkout/charge events, normalized
    "processing": 30, "completed": 100, "partially_refunded": 105,
}
PAID_STATES = ("finished", "completed")
FAILED_STATES = ("failed", "expired")
REFUND_STATES = ("refunded", "partially_refunded")


class UnknownOrder(BillingError):
    """A signed event for an order this system does not know (yet): retried, then reviewed."""

    status = 404
    code = "UNKNOWN_ORDER"


@dataclass(frozen=True)
class PaymentEvent:
    """One provider event, normalized. Amounts are micro-units (USD), exact."""

    provider: str
    event_id: str
    order_id: str
    status: str
    provider_status: str
    provider_payment_id: str | None = None
    paid_micro: int | None = None  # the USD amount the provider says was paid (final state)
    refunded_total_micro: int | None = None  # cumulative refunded, for refund events
    provider_currency: str | None = None
    provider_amount: str | None = None  # in the provider's currency, as the provider wrote it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def usd_to_micro(value: Any, *, field: str) -> int:
    """An exact USD amount (JSON number text or string) -> micro-units; refuses sub-micro precision."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{field} is not a decimal amount", code="INVALID_EVENT") from None
    micro = amount * 1_000_000
    if not amount.is_finite() or micro != micro.to_integral_value() or micro < 0:
        raise InvalidInput(f"{field} is not a whole number of micro-units", code="INVALID_EVENT")
    return int(micro)


# -- top-ups ----------------------------------------------------------------------------------


def payment_to_wire(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "orderId": item["orderId"], "accountId": item["accountId"], "poolId": item["poolId"],
        "provider": item["provider"], "status": item["status"], "amountMicro": money.fmt(item["amountMicro"]),
        "currency": "usd", "paymentUrl": item.get("paymentUrl"),
        "providerInvoiceCreated": bool(item.get("providerInvoiceId")),
        "providerPaymentId": item.get("providerPaymentId"),
        "providerCurrency": item.get("providerCurrency"), "providerAmount": item.get("providerAmount"),
        "creditedMicro": money.fmt(item.get("creditedMicro", 0)),
        "refundedMicro": money.fmt(item.get("refundedMicro", 0)),
        "lotId": item.get("lotId"), "createdAt": item["createdAt"], "updatedAt": item["updatedAt"],
    }


def create_topup(*, account_id: str, amount: int, provider: str, actor: str) -> dict[str, Any]:
    if keys.is_system_account(account_id):
        raise InvalidInput("system accounts cannot top up", code="SYSTEM_ACCOUNT")
    if provider not in PROVIDERS:
        raise InvalidInput(f"provider must be one of {', '.join(PROVIDERS)}", code="INVALID_PROVIDER")
    if amount < MIN_TOPUP_MICRO or amount % CENT_MICRO:
        raise InvalidInput("a top-up is a whole number of cents, at least 1 USD (1000000 micro)",
                           code="INVALID_TOPUP_AMOUNT", details={"minimumMicro": money.fmt(MIN_TOPUP_MICRO)})
    order_id = f"ord_{uuid.uuid4().hex}"
    now_iso = clock.iso(clock.now())
    item = {
        **keys.payment_key(order_id), "orderId": order_id, "accountId": account_id, "poolId": "general",
        "provider": provider, "amountMicro": amount, "status": "pending", "statusRank": 0,
        "creditedMicro": 0, "refundedMicro": 0, "createdAt": now_iso, "updatedAt": now_iso, "createdBy": actor,
    }
    dynamo.put_item(settings.billing_table(), item, condition="attribute_not_exists(pk)")
    if not payment_providers.configured(provider):
        return {**payment_to_wire(item), "message": f"{provider} keys are not configured here: the payment is "
                "recorded as pending and no provider invoice or payment URL was created"}
    try:
        invoice = payment_providers.create_invoice(provider, order_id=order_id, amount_micro=amount)
    except payment_providers.ProviderError as exc:
        _update_payment(order_id, {"status": "failed", "statusRank": RANKS["failed"], "failureReason": str(exc)})
        observability.count("PaymentsFailed")
        raise exc.as_http() from None
    updated = _update_payment(order_id, {"providerInvoiceId": invoice.invoice_id, "paymentUrl": invoice.url})
    return payment_to_wire(updated)


def _update_payment(order_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    fields = {**fields, "updatedAt": clock.iso(clock.now())}
    names = {f"#f{i}": k for i, k in enumerate(fields)}
    values = {f":v{i}": v for i, v in enumerate(fields.values())}
    new = dynamo.update_item(settings.billing_table(), keys.payment_key(order_id),
                             "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
                             condition="attribute_exists(pk)", names=names, values=values, return_new=True)
    assert new is not None
    return new


def get_topup(order_id: str, account_id: str | None) -> dict[str, Any]:
    item = dynamo.get(settings.billing_table(), keys.payment_key(order_id))
    if item is None or (account_id is not None and item["accountId"] != account_id):
        raise NotFound("no such top-up", code="TOPUP_NOT_FOUND")  # another account's order is not revealed
    return payment_to_wire(item)


# -- provider events --------------------------------------------------------------------------


def _event_action(event: PaymentEvent, outcome: str, now_iso: str) -> dynamo.Action:
    return dynamo.put(settings.billing_table(), {
        **keys.provider_event_key(event.provider, event.event_id), "provider": event.provider,
        "eventId": event.event_id, "orderId": event.order_id, "status": event.status,
        "providerStatus": event.provider_status, "outcome": outcome, "receivedAt": now_iso,
    }, tag="event", condition="attribute_not_exists(pk)")


def _seen(event: PaymentEvent) -> bool:
    return dynamo.get(settings.billing_table(), keys.provider_event_key(event.provider, event.event_id)) is not None


def _audit_only(event: PaymentEvent, outcome: str) -> dict[str, Any]:
    try:
        dynamo.transact([_event_action(event, outcome, clock.iso(clock.now()))])
    except dynamo.TransactionCancelled:
        return {"outcome": "duplicate", "orderId": event.order_id}
    return {"outcome": outcome, "orderId": event.order_id}


@operation("payment_event")
def _retry_payment_event(payload: dict[str, Any]) -> dict[str, Any]:
    return apply_event(PaymentEvent(**payload))


def apply_event(event: PaymentEvent) -> dict[str, Any]:
    """Apply one verified provider event. Idempotent: any number of deliveries, any order."""
    if not event.order_id:
        raise NeedsReview(f"{event.provider} event {event.event_id} names no orderId")
    if _seen(event):
        return {"outcome": "duplicate", "orderId": event.order_id}
    payment = dynamo.get(settings.billing_table(), keys.payment_key(event.order_id))
    if payment is None:
        raise UnknownOrder(f"no top-up with orderId {event.order_id}", details={"orderId": event.order_id})
    if payment["provider"] != event.provider:
        raise NeedsReview(f"order {event.order_id} is a {payment['provider']} top-up, event is from "
                          f"{event.provider}")
    rank = RANKS[event.status]
    if event.status in REFUND_STATES:
        return _apply_refund(event, payment)
    if rank <= payment["statusRank"]:
        return _audit_only(event, "ignored_out_of_order")
    if event.status in PAID_STATES:
        return _credit(event, payment)
    now_iso = clock.iso(clock.now())
    actions = [
        dynamo.update(settings.billing_table(), keys.payment_key(event.order_id),
                      "SET #s = :s, statusRank = :r, providerStatus = :ps, updatedAt = :now, "
                      "providerPaymentId = if_not_exists(providerPaymentId, :pid)",
                      condition="statusRank < :r", names={"#s": "status"},
                      values={":s": event.status, ":r": rank, ":ps": event.provider_status, ":now": now_iso,
                              ":pid": event.provider_payment_id}, tag="payment"),
        _event_action(event, "applied", now_iso),
    ]
    try:
        dynamo.transact(actions)
    except dynamo.TransactionCancelled as cancelled:
        if "event" in cancelled.failed:
            return {"outcome": "duplicate", "orderId": event.order_id}
        if "payment" in cancelled.failed:  # a later state landed first
            return _audit_only(event, "ignored_out_of_order")
        raise
    if event.status in FAILED_STATES:
        observability.count("PaymentsFailed")  # payment failure rate = failed / (credited + failed)
    return {"outcome": "applied", "orderId": event.order_id, "status": event.status,
            "failed": event.status in FAILED_STATES}


def _credit(event: PaymentEvent, payment: dict[str, Any]) -> dict[str, Any]:
    amount = payment["amountMicro"]
    if event.paid_micro != amount:
        raise NeedsReview(f"order {event.order_id} was for {amount} micro but the provider reports "
                          f"{event.paid_micro} paid", details={"orderId": event.order_id})
    now_iso = clock.iso(clock.now())
    rank = RANKS[event.status]
    lot_id = f"lot_{uuid.uuid4().hex}"
    extra = [
        dynamo.update(settings.billing_table(), keys.payment_key(event.order_id),
                      "SET #s = :s, statusRank = :r, providerStatus = :ps, updatedAt = :now, creditedAt = :now, "
                      "creditedMicro = :a, lotId = :lot, providerPaymentId = :pid, providerCurrency = :pc, "
                      "providerAmount = :pa",
                      condition="statusRank < :r AND attribute_not_exists(creditedAt)", names={"#s": "status"},
                      values={":s": event.status, ":r": rank, ":ps": event.provider_status, ":now": now_iso,
                              ":a": amount, ":lot": lot_id, ":pid": event.provider_payment_id,
                              ":pc": event.provider_currency, ":pa": event.provider_amount}, tag="payment"),
        _event_action(event, "credited", now_iso),
        dynamo.update(settings.billing_table(), keys.account_totals_key(payment["accountId"]),
                      "ADD lifetimePaid :a", values={":a": amount}, tag="totals"),
    ]
    try:
        lot = lots.mint(
            account_id=payment["accountId"], pool_id=payment["poolId"], amount=amount, source_type="deposit",
            description=f"{event.provider} top-up {event.order_id}", expires_at=None,
            idempotency_key=f"{event.provider}:{event.provider_payment_id or event.order_id}",
            idempotency_scope="deposit", actor=f"webhook:{event.provider}", rate=None,
            entry_metadata={"orderId": event.order_id, "provider": event.provider,
                            "providerPaymentId": event.provider_payment_id},
            extra_actions=extra, lot_id=lot_id,
        )
    except dynamo.TransactionCancelled as cancelled:
        if "event" in cancelled.failed:
            return {"outcome": "duplicate", "orderId": event.order_id}
        if "payment" in cancelled.failed:  # credited (or moved past paid) by another delivery
            return _audit_only(event, "ignored_already_settled")
        raise
    observability.count("PaymentsCredited")
    return {"outcome": "credited", "orderId": event.order_id, "lotId": lot["lotId"],
            "creditedMicro": money.fmt(amount)}


def _apply_refund(event: PaymentEvent, payment: dict[str, Any]) -> dict[str, Any]:
    credited = payment.get("creditedMicro", 0)
    already = payment.get("refundedMicro", 0)
    target = credited if event.refunded_total_micro is None else min(event.refunded_total_micro, credited)
    now_iso = clock.iso(clock.now())
    if not credited or target <= already:
        # Never credited (refunded before it was paid: it must never be credited later), or this
        # refund was already debited (e.g. by an operator before the provider's event arrived).
        status = event.status if not credited else payment["status"]
        actions = [dynamo.update(
            settings.billing_table(), keys.payment_key(event.order_id),
            "SET #s = :s, statusRank = :r, updatedAt = :now",
            # still never credited: a credit landing meanwhile must be debited, so decide again
            condition="statusRank <= :r AND refundedMicro = :already AND attribute_not_exists(creditedAt)",
            names={"#s": "status"},
            values={":s": status, ":r": max(RANKS[event.status], payment["statusRank"]), ":now": now_iso,
                    ":already": already}, tag="payment")] if not credited else []
        actions.append(_event_action(event, "refund_recorded", now_iso))
        try:
            dynamo.transact(actions)
        except dynamo.TransactionCancelled as cancelled:
            if "event" in cancelled.failed:
                return {"outcome": "duplicate", "orderId": event.order_id}
            if "payment" in cancelled.failed:
                return apply_event(event)  # credited meanwhile: this refund now debits it
            raise
        return {"outcome": "refund_recorded", "orderId": event.order_id}
    delta = target - already
    status = "refunded" if target == credited else "partially_refunded"
    extra = [
        _refund_payment_action(event.order_id, already, delta, status),
        _event_action(event, "refunded", now_iso),
        dynamo.update(settings.billing_table(), keys.account_totals_key(payment["accountId"]),
                      "ADD lifetimeRefunded :d", values={":d": delta}, tag="totals"),
    ]
    try:
        result = adjustments.change_balance(
            account_id=payment["accountId"], pool_id=payment["poolId"], target=None, delta=-delta,
            entry_type="refund", reason=f"{event.provider} refund of {event.order_id}",
            actor=f"webhook:{event.provider}", rate=None, idempotency_key=None,
            request={"orderId": event.order_id, "eventId": event.event_id}, extra_actions=extra,
            response_extra={"orderId": event.order_id},
        )
    except dynamo.TransactionCancelled as cancelled:
        if "event" in cancelled.failed:
            return {"outcome": "duplicate", "orderId": event.order_id}
        if "payment" in cancelled.failed:  # the refunded total moved: decide again from the record
            return apply_event(event)
        raise
    return {"outcome": "refunded", "orderId": event.order_id, "refundedMicro": money.fmt(delta),
            "newBalanceMicro": result["newBalanceMicro"]}


def _refund_payment_action(order_id: str, already: int, delta: int, status: str) -> dynamo.Action:
    return dynamo.update(
        settings.billing_table(), keys.payment_key(order_id),
        "SET refundedMicro = :new, #s = :s, statusRank = :r, updatedAt = :now",
        condition="refundedMicro = :already AND creditedMicro >= :new", names={"#s": "status"},
        values={":new": already + delta, ":already": already, ":s": status, ":r": RANKS[status],
                ":now": clock.iso(clock.now())}, tag="payment")


def refund(*, account_id: str, pool_id: str, amount: int, reason: str, order_id: str | None, actor: str,
           rate: RateCharge | None, idempotency_key: str | None) -> dict[str, Any]:
    """An operator's refund: an audited debit (negative balance allowed). With an orderId it also
    counts against that top-up, so the provider's own refund event later debits nothing twice."""
    extra: list[dynamo.Action] = [dynamo.update(
        settings.billing_table(), keys.account_totals_key(account_id), "ADD lifetimeRefunded :d",
        values={":d": amount}, tag="totals")]
    if order_id is not None:
        payment = dynamo.get(settings.billing_table(), keys.payment_key(order_id))
        if payment is None or payment["accountId"] != account_id:
            raise NotFound("no such top-up for this account", code="TOPUP_NOT_FOUND")
        refundable = payment.get("creditedMicro", 0) - payment.get("refundedMicro", 0)
        if amount > refundable:
            raise Conflict("refund exceeds what this top-up credited and has not been refunded",
                           code="REFUND_EXCEEDS_PAYMENT", details={"refundableMicro": money.fmt(refundable)})
        new_total = payment.get("refundedMicro", 0) + amount
        status = "refunded" if new_total == payment.get("creditedMicro", 0) else "partially_refunded"
        extra.append(_refund_payment_action(order_id, payment.get("refundedMicro", 0), amount, status))
    try:
        return adjustments.change_balance(
            account_id=account_id, pool_id=pool_id, target=None, delta=-amount, entry_type="refund", reason=reason,
            actor=actor, rate=rate, idempotency_key=idempotency_key,
            request={"amount": amount, "reason": reason, "orderId": order_id}, extra_actions=extra,
            response_extra={"refundedMicro": money.fmt(amount), "orderId": order_id},
        )
    except dynamo.TransactionCancelled as cancelled:
        if "payment" in cancelled.failed:
            raise Conflict("the top-up's refunded total changed meanwhile; retry the request",
                           code="REFUND_CONFLICT") from None
        raise
