"""Checks for the reconciler and the runbook, from the campaign items themselves: how much of
each active budget is spent (the 'campaign budget > 90% spent' warning), and whether one
campaign's figures balance against its per-account totals ('review grants')."""

from __future__ import annotations

from billing_core.campaigns.budget import load
from billing_core.campaigns.model import ACTIVE, BudgetUsage, CampaignAudit
from billing_core.store import campaigns as store


def budget_usage() -> list[BudgetUsage]:
    """Each active campaign's spend: used_bps = floor(granted * 10,000 / budget). Integers only;
    one Query."""
    return [BudgetUsage(c.campaign_id, c.budget_micro, c.granted_micro, c.granted_micro * 10_000 // c.budget_micro)
            for c in store.list_all() if c.status == ACTIVE]


def audit(campaign_id: str) -> CampaignAudit:
    """The campaign's own figures must balance (granted + remaining == budget), and the
    per-account totals must add up to what the campaign says it granted. Two Queries' worth of
    reads."""
    campaign = load(campaign_id)
    grantees = store.grantees(campaign_id)
    by_accounts = sum(g.granted_micro for g in grantees)
    grants_by_accounts = sum(g.grant_count for g in grantees)
    problems = []
    if campaign.granted_micro + campaign.remaining_micro != campaign.budget_micro:
        problems.append("granted + remaining != budget")
    if campaign.remaining_micro < 0:
        problems.append("remaining < 0")
    if by_accounts != campaign.granted_micro:
        problems.append("sum of per-account grants != granted")
    if grants_by_accounts != campaign.grant_count:
        problems.append("sum of per-account grant counts != grantCount")
    cap = campaign.per_account_cap_micro
    if cap is not None and any(g.granted_micro > cap for g in grantees):
        problems.append("an account received more than the per-account cap")
    return CampaignAudit(campaign_id=campaign_id, budget_micro=campaign.budget_micro,
                         granted_micro=campaign.granted_micro, remaining_micro=campaign.remaining_micro,
                         grant_count=campaign.grant_count, accounts_granted_micro=by_accounts,
                         accounts=len(grantees), ok=not problems, problems=problems)
