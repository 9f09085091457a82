"""The ledger's wire shapes: mint, adjust, balance, history, config (reserve, finalize and release:
api.models.reservations).

Requests are validated as they arrive (camelCase fields); responses are built from the core's
results (ledger.model) for the first answer and for every idempotent replay alike.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_serializer,
    model_validator,
)

from billing_core.api.models.common import (
    IdempotencyKey,
    Micro,
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
