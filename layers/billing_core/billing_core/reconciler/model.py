"""What a reconciliation finds, as values. Pure data: the store keeps a result as the map the API
answers (store.reconciliation), the edge writes it through api.models.reconciler.

Lists (invariant_violations, drifted_accounts, campaigns, errors) keep the first LIST_LIMIT rows;
the *_total fields count them all. drift_ratio = drifted accounts / accounts checked, a decimal
fraction with 6 places ("0.012345"), None when drift was not evaluated. A drift row names the
account, the pool (None for the account's lifetime totals), what, expected and actual (and, for
entry checks, their counts); confirmed is False when the re-read could not be done
(RECHECK_LIMIT, time budget) or never found the account quiet.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LotViolation:
    """A lot whose own invariant fails; amounts are None when the item does not hold an integer."""

    account_id: str
    lot_id: str | None
    pool_id: str
    sk: str | None
    original_micro: int | None
    available_micro: int | None
    reserved_micro: int | None
    consumed_micro: int | None
    problem: str


@dataclass(frozen=True)
class DriftRow:
    """One failed identity of an (account, pool), or of the account's lifetime totals (pool None)."""

    account_id: str
    pool_id: str | None
    what: str
    expected_micro: int
    actual_micro: int
    confirmed: bool
    expected_count: int | None = None  # entry checks only
    actual_count: int | None = None

    @property
    def difference_micro(self) -> int:
        return self.actual_micro - self.expected_micro


@dataclass(frozen=True)
class SystemRevenue:
    """One system account: its revenue entries (all, and inside the settled window) against what
    the finalized reservations of the window owe it."""

    entries_micro: int
    entries: int
    shards_with_entries: int
    settled_entries_micro: int
    settled_entries: int
    expected_micro: int
    expected_entries: int

    @property
    def difference_micro(self) -> int:
        return self.settled_entries_micro - self.expected_micro

    @property
    def ok(self) -> bool:
        return (self.settled_entries_micro, self.settled_entries) == (self.expected_micro, self.expected_entries)


@dataclass(frozen=True)
class CampaignUsage:
    campaign_id: str
    budget_micro: int
    granted_micro: int
    used_bps: int

    @property
    def used_percent(self) -> str:
        return f"{self.used_bps / 100:.2f}"

    @property
    def over90_percent(self) -> bool:
        return self.used_bps > 9_000


@dataclass(frozen=True)
class ScanPages:
    billing: int = 0
    ledger: int = 0


@dataclass(frozen=True)
class Drift:
    """What the balance and cross checks found (all zero when drift was not evaluated)."""

    drifted_accounts: tuple[DriftRow, ...] = ()
    drifted_accounts_total: int = 0
    drift_rows_total: int = 0
    cleared_on_recheck: int = 0
    unconfirmed_accounts: int = 0
    rechecked_accounts: int = 0


@dataclass(frozen=True)
class Reconciliation:
    run_id: str
    started_at: str
    finished_at: str
    actor: str
    status: str  # ok | violations | incomplete (cut short before balances could be judged)
    complete: bool
    drift_evaluated: bool
    settled_through: str
    duration_ms: int
    lots_checked: int
    accounts_checked: int
    reservations_checked: int
    invariant_violations: tuple[LotViolation, ...]
    invariant_violations_total: int
    drifted_accounts: tuple[DriftRow, ...]
    drifted_accounts_total: int
    drift_rows_total: int
    cleared_on_recheck: int
    unconfirmed_accounts: int
    rechecked_accounts: int
    drift_ratio: str | None
    system_revenue: dict[str, SystemRevenue]
    manual_review_items: int | None
    campaigns: tuple[CampaignUsage, ...]
    campaigns_over90_percent: int
    errors: tuple[str, ...]
    errors_total: int
    scan_pages: ScanPages
    # What was emitted, by metric name (the drift metrics only when the run was complete).
    metrics: dict[str, int | str]


@dataclass(frozen=True)
class RunSummary:
    """One stored run, as history() lists it (None for what an older item lacks)."""

    run_id: str | None
    started_at: str | None
    finished_at: str | None
    actor: str | None
    status: str | None
    complete: bool | None
    accounts_checked: int | None
    lots_checked: int | None
    invariant_violations_total: int | None
    drifted_accounts_total: int | None
    drift_ratio: str | None
