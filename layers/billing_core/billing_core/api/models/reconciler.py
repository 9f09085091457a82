"""The reconciliation's wire shape (GET /admin/billing/reconciliation, POST /admin/billing/reconcile),
built from reconciler.model.Reconciliation: amounts as decimal strings, counts as ints, driftRatio
a 6-place decimal string or null, and `metrics` by metric name, as emitted."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from billing_core.api.models.common import Micro, ResponseModel


class LotViolationResponse(ResponseModel):
    account_id: str
    lot_id: str | None
    pool_id: str
    sk: str | None
    original_micro: Micro | None
    available_micro: Micro | None
    reserved_micro: Micro | None
    consumed_micro: Micro | None
    problem: str


class DriftRowResponse(ResponseModel):
    omitted_when_unset = frozenset({"expectedCount", "actualCount"})

    account_id: str
    pool_id: str | None = Field(description="null for the account's lifetime totals")
    what: str
    expected_micro: Micro
    actual_micro: Micro
    difference_micro: Micro = Field(description="actual - expected")
    confirmed: bool
    expected_count: int | None = None
    actual_count: int | None = None


class SystemRevenueResponse(ResponseModel):
    entries_micro: Micro
    entries: int
    shards_with_entries: int
    settled_entries_micro: Micro
    settled_entries: int
    expected_micro: Micro
    expected_entries: int
    difference_micro: Micro
    ok: bool


class CampaignUsageResponse(ResponseModel):
    campaign_id: str
    budget_micro: Micro
    granted_micro: Micro
    used_bps: int
    used_percent: str
    over90_percent: bool


class ScanPagesResponse(ResponseModel):
    billing: int
    ledger: int


class ReconciliationResponse(ResponseModel):
    run_id: str
    started_at: str
    finished_at: str
    actor: str
    status: Literal["ok", "violations", "incomplete"]
    complete: bool
    drift_evaluated: bool
    settled_through: str
    duration_ms: int
    lots_checked: int
    accounts_checked: int
    reservations_checked: int
    invariant_violations: list[LotViolationResponse] = Field(description="the first 100")
    invariant_violations_total: int
    drifted_accounts: list[DriftRowResponse] = Field(description="the first 100 rows")
    drifted_accounts_total: int
    drift_rows_total: int
    cleared_on_recheck: int
    unconfirmed_accounts: int
    rechecked_accounts: int
    drift_ratio: str | None = Field(description="drifted / checked, 6 places; null when drift was not evaluated")
    system_revenue: dict[str, SystemRevenueResponse]
    manual_review_items: int | None
    campaigns: list[CampaignUsageResponse]
    campaigns_over90_percent: int
    errors: list[str]
    errors_total: int
    scan_pages: ScanPagesResponse
    metrics: dict[str, int | str] = Field(description="by metric name, as emitted")
