"""Money in, as values: the payment state machine's ranks, a provider event (normalized), a
top-up and what applying an event did."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from billing_core.kernel.errors import InvalidInput

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


@dataclass(frozen=True)
class Payment:
    """A top-up (`PAY#<orderId>`), as stored."""

    order_id: str
    account_id: str
    pool_id: str
    provider: str
    amount_micro: int
    status: str
    status_rank: int
    credited_micro: int
    refunded_micro: int
    created_at: str
    updated_at: str
    payment_url: str | None = None
    provider_invoice_id: str | None = None
    provider_payment_id: str | None = None
    provider_currency: str | None = None
    provider_amount: str | None = None
    lot_id: str | None = None
    credited: bool = False  # creditedAt is set: credit was minted (never twice)


@dataclass(frozen=True)
class Topup:
    """A top-up as its owner sees it."""

    order_id: str
    account_id: str
    pool_id: str
    provider: str
    status: str
    amount_micro: int
    payment_url: str | None
    provider_invoice_created: bool
    provider_payment_id: str | None
    provider_currency: str | None
    provider_amount: str | None
    credited_micro: int
    refunded_micro: int
    lot_id: str | None
    created_at: str
    updated_at: str
    currency: str = "usd"
    message: str | None = None  # why no provider URL was created (no keys configured)

    @staticmethod
    def of(payment: Payment, message: str | None = None) -> Topup:
        return Topup(order_id=payment.order_id, account_id=payment.account_id, pool_id=payment.pool_id,
                     provider=payment.provider, status=payment.status, amount_micro=payment.amount_micro,
                     payment_url=payment.payment_url, provider_invoice_created=bool(payment.provider_invoice_id),
                     provider_payment_id=payment.provider_payment_id, provider_currency=payment.provider_currency,
                     provider_amount=payment.provider_amount, credited_micro=payment.credited_micro,
                     refunded_micro=payment.refunded_micro, lot_id=payment.lot_id, created_at=payment.created_at,
                     updated_at=payment.updated_at, message=message)


@dataclass(frozen=True)
class Outcome:
    """What applying one provider event did (a webhook's answer, a work item's result)."""

    outcome: str  # applied | credited | refunded | refund_recorded | duplicate | ignored_* | queued
    order_id: str | None = None
    status: str | None = None
    failed: bool | None = None
    lot_id: str | None = None
    credited_micro: int | None = None
    refunded_micro: int | None = None
    new_balance_micro: int | None = None
    item_id: str | None = None  # queued: the work item that will retry it


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
