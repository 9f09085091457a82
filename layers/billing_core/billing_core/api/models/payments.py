"""The wire shapes of money in: top-ups and operator refunds."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from billing_core.api.models.common import (
    IdempotencyKey,
    Identifier,
    Micro,
    PoolId,
    PositiveMicro,
    Reason,
    RequestModel,
    ResponseModel,
    TopupMicro,
)


class TopupRequest(RequestModel):
    amountMicro: TopupMicro
    provider: Literal["nowpayments", "stripe"]


class RefundRequest(RequestModel):
    amountMicro: PositiveMicro
    reason: Reason
    # Default: the top-up's pool with an orderId, else general.
    poolId: PoolId | None = None
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


# -- provider payloads (documentation: the webhook routes verify the signature on the raw bytes,
# then payments.parsing reads them; these describe what that reading accepts) ------------------

ProviderText = Annotated[Annotated[str, Field(min_length=1, max_length=256)] | int,
                         Field(description="A non-empty string (or an integer), at most 256 characters")]


class NowPaymentsIpn(BaseModel):
    """A NOWPayments IPN. `order_id` is the top-up's orderId; USD `price_amount` is credited once,
    on `finished`. Other fields are kept for the audit trail or ignored."""

    model_config = ConfigDict(extra="allow", title="NowPaymentsIpn")

    payment_id: ProviderText
    payment_status: Literal["waiting", "confirming", "confirmed", "sending", "partially_paid", "finished",
                            "failed", "expired", "refunded"]
    order_id: ProviderText
    price_amount: Annotated[float | str | None, Field(description="USD, exact to the micro-unit")] = None
    price_currency: str | None = None
    pay_currency: str | None = None
    actually_paid: Annotated[float | str | None, Field(description="Kept as text for the audit trail")] = None


class StripeEvent(BaseModel):
    """A Stripe event. Acted on: checkout.session.completed / async_payment_succeeded /
    async_payment_failed / expired (data.object.client_reference_id = orderId, amount_total in
    cents) and charge.refunded (data.object.metadata.orderId, amount_refunded in cents). Any other
    type is acknowledged and ignored."""

    model_config = ConfigDict(extra="allow", title="StripeEvent")

    id: str
    type: str
    data: dict[str, Any] = Field(description="data.object is the session or the charge")


def raw_json_body(model: type[BaseModel], signature_header: str) -> dict[str, Any]:
    """The request body of a signed webhook route (read raw by the route, so Powertools does not
    document it): the provider's JSON, signed over its exact bytes."""
    return {"requestBody": {
        "required": True,
        "description": f"The provider's JSON exactly as sent: `{signature_header}` signs these bytes.",
        "content": {"application/json": {"schema": model.model_json_schema(mode="validation")}},
    }}
