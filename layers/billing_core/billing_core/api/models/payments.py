"""The wire shapes of money in: top-ups and operator refunds."""

from __future__ import annotations

from typing import Literal

from billing_core.api.models.common import (
    IdempotencyKey,
    Identifier,
    Micro,
    PoolId,
    PositiveMicro,
    Reason,
    RequestModel,
    ResponseModel,
)


class TopupRequest(RequestModel):
    amountMicro: PositiveMicro
    provider: Literal["nowpayments", "stripe"]


class RefundRequest(RequestModel):
    amountMicro: PositiveMicro
    reason: Reason
    poolId: PoolId = "general"
    orderId: Identifier | None = None
    idempotencyKey: IdempotencyKey | None = None


class TopupResponse(ResponseModel):
    omitted_when_unset = frozenset({"message"})

    order_id: str
    account_id: str
    pool_id: str
    provider: Literal["nowpayments", "stripe"]
    status: str
    amount_micro: Micro
    currency: Literal["usd"]
    payment_url: str | None
    provider_invoice_created: bool
    provider_payment_id: str | None
    provider_currency: str | None
    provider_amount: str | None
    credited_micro: Micro
    refunded_micro: Micro
    lot_id: str | None
    created_at: str
    updated_at: str
    message: str | None = None


class WebhookResponse(ResponseModel):
    """What applying the event did; fields beyond `received` and `outcome` appear when they apply."""

    omitted_when_unset = frozenset({"orderId", "status", "failed", "lotId", "creditedMicro", "refundedMicro",
                                    "newBalanceMicro", "itemId"})

    received: Literal[True] = True
    outcome: str
    order_id: str | None = None
    status: str | None = None
    failed: bool | None = None
    lot_id: str | None = None
    credited_micro: Micro | None = None
    refunded_micro: Micro | None = None
    new_balance_micro: Micro | None = None
    item_id: str | None = None
