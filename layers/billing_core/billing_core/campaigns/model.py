"""Campaigns, as values: a campaign (its budget, cap and figures), one account's grants from it,
and the results of granting and auditing. Amounts are micro-units (ints named *_micro)."""

from __future__ import annotations

from dataclasses import dataclass

from billing_core.ledger.model import Minted

ACTIVE = "active"
PAUSED = "paused"


@dataclass(frozen=True)
class Campaign:
    """granted + remaining == budget: every grant moves both in one SET."""

    campaign_id: str
    name: str
    description: str | None
    status: str  # active | paused
    budget_micro: int
    granted_micro: int
    remaining_micro: int
    per_account_cap_micro: int | None
    pool_id: str
    grant_expires_at: str | None
    grant_count: int
    created_at: str
    created_by: str
    updated_at: str
    updated_by: str
    request_hash: str | None = None  # of the create request: an identical create is a replay


@dataclass(frozen=True)
class Grantee:
    """One account's total from one campaign (capLeft only when the campaign has a cap)."""

    account_id: str
    granted_micro: int
    grant_count: int
    cap_left_micro: int | None


@dataclass(frozen=True)
class Granted:
    grant_id: str
    campaign_id: str
    account_id: str
    amount_micro: int
    remaining_micro: int  # the campaign's budget left after the grant (read after it)
    lot_id: str
    lot: Minted


@dataclass(frozen=True)
class BudgetUsage:
    """An active campaign's spend: used_bps = floor(granted * 10,000 / budget)."""

    campaign_id: str
    budget_micro: int
    granted_micro: int
    used_bps: int


@dataclass(frozen=True)
class CampaignAudit:
    """The campaign's own figures checked against its per-account totals; ok when no problems."""

    campaign_id: str
    budget_micro: int
    granted_micro: int
    remaining_micro: int
    grant_count: int
    accounts_granted_micro: int
    accounts: int
    ok: bool
    problems: list[str]
