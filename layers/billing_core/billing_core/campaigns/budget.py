"""Campaigns: a budget that grants can never exceed, an optional cap per account, pause/resume.
This module creates, reads and pauses them; grants.py grants from them, audit.py checks them.

Items and the expressions that keep the budget: store/campaigns.py.
"""

from __future__ import annotations

import uuid

from billing_core.campaigns.model import ACTIVE, PAUSED, Campaign
from billing_core.kernel import clock
from billing_core.kernel.context import Context
from billing_core.kernel.errors import Conflict, InvalidInput, NotFound
from billing_core.ledger import idempotency
from billing_core.store import campaigns as store
from billing_core.store import dynamo, transaction


def not_found(campaign_id: str) -> NotFound:
    return NotFound(f"campaign {campaign_id} does not exist", code="CAMPAIGN_NOT_FOUND",
                    details={"campaignId": campaign_id})


def load(campaign_id: str) -> Campaign:
    campaign = store.get(campaign_id)
    if campaign is None:
        raise not_found(campaign_id)
    return campaign


def create(
    ctx: Context,
    *,
    campaign_id: str | None,
    name: str,
    budget: int,
    per_account_cap: int | None,
    pool_id: str,
    grant_expires_at: str | None,
    description: str | None,
) -> Campaign:
    """One conditional Put (with the rate counter, in one transaction). The same campaignId
    with the same definition is an idempotent replay (the campaign as it is now); with another
    definition, 409 CAMPAIGN_EXISTS."""
    actor = ctx.actor
    now_iso = clock.iso(clock.now())
    if grant_expires_at is not None and grant_expires_at <= now_iso:
        raise InvalidInput("grantExpiresAt must be in the future", code="EXPIRY_IN_PAST")
    campaign_id = campaign_id or f"cmp_{uuid.uuid4().hex}"
    req_hash = idempotency.request_hash({
        "op": "create-campaign", "name": name, "budget": budget, "perAccountCap": per_account_cap,
        "poolId": pool_id, "grantExpiresAt": grant_expires_at, "description": description,
    })
    campaign = Campaign(
        campaign_id=campaign_id, name=name, description=description, status=ACTIVE, budget_micro=budget,
        granted_micro=0, remaining_micro=budget, per_account_cap_micro=per_account_cap, pool_id=pool_id,
        grant_expires_at=grant_expires_at, grant_count=0, created_at=now_iso, created_by=actor, updated_at=now_iso,
        updated_by=actor, request_hash=req_hash,
    )
    try:
        transaction.commit([store.create(campaign)], ctx)
    except dynamo.TransactionCancelled as cancelled:
        if "campaign" not in cancelled.failed:
            raise
        existing = load(campaign_id)
        if existing.request_hash != req_hash:
            raise Conflict(f"campaign {campaign_id} already exists with another definition",
                           code="CAMPAIGN_EXISTS", details={"campaignId": campaign_id}) from None
        return existing
    return campaign


def list_campaigns() -> list[Campaign]:
    """Every campaign, ordered by id: one Query."""
    return store.list_all()


def _set_status(ctx: Context, campaign_id: str, to: str, from_: str) -> Campaign:
    """One conditional UpdateItem on the current status. Already in the target status: the
    campaign as it is (200, idempotent). The rate counter is charged before the write (the
    edge's dynamo.before_single_writes), so a request over the limit changes nothing."""
    try:
        return store.set_status(campaign_id, to, from_, at=clock.iso(clock.now()), by=ctx.actor)
    except dynamo.ConditionFailed:
        current = load(campaign_id)
        if current.status == to:
            return current
        raise Conflict(f"campaign {campaign_id} is {current.status}", code="CAMPAIGN_STATUS_CONFLICT",
                       details={"campaignId": campaign_id, "status": current.status}) from None


def pause(ctx: Context, campaign_id: str) -> Campaign:
    return _set_status(ctx, campaign_id, PAUSED, ACTIVE)


def resume(ctx: Context, campaign_id: str) -> Campaign:
    return _set_status(ctx, campaign_id, ACTIVE, PAUSED)
