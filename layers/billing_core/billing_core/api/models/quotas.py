"""The wire shapes of the plan and quota routes: requests validated as they arrive (camelCase
fields), responses built from the core's results (quotas.model), for the first answer and for
every idempotent replay alike.

Counts (tokens, runs, seats) are JSON integers: strict, so floats, booleans and digit strings
are refused; never negative; bounded per request. Limits and overrides are bounded below 2^53
so every client's JSON numbers carry them exactly. Money is written as decimal strings (Micro),
except `priceMonthlyCents`, the contract's integer.
"""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

from billing_core.api.models.common import Identifier, Micro, RequestModel, ResponseModel, Timestamp
from billing_core.quotas.model import BillingStatus
from billing_core.quotas.plans import SLUG_PATTERN

MAX_TOKENS_PER_REQUEST = 1_000_000_000
MAX_RUNS_PER_REQUEST = 1_000_000
MAX_SEATS_PER_REQUEST = 100_000
MAX_LIMIT = 1_000_000_000_000_000  # 10^15 < 2^53
MAX_SEATS = 10_000_000

TokenCount = Annotated[StrictInt, Field(ge=0, le=MAX_TOKENS_PER_REQUEST)]
RunCount = Annotated[StrictInt, Field(ge=0, le=MAX_RUNS_PER_REQUEST)]
SeatCount = Annotated[StrictInt, Field(ge=0, le=MAX_SEATS_PER_REQUEST)]
Limit = Annotated[StrictInt, Field(ge=0, le=MAX_LIMIT)]
PlanSlug = Annotated[StrictStr, Field(pattern=SLUG_PATTERN, min_length=1, max_length=64)]


class QuotaRequest(RequestModel):
    """POST /api/v1/billing/org/check: would this usage be accepted?"""

    # At least one count above zero: "not (none of them is)", without a top-level anyOf (client
    # generators read that as a union of partial bodies).
    model_config = ConfigDict(json_schema_extra={"not": {"properties": {
        name: {"not": {"type": "integer", "minimum": 1}} for name in ("tokens", "runs", "seats")}}})

    orgId: Identifier
    tokens: TokenCount | None = None
    runs: RunCount | None = None
    seats: SeatCount | None = None

    @model_validator(mode="after")
    def _something_requested(self) -> QuotaRequest:
        if not any((self.tokens, self.runs, self.seats)):
            raise ValueError("at least one of tokens, runs, seats must be greater than zero")
        return self

    def amounts(self) -> dict[str, int]:
        return {"tokens": self.tokens or 0, "runs": self.runs or 0, "seats": self.seats or 0}


class UsageRequest(QuotaRequest):
    """POST /api/v1/billing/org/usage: record usage (seats = members added). `requestId` makes a
    retry return the original response without counting twice. `enforce: false` records usage
    that has already happened (e.g. the part of an LLM call beyond its estimate) whatever the
    limits: never refused, reported with `overLimit`."""

    requestId: Identifier | None = None
    enforce: StrictBool = True


class Overrides(BaseModel):
    """Per-org included limits replacing the plan's. Unknown keys are refused (a typo must not
    silently clear an override: the map replaces the stored one as a whole)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: Limit | None = None
    runs: Limit | None = None
    seats: Limit | None = None

    def as_map(self) -> dict[str, int]:
        return {k: v for k, v in (("tokens", self.tokens), ("runs", self.runs), ("seats", self.seats))
                if v is not None}


class OrgPlanRequest(RequestModel):
    """POST /api/v1/billing/org/plan (operators). Every field but orgId is optional; at least one
    change is required. `overrides` replaces the org's overrides ({} clears them); `seats` sets
    the current member count (adding or removing members)."""

    model_config = ConfigDict(json_schema_extra={"not": {"properties": {
        name: {"type": "null"} for name in ("planSlug", "billingStatus", "overrides", "seats", "trialEndsAt")}}})

    orgId: Identifier
    planSlug: PlanSlug | None = None
    billingStatus: BillingStatus | None = None
    overrides: Overrides | None = None
    seats: Annotated[StrictInt, Field(ge=0, le=MAX_SEATS)] | None = None
    trialEndsAt: Timestamp | None = None

    @model_validator(mode="after")
    def _something_changes(self) -> OrgPlanRequest:
        if all(v is None for v in (self.planSlug, self.billingStatus, self.overrides, self.seats, self.trialEndsAt)):
            raise ValueError("give at least one of planSlug, billingStatus, overrides, seats, trialEndsAt")
        return self


# -- responses ----------------------------------------------------------------------------------


class QuotaCounts(ResponseModel):
    tokens: int
    runs: int
    seats: int


class PercentUsed(ResponseModel):
    """Whole percent, rounded down; null when the limit is 0."""

    tokens: int | None
    runs: int | None
    seats: int | None


class OverridesResponse(ResponseModel):
    """Only the overridden quotas appear."""

    omitted_when_unset = frozenset({"tokens", "runs", "seats"})

    tokens: int | None = None
    runs: int | None = None
    seats: int | None = None


class OveragePricesResponse(ResponseModel):
    tokens_per_1k_micro: Micro = Field(serialization_alias="tokensPer1kMicro")
    run_micro: Micro
    seat_micro: Micro


class PlanResponse(ResponseModel):
    slug: str
    name: str
    description: str
    price_monthly_cents: int
    price_monthly_micro: Micro
    currency: Literal["USD"] = "USD"
    limits: QuotaCounts
    overage: OveragePricesResponse
    active: bool


class PlansResponse(ResponseModel):
    omitted_when_unset = frozenset({"degraded"})

    plans: list[PlanResponse]
    source: Literal["table", "defaults"]
    degraded: Literal[True] | None = None


class OrgPeriodResponse(ResponseModel):
    org_id: str
    plan_slug: str
    billing_status: str  # effective (a stored status is echoed as it is)
    period: str
    period_start: str
    period_end: str


class OverageResponse(ResponseModel):
    tokens_micro: Micro
    runs_micro: Micro
    seats_micro: Micro
    total_micro: Micro


class SummaryResponse(OrgPeriodResponse):
    plan_name: str
    trial_ends_at: str | None
    limits: QuotaCounts
    usage: QuotaCounts
    remaining: QuotaCounts
    percent_used: PercentUsed
    overage: OverageResponse
    overrides: OverridesResponse
    enforcement: Literal["hard", "soft"]


class CheckResponse(OrgPeriodResponse):
    allowed: bool
    over_limit: bool
    enforcement: Literal["hard", "soft"]
    requested: QuotaCounts
    usage: QuotaCounts
    limits: QuotaCounts
    remaining: QuotaCounts


class UsageResponse(OrgPeriodResponse):
    allowed: bool
    recorded: bool
    over_limit: bool
    enforcement: Literal["hard", "soft", "off"]
    requested: QuotaCounts
    request_id: str | None
    recorded_at: str


class OrgBillingResponse(ResponseModel):
    org_id: str
    plan_slug: str
    billing_status: str  # effective
    stored_billing_status: str
    trial_ends_at: str | None
    overrides: OverridesResponse
    limits: QuotaCounts
    seats: int
    updated_at: str | None
    updated_by: str | None


# -- documented errors ----------------------------------------------------------------------------


class QuotaExceededDetails(BaseModel):
    """402 QUOTA_EXCEEDED (or BILLING_CANCELED, limit 0): the quota this request would cross."""

    quotaType: Literal["tokens", "runs", "seats"]
    currentUsage: int
    limit: int
    requested: int
    billingStatus: str
    planSlug: str
    periodStart: str
    periodEnd: str
    upgradeUrl: str | None = Field(None, description="Where to upgrade the plan; present only when "
                                                     "BILLING_UPGRADE_URL is configured.")


class QuotaExceededError(BaseModel):
    code: Literal["QUOTA_EXCEEDED", "BILLING_CANCELED"]
    message: str
    details: QuotaExceededDetails


class QuotaExceededResponse(BaseModel):
    error: QuotaExceededError


QUOTA_EXCEEDED_402: dict[int, OpenAPIResponse] = {402: {
    "description": "The org's monthly limit would be crossed (hard limits), or its billing is canceled.",
    "content": {"application/json": {"model": QuotaExceededResponse}}}}
