"""The wire shapes of webhook endpoints and balance alerts (operators' routes)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictStr

from billing_core.api.models.common import Micro, MicroOrZero, RequestModel, ResponseModel
from billing_core.outbound.model import EndpointStatus, EventType

Url = Annotated[StrictStr, Field(min_length=8, max_length=2000, description="https URL of the receiver "
                                 "(public addresses only in production)")]
Description = Annotated[StrictStr, Field(min_length=1, max_length=500)]


class CreateEndpointRequest(RequestModel):
    url: Url
    events: Annotated[list[EventType], Field(min_length=1, max_length=20)]
    description: Description | None = None


class BalanceAlertRequest(RequestModel):
    """lowBalanceMicro: the account's own threshold (0 = no balance.low for it); null = the default."""

    lowBalanceMicro: MicroOrZero | None


class EndpointSecretResponse(ResponseModel):
    """Create and rotate: the signing secret (whsec_...), shown this once and never again."""

    omitted_when_unset = frozenset({"description", "previousSecretExpiresAt"})

    endpoint_id: str
    secret: str
    url: str
    events: list[EventType]
    status: EndpointStatus
    description: str | None = None
    previous_secret_expires_at: str | None = None


class EndpointResponse(ResponseModel):
    endpoint_id: str
    url: str
    events: list[EventType]
    description: str | None
    status: EndpointStatus
    created_at: str
    updated_at: str
    created_by: str
    secret_rotated_at: str | None
    previous_secret_expires_at: str | None


class EndpointListResponse(ResponseModel):
    endpoints: list[EndpointResponse]


class EndpointDeletedResponse(ResponseModel):
    endpoint_id: str
    deleted: bool


class BalanceAlertResponse(ResponseModel):
    account_id: str
    low_balance_micro: Micro
    source: str
