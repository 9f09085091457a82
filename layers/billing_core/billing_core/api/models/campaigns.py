"""The wire shapes of the campaign routes: requests validated as they arrive (camelCase fields;
money and identifier rules from kernel.money and kernel.ids through the shared annotated types),
responses built from the core's results (campaigns.model)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictStr

from billing_core.api.models.common import (
    AccountId,
    Identifier,
    Micro,
    PoolId,
    PositiveMicro,
    RequestModel,
    ResponseModel,
    Timestamp,
)
from billing_core.api.models.ledger import LotResponse

Name = Annotated[StrictStr, Field(min_length=1, max_length=200)]
Description = Annotated[StrictStr, Field(min_length=1, max_length=500)]
IdempotencyKey = Annotated[StrictStr, Field(min_length=1, max_length=128)]


# -- requests -----------------------------------------------------------------------------------


class CreateCampaignRequest(RequestModel):
    campaignId: Identifier | None = None
    name: Name
    budgetMicro: PositiveMicro
    perAccountCapMicro: PositiveMicro | None = None
    poolId: PoolId = "general"
    grantExpiresAt: Timestamp | None = None
    description: Description | None = None


class GrantRequest(RequestModel):
    accountId: AccountId
    amountMicro: PositiveMicro
    idempotencyKey: IdempotencyKey | None = None
    description: Description | None = None


# -- responses ----------------------------------------------------------------------------------


class CampaignResponse(ResponseModel):
    campaign_id: str
    name: str
    description: str | None
    status: str
    budget_micro: Micro
    granted_micro: Micro
    remaining_micro: Micro
    per_account_cap_micro: Micro | None
    pool_id: str
    grant_expires_at: str | None
    grant_count: int
    created_at: str
    created_by: str
    updated_at: str
    updated_by: str


class CampaignListResponse(ResponseModel):
    campaigns: list[CampaignResponse]


class GrantResponse(ResponseModel):
    grant_id: str
    campaign_id: str
    account_id: str
    amount_micro: Micro
    remaining_micro: Micro
    lot_id: str
    lot: LotResponse
