"""Request models of the campaign routes (pydantic), in the style of models.py: shape only;
money and identifier rules come from money.py and keys.py through the shared annotated types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from billing_core.api.models.common import Identifier, PoolId, PositiveMicro, Timestamp

Name = Annotated[StrictStr, Field(min_length=1, max_length=200)]
Description = Annotated[StrictStr, Field(min_length=1, max_length=500)]
IdempotencyKey = Annotated[StrictStr, Field(min_length=1, max_length=128)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CreateCampaignRequest(_Request):
    campaignId: Identifier | None = None
    name: Name
    budgetMicro: PositiveMicro
    perAccountCapMicro: PositiveMicro | None = None
    poolId: PoolId = "general"
    grantExpiresAt: Timestamp | None = None
    description: Description | None = None


class GrantRequest(_Request):
    accountId: Identifier
    amountMicro: PositiveMicro
    idempotencyKey: IdempotencyKey | None = None
    description: Description | None = None
