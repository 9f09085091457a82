"""The reservation routes' wire shapes (reserve, finalize, release, and the insufficient-credit
402): a module of their own so those three handlers build only the models they serve at cold start.
"""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, Field, StrictInt

from billing_core.api.models.common import (
    AccountId,
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


# -- the insufficient-credit 402 -----------------------------------------------------------------


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
