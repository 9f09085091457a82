"""Top-ups: a payment record (`PAY#<orderId>`) created before the provider is asked for an
invoice, in USD, whole cents, at least 1 USD. Credit arrives later, with the provider's signed
event (payments.events)."""

from __future__ import annotations

import uuid

from billing_core.kernel import clock, ids, observability
from billing_core.kernel.context import Context
from billing_core.kernel.errors import InvalidInput, NotFound
from billing_core.ledger.model import DEFAULT_POOL
from billing_core.payments import providers
from billing_core.payments.model import CENT_MICRO, MIN_TOPUP_MICRO, PROVIDERS, RANKS, Payment, Topup
from billing_core.store import payments as store


def create(ctx: Context, *, account_id: str, amount: int, provider: str) -> Topup:
    """One PutItem; with the provider's key configured, its invoice or Checkout session, then one
    UpdateItem with its URL (or the failure: 502, and the payment is marked failed)."""
    if ids.is_system_account(account_id):
        raise InvalidInput("system accounts cannot top up", code="SYSTEM_ACCOUNT")
    if provider not in PROVIDERS:
        raise InvalidInput(f"provider must be one of {', '.join(PROVIDERS)}", code="INVALID_PROVIDER")
    if amount < MIN_TOPUP_MICRO or amount % CENT_MICRO:
        raise InvalidInput("a top-up is a whole number of cents, at least 1 USD (1000000 micro)",
                           code="INVALID_TOPUP_AMOUNT", details={"minimumMicro": str(MIN_TOPUP_MICRO)})
    order_id = f"ord_{uuid.uuid4().hex}"
    now_iso = clock.iso(clock.now())
    payment = store.create(Payment(order_id=order_id, account_id=account_id, pool_id=DEFAULT_POOL, provider=provider,
                                   amount_micro=amount, status="pending", status_rank=0, credited_micro=0,
                                   refunded_micro=0, created_at=now_iso, updated_at=now_iso), created_by=ctx.actor)
    if not providers.configured(provider):
        return Topup.of(payment, f"{provider} keys are not configured here: the payment is recorded as pending "
                                 "and no provider invoice or payment URL was created")
    try:
        invoice = providers.create_invoice(provider, order_id=order_id, amount_micro=amount)
    except providers.ProviderError as exc:
        store.mark_failed(order_id, RANKS["failed"], str(exc))
        observability.count("PaymentsFailed")
        raise exc.as_http() from None
    return Topup.of(store.record_invoice(order_id, invoice.invoice_id, invoice.url))


def get(order_id: str, account_id: str) -> Topup:
    """One GetItem. Another account's order is not revealed (404, like an unknown one)."""
    payment = store.get(order_id)
    if payment is None or payment.account_id != account_id:
        raise NotFound("no such top-up", code="TOPUP_NOT_FOUND")
    return Topup.of(payment)
