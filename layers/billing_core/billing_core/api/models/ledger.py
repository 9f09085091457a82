"""The ledger's wire shapes: reserve, finalize, release, mint, adjust, balance, history, config.

Requests are validated as they arrive (camelCase fields); responses are built from the core's
results (ledger.model) for the first answer and for every idempotent replay alike.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_serializer,
    model_validator,
)

from billing_core.api.models.common import (
    AccountId,
    IdempotencyKey,
    Identifier,
    Micro,
    MicroOrZero,
    NonZeroSignedMicro,
    PoolId,
    PositiveMicro,
    Reason,
    RequestModel,
    ResponseModel,
    SignedMicro,
    Timestamp,
)
from billing_core.kernel import ids, money
from billing_core.ledger.model import Mode, SourceType

# -- requests -----------------------------------------------------------------------------------


class ReserveRequest(RequestModel):
    accountId: AccountId
    poolId: PoolId = "general"
    estimatedCostMicro: PositiveMicro
    reservationId: Identifier | None = None
    ttlSeconds: StrictInt | None = Field(default=None, ge=1, le=86_400)


class FinalizeRequest(RequestModel):
    reservationId: Identifier
    actualCostMicro: MicroOrZero


class ReleaseRequest(RequestModel):
    reservationId: Identifier


class MintRequest(RequestModel):
    amountMicro: PositiveMicro
    poolId: PoolId = "general"
    sourceType: SourceType
    description: Reason
    expiresAt: Timestamp | None = None
    idempotencyKey: IdempotencyKey | None = None


class ModeRequest(RequestModel):
    mode: Mode


class AdjustRequest(RequestModel):
    """Exactly one of balanceMicro (set) and deltaMicro (move by); both signed."""

    # Exactly one: neither "both absent or null" nor "both given". Said with `not` rather than a
    # top-level oneOf, which client generators read as a union of partial bodies.
    model_config = ConfigDict(json_schema_extra={"not": {"anyOf": [
        {"properties": {"balanceMicro": {"type": "null"}, "deltaMicro": {"type": "null"}}},
        {"required": ["balanceMicro", "deltaMicro"],
         "properties": {"balanceMicro": {"not": {"type": "null"}}, "deltaMicro": {"not": {"type": "null"}}}},
    ]}})

    balanceMicro: SignedMicro | None = None
    deltaMicro: NonZeroSignedMicro | None = None
    reason: Reason
    poolId: PoolId = "general"
    idempotencyKey: IdempotencyKey | None = None

    @model_validator(mode="after")
    def _one_of(self) -> AdjustRequest:
        if (self.balanceMicro is None) == (self.deltaMicro is None):
            raise ValueError("give exactly one of balanceMicro and deltaMicro")
        return self


class RevenueSharesRequest(RequestModel):
    """Basis points of each finalized amount per system account (sum at most 10,000)."""

    shares: Annotated[dict[Annotated[StrictStr, Field(max_length=64)], Annotated[StrictInt, Field(ge=0, le=10_000)]],
                      Field(json_schema_extra={"propertyNames": {"enum": list(ids.SYSTEM_ACCOUNTS)}},
                            description="System account -> basis points; at most 10,000 in total "
                                        "(422 INVALID_REVENUE_SHARES).")]


# -- responses ----------------------------------------------------------------------------------


class ReserveResponse(ResponseModel):
    reservation_id: str
    reserved_micro: Micro
    expires_at: str
    billing_mode: Mode


class FinalizeResponse(ResponseModel):
    reservation_id: str
    finalized_micro: Micro
    released_micro: Micro
    overrun_micro: Micro
    billing_mode: Mode
    finalized_at: str


class ReleaseResponse(ResponseModel):
    reservation_id: str
    status: Literal["released"]
    released_micro: Micro
    billing_mode: Mode
    released_at: str


class LotResponse(ResponseModel):
    lot_id: str
    account_id: str
    pool_id: str
    original_micro: Micro
    available_micro: Micro
    reserved_micro: Micro
    consumed_micro: Micro
    source_type: str
    description: str
    expires_at: str | None
    created_at: str
    settled_debt_micro: Micro


class BalanceChangeResponse(ResponseModel):
    account_id: str
    pool_id: str
    previous_balance_micro: Micro
    new_balance_micro: Micro
    delta_micro: Micro
    reason: str
    entry_id: str
    entry_type: str
    lifetime_paid_micro: Micro
    created_at: str


class RefundResponse(BalanceChangeResponse):
    refunded_micro: Micro
    order_id: str | None


class PoolBalanceResponse(ResponseModel):
    pool_id: str
    available_micro: Micro
    reserved_micro: Micro
    consumed_micro: Micro
    expired_micro: Micro
    debt_micro: Micro


class BalanceResponse(ResponseModel):
    account_id: str
    pools: list[PoolBalanceResponse]
    total_available_micro: Micro


class OperatorBalanceResponse(BalanceResponse):
    lifetime_paid_micro: Micro
    lifetime_refunded_micro: Micro


class EntryResponse(ResponseModel):
    omitted_when_unset = frozenset({"reservationId", "lotId", "metadata"})

    entry_id: str
    account_id: str
    pool_id: str
    entry_type: str
    amount: Micro = Field(serialization_alias="amountMicro")
    actor: str
    description: str
    created_at: str
    reservation_id: str | None = None
    lot_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict,
                                     description="What the entry records; amounts as decimal strings")

    @field_serializer("metadata")
    def _amounts_as_strings(self, metadata: dict[str, Any]) -> dict[str, Any]:
        return {k: money.fmt(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in metadata.items()}


class Pagination(ResponseModel):
    limit: int
    next_cursor: str | None
    has_more: bool


class HistoryResponse(ResponseModel):
    entries: list[EntryResponse]
    pagination: Pagination


class ConfigResponse(ResponseModel):
    mode: Mode
    revenue_shares: dict[str, int]
    updated_at: str | None


class ModeChangeResponse(ResponseModel):
    mode: Mode
    previous_mode: Mode
    updated_at: str
    updated_by: str


class SharesChangeResponse(ResponseModel):
    revenue_shares: dict[str, int]
    previous_revenue_shares: dict[str, int]
    updated_at: str
    updated_by: str


class PricingResponse(ResponseModel):
    billing_mode: Mode
    pools: list[dict[str, Any]]
    rates: list[dict[str, Any]]
    tiers: list[dict[str, Any]]
    source: Literal["config", "defaults"]


# -- documented errors ----------------------------------------------------------------------------


class InsufficientCreditDetails(BaseModel):
    """402 INSUFFICIENT_CREDIT (live mode): what is missing and where to pay."""

    accountId: str
    poolId: str
    availableMicro: str = Field(description="What the pool can spend now (never below 0), micro-units.")
    requiredMicro: str = Field(description="What the reservation needs (the estimate), micro-units.")
    shortfallMicro: str = Field(description="requiredMicro - availableMicro: the least top-up that lets it through.")
    requestedMicro: str = Field(description="The same as requiredMicro (kept for existing callers).")
    topUpUrl: str = Field(description="Where the account's user can pay: BILLING_TOPUP_URL when configured, else the "
                                      "billing page's top-up on the API's own origin (<origin>/billing#topup).")


class InsufficientCreditError(BaseModel):
    code: Literal["INSUFFICIENT_CREDIT"]
    message: str
    details: InsufficientCreditDetails


class InsufficientCreditResponse(BaseModel):
    error: InsufficientCreditError


INSUFFICIENT_CREDIT_402: dict[int, OpenAPIResponse] = {402: {
    "description": "Insufficient credit (live mode): details say how much is missing and where to pay.",
    "content": {"application/json": {"model": InsufficientCreditResponse}}}}
