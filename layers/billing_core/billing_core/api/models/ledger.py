"""Request models for the HTTP surface (pydantic). Validation here is about shape; money and
identifier rules live in money.py and keys.py so the core applies the same rules everywhere."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    model_validator,
)

from billing_core.kernel import clock, money
from billing_core.ledger.config import MODES
from billing_core.ledger.lots import SOURCE_TYPES
from billing_core.store import keys

_MONEY_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer", "minimum": 0}],
    "description": "Whole micro-units (1 USD = 1,000,000) as a digit string or JSON integer; no floats.",
}


def _positive_micro(value: object) -> int:
    return money.parse_micro(value)


def _signed_micro(value: object) -> int:
    return money.parse_signed_micro(value)


def _micro_or_zero(value: object) -> int:
    return money.parse_micro(value, allow_zero=True)


PositiveMicro = Annotated[int, BeforeValidator(_positive_micro), WithJsonSchema(_MONEY_SCHEMA)]
_SIGNED_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": "^-?[0-9]+$"}, {"type": "integer"}],
    "description": "Whole micro-units, negative allowed, as a digit string or JSON integer; no floats.",
}
SignedMicro = Annotated[int, BeforeValidator(_signed_micro), WithJsonSchema(_SIGNED_SCHEMA)]
MicroOrZero = Annotated[int, BeforeValidator(_micro_or_zero), WithJsonSchema(_MONEY_SCHEMA)]

Identifier = Annotated[StrictStr, Field(pattern=keys.ID_PATTERN, min_length=1, max_length=128)]
PoolId = Annotated[StrictStr, Field(pattern=keys.POOL_PATTERN, min_length=1, max_length=64)]


def _iso_timestamp(value: str) -> str:
    try:
        return clock.iso(clock.parse_iso(value))
    except (ValueError, OverflowError, OSError):
        raise ValueError("must be an ISO-8601 timestamp with a timezone") from None


Timestamp = Annotated[StrictStr, Field(max_length=40), AfterValidator(_iso_timestamp)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ReserveRequest(_Request):
    accountId: Identifier
    poolId: PoolId = "general"
    estimatedCostMicro: PositiveMicro
    reservationId: Identifier | None = None
    ttlSeconds: StrictInt | None = Field(default=None, ge=1, le=86_400)


class FinalizeRequest(_Request):
    reservationId: Identifier
    actualCostMicro: MicroOrZero


class ReleaseRequest(_Request):
    reservationId: Identifier


class MintRequest(_Request):
    amountMicro: PositiveMicro
    poolId: PoolId = "general"
    sourceType: Literal[SOURCE_TYPES]  # type: ignore[valid-type]
    description: Annotated[StrictStr, Field(min_length=1, max_length=500)]
    expiresAt: Timestamp | None = None
    idempotencyKey: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None


class ModeRequest(_Request):
    mode: Literal[MODES]  # type: ignore[valid-type]


Reason = Annotated[StrictStr, Field(min_length=1, max_length=500)]
IdempotencyKey = Annotated[StrictStr, Field(min_length=1, max_length=128)]


class TopupRequest(_Request):
    amountMicro: PositiveMicro
    provider: Literal["nowpayments", "stripe"]


class AdjustRequest(_Request):
    """Exactly one of balanceMicro (set) and deltaMicro (move by); both signed."""

    balanceMicro: SignedMicro | None = None
    deltaMicro: SignedMicro | None = None
    reason: Reason
    poolId: PoolId = "general"
    idempotencyKey: IdempotencyKey | None = None

    @model_validator(mode="after")
    def _one_of(self) -> AdjustRequest:
        if (self.balanceMicro is None) == (self.deltaMicro is None):
            raise ValueError("give exactly one of balanceMicro and deltaMicro")
        return self


class RefundRequest(_Request):
    amountMicro: PositiveMicro
    reason: Reason
    poolId: PoolId = "general"
    orderId: Identifier | None = None
    idempotencyKey: IdempotencyKey | None = None


class RevenueSharesRequest(_Request):
    """Basis points of each finalized amount per system account (sum at most 10,000)."""

    shares: dict[Annotated[StrictStr, Field(max_length=64)], Annotated[StrictInt, Field(ge=0, le=10_000)]]


class DismissRequest(_Request):
    reason: Reason
