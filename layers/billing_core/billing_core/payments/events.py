"""The payment state machine: provider events move a top-up forward through ranked states.

An event whose rank is not above the record's is out of order or repeated and changes nothing
but its own audit item. Credit is minted exactly once, on the final paid state, in the
transaction that also moves the record to it (condition: rank below and never credited),
records the provider's event id (condition: not seen), adds to lifetime paid and writes the
deposit's idempotency record keyed by the provider payment id. A provider refund debits the
account through the adjustment mechanics, in the transaction that raises the record's refunded
total, so the same refund is never debited twice.

Any number of deliveries, in any order, apply once. An attempt that lost a race (another
delivery, a refund, an operator) reads the record again: at most retry.ATTEMPTS attempts.
"""

from __future__ import annotations

import uuid
from typing import Any

from billing_core.kernel import clock, observability, retry
from billing_core.kernel.context import Context
from billing_core.kernel.errors import NotFound
from billing_core.ledger import adjustments, lots
from billing_core.payments.model import FAILED_STATES, PAID_STATES, RANKS, REFUND_STATES, Outcome, Payment, PaymentEvent
from billing_core.payments.refunds import refunded_status
from billing_core.store import accounts, dynamo, transaction
from billing_core.store import payments as store
from billing_core.work.items import NeedsReview, operation


class UnknownOrder(NotFound):
    """A signed event for an order this system does not know (yet): retried, then reviewed."""

    code = "UNKNOWN_ORDER"


@operation("payment_event")
def _retry_payment_event(payload: dict[str, Any]) -> dict[str, Any]:
    outcome = apply_event(PaymentEvent(**payload))
    return {k: v for k, v in outcome.__dict__.items() if v is not None}


def _audit_only(event: PaymentEvent, outcome: str, ctx: Context) -> Outcome:
    try:
        transaction.commit([store.record_event(event, outcome, clock.iso(clock.now()))], ctx)
    except dynamo.TransactionCancelled:
        return Outcome("duplicate", event.order_id)
    return Outcome(outcome, event.order_id)


def apply_event(event: PaymentEvent) -> Outcome:
    """Apply one verified provider event. Idempotent: any number of deliveries, any order."""
    if not event.order_id:
        raise NeedsReview(f"{event.provider} event {event.event_id} names no orderId")
    ctx = Context.webhook(event.provider)

    def attempt() -> Outcome:
        if store.event_seen(event):
            return Outcome("duplicate", event.order_id)
        payment = store.get(event.order_id)
        if payment is None:
            raise UnknownOrder(f"no top-up with orderId {event.order_id}", details={"orderId": event.order_id})
        if payment.provider != event.provider:
            raise NeedsReview(f"order {event.order_id} is a {payment.provider} top-up, event is from {event.provider}")
        if event.status in REFUND_STATES:
            return _refund(ctx, event, payment)
        if RANKS[event.status] <= payment.status_rank:
            return _audit_only(event, "ignored_out_of_order", ctx)
        if event.status in PAID_STATES:
            return _credit(ctx, event, payment)
        return _advance(ctx, event)

    return retry.bounded(attempt, what=f"top-up {event.order_id}")


def _advance(ctx: Context, event: PaymentEvent) -> Outcome:
    now_iso = clock.iso(clock.now())
    try:
        transaction.commit([store.advance(event, RANKS[event.status], now_iso),
                            store.record_event(event, "applied", now_iso)], ctx)
    except dynamo.TransactionCancelled as cancelled:
        if "event" in cancelled.failed:
            return Outcome("duplicate", event.order_id)
        if "payment" in cancelled.failed:  # a later state landed first
            return _audit_only(event, "ignored_out_of_order", ctx)
        raise
    failed = event.status in FAILED_STATES
    if failed:
        observability.count("PaymentsFailed")  # payment failure rate = failed / (credited + failed)
    return Outcome("applied", event.order_id, status=event.status, failed=failed)


def _credit(ctx: Context, event: PaymentEvent, payment: Payment) -> Outcome:
    amount = payment.amount_micro
    if event.paid_micro != amount:
        raise NeedsReview(f"order {event.order_id} was for {amount} micro but the provider reports "
                          f"{event.paid_micro} paid", details={"orderId": event.order_id})
    now_iso = clock.iso(clock.now())
    lot_id = f"lot_{uuid.uuid4().hex}"
    extra = [store.credit(event, RANKS[event.status], amount, lot_id, now_iso),
             store.record_event(event, "credited", now_iso), accounts.add_paid(payment.account_id, amount)]
    try:
        lot = lots.mint(
            ctx, account_id=payment.account_id, pool_id=payment.pool_id, amount=amount, source_type="deposit",
            description=f"{event.provider} top-up {event.order_id}", expires_at=None,
            idempotency_key=f"{event.provider}:{event.provider_payment_id or event.order_id}",
            idempotency_scope="deposit",
            entry_metadata={"orderId": event.order_id, "provider": event.provider,
                            "providerPaymentId": event.provider_payment_id},
            extra_actions=extra, lot_id=lot_id)
    except dynamo.TransactionCancelled as cancelled:
        if "event" in cancelled.failed:
            return Outcome("duplicate", event.order_id)
        if "payment" in cancelled.failed:  # credited (or moved past paid) by another delivery
            return _audit_only(event, "ignored_already_settled", ctx)
        raise
    observability.count("PaymentsCredited")
    return Outcome("credited", event.order_id, lot_id=lot.lot_id, credited_micro=amount)


def _refund(ctx: Context, event: PaymentEvent, payment: Payment) -> Outcome:
    credited, already = payment.credited_micro, payment.refunded_micro
    target = credited if event.refunded_total_micro is None else min(event.refunded_total_micro, credited)
    now_iso = clock.iso(clock.now())
    if not credited or target <= already:
        # Never credited (refunded before it was paid: it must never be credited later), or this
        # refund was already debited (e.g. by an operator before the provider's event arrived).
        actions = [store.record_event(event, "refund_recorded", now_iso)]
        if not credited:
            actions.insert(0, store.refunded_before_credit(
                event.order_id, event.status, max(RANKS[event.status], payment.status_rank), already, now_iso))
        try:
            transaction.commit(actions, ctx)
        except dynamo.TransactionCancelled as cancelled:
            if "event" in cancelled.failed:
                return Outcome("duplicate", event.order_id)
            if "payment" in cancelled.failed:
                raise retry.Again("credited meanwhile: this refund now debits it") from cancelled
            raise
        return Outcome("refund_recorded", event.order_id)
    delta = target - already
    status = refunded_status(target, credited)
    extra = [store.refund(event.order_id, seen_refunded=already, delta=delta, status=status, rank=RANKS[status]),
             store.record_event(event, "refunded", now_iso), accounts.add_refunded(payment.account_id, delta)]
    try:
        result = adjustments.change_balance(
            ctx, account_id=payment.account_id, pool_id=payment.pool_id, target=None, delta=-delta,
            entry_type="refund", reason=f"{event.provider} refund of {event.order_id}", idempotency_key=None,
            request={"orderId": event.order_id, "eventId": event.event_id}, extra_actions=extra,
            order_id=event.order_id)
    except dynamo.TransactionCancelled as cancelled:
        if "event" in cancelled.failed:
            return Outcome("duplicate", event.order_id)
        if "payment" in cancelled.failed:
            raise retry.Again("the refunded total moved: decide again from the record") from cancelled
        raise
    return Outcome("refunded", event.order_id, refunded_micro=delta, new_balance_micro=result.new_balance_micro)
