"""Operator routes for campaigns: create, list, read, pause, resume, and grant credit from a
campaign's budget (one transaction: the lot, the budget, the per-account cap)."""

from aws_lambda_powertools.event_handler import Response
from billing_core.api import contract, edge
from billing_core.api.models.campaigns import (
    CampaignListResponse,
    CampaignResponse,
    CreateCampaignRequest,
    GrantRequest,
    GrantResponse,
)
from billing_core.campaigns import budget, grants
from billing_core.kernel.errors import Conflict, InvalidInput, NotFound

router = edge.router()

CAMPAIGNS = "/admin/billing/campaigns"
CAMPAIGN = "/admin/billing/campaigns/<campaignId>"


@router.post(
    CAMPAIGNS,
    summary="Create a campaign",
    description="A budget that grants can never exceed, an optional per-account cap, the pool its "
    "lots go to and when they expire. The same campaignId with the same definition is an "
    "idempotent replay; with another definition, 409 CAMPAIGN_EXISTS.",
    tags=["campaigns"],
    responses=edge.responses(CampaignResponse, 201, {InvalidInput: ("EXPIRY_IN_PAST",),
                                                     Conflict: ("CAMPAIGN_EXISTS",)}),
)
def create(request: CreateCampaignRequest, ctx: edge.Ctx) -> Response[CampaignResponse]:
    campaign = budget.create(
        ctx,
        campaign_id=request.campaignId,
        name=request.name,
        budget=request.budgetMicro,
        per_account_cap=request.perAccountCapMicro,
        pool_id=request.poolId,
        grant_expires_at=request.grantExpiresAt,
        description=request.description,
    )
    return edge.reply(CampaignResponse, campaign, 201)


@router.get(CAMPAIGNS, summary="List campaigns", tags=["campaigns"], responses=edge.responses(CampaignListResponse))
def list_all() -> Response[CampaignListResponse]:
    return edge.reply(CampaignListResponse, {"campaigns": budget.list_campaigns()})


NOT_FOUND: contract.Refusals = {NotFound: ("CAMPAIGN_NOT_FOUND",)}
STATUS_CHANGE: contract.Refusals = {**NOT_FOUND, Conflict: ("CAMPAIGN_STATUS_CONFLICT",)}


@router.get(CAMPAIGN, summary="Read a campaign", tags=["campaigns"],
            responses=edge.responses(CampaignResponse, 200, NOT_FOUND))
def get(campaignId: edge.PathId) -> Response[CampaignResponse]:
    return edge.reply(CampaignResponse, budget.load(campaignId))


@router.post(f"{CAMPAIGN}/pause", summary="Pause a campaign (it grants nothing until resumed)",
             tags=["campaigns"], responses=edge.responses(CampaignResponse, 200, STATUS_CHANGE))
def pause(campaignId: edge.PathId, ctx: edge.Ctx) -> Response[CampaignResponse]:
    return edge.reply(CampaignResponse, budget.pause(ctx, campaignId))


@router.post(f"{CAMPAIGN}/resume", summary="Resume a paused campaign", tags=["campaigns"],
             responses=edge.responses(CampaignResponse, 200, STATUS_CHANGE))
def resume(campaignId: edge.PathId, ctx: edge.Ctx) -> Response[CampaignResponse]:
    return edge.reply(CampaignResponse, budget.resume(ctx, campaignId))


@router.post(
    f"{CAMPAIGN}/grants",
    summary="Grant credit from a campaign's budget",
    description="Mints a lot in the campaign's pool in one transaction with the budget and the "
    "per-account cap. Idempotent on idempotencyKey (scoped to the campaign).",
    tags=["campaigns"],
    responses=edge.responses(GrantResponse, 201, {
        **NOT_FOUND, InvalidInput: ("SYSTEM_ACCOUNT",),
        Conflict: ("CAMPAIGN_EXPIRED", "CAMPAIGN_NOT_ACTIVE", "CAMPAIGN_BUDGET_EXHAUSTED", "ACCOUNT_CAP_EXCEEDED",
                   "IDEMPOTENCY_KEY_REUSED")}),
)
def grant(campaignId: edge.PathId, request: GrantRequest, ctx: edge.Ctx) -> Response[GrantResponse]:
    result = grants.grant(
        ctx,
        campaignId,
        account_id=request.accountId,
        amount=request.amountMicro,
        idempotency_key=request.idempotencyKey,
        description=request.description,
    )
    return edge.reply(GrantResponse, result, 201)


lambda_handler = edge.handler(router, auth_kind="admin")
