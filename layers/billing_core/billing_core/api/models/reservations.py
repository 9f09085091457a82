"""The reservation routes' wire shapes (reserve, finalize, release): a module of their own so those
three handlers build only the models they serve at cold start (api.models.ledger re-exports them).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt

from billing_core.api.models.common import (
    Identifier,
    Micro,
    MicroOrZero,
    PoolId,
    PositiveMicro,
    RequestModel,
    ResponseModel,
)
from billing_core.ledger.model import Mode

# -- requests -----------------------------------------------------------------------------------


class ReserveRequest(RequestModel):
    accountId: Identifier
    poolId: PoolId = "general"
    estimatedCostMicro: PositiveMicro
    reservationId: Identifier | None = None
    ttlSeconds: StrictInt | None = Field(default=None, ge=1, le=86_400)


class FinalizeRequest(RequestModel):
    reservationId: Identifier
    actualCostMicro: MicroOrZero


class ReleaseRequest(RequestModel):
    reservationId: Identifier


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


