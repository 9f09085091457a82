"""The reconciler: proves, from the items themselves, that not one micro-unit went missing.

A run scans both tables once (scan.py), judges every lot and every (account, pool) against its
ledger and reservations by the identities of rules.py, re-reads the accounts that fail
(recheck.py), reads its gauges (gauges.py), then stores the result (the last one and a history
item) and emits the metrics the alarms watch.

A Scan is not a snapshot: money moves while the tables are read. Two rules keep a busy system
from raising false drift:
- Reservations against entries, and system revenue, compare append-only facts and terminal
  states stamped with the same instant on both sides (an entry's createdAt == its reservation's
  createdAt/finalizedAt/releasedAt/expiredAt), restricted to the *settled window*: before the
  run's start minus SETTLE_MARGIN_SECONDS (no transaction commits that long after it took its
  timestamp).
- Balances against the ledger compare mutable lots, so an account that fails is re-read on its
  own (recheck.py). Drift the re-read reproduces is `confirmed`; drift the re-read cleared is
  counted in `clearedOnRecheck` and not reported. At most RECHECK_LIMIT accounts are re-read.

A run cut short by its time budget (complete=false) still reports lot invariant violations
found so far, but evaluates no drift (driftEvaluated=false): a half-read ledger proves nothing.

Calls per run: Scan pages of BillingTable and of LedgerTable (1 MB each, strongly consistent);
Query page(s) of work-by-status (manual_review); Query of the campaigns partition (when the
campaigns module exists); per drifted account (at most RECHECK_LIMIT) per attempt: Query pages
of its ledger partition, of its BAL# items and of its ledger tail, and one GetItem; then one
UpdateItem (last result) and one PutItem (history, 90-day TTL).

Metrics (Powertools EMF): InvariantViolations, LotsChecked, ReconcilerComplete (1/0),
CampaignBudgetMaxUsedPercent and ManualReviewItems always; DriftedAccounts, AccountsChecked,
DriftRatioPercent (percent: 1 is the runbook's 1%) and SystemRevenueMismatches only when the
run was complete.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from billing_core.kernel import clock, observability
from billing_core.kernel.observability import logger
from billing_core.reconciler import gauges, recheck
from billing_core.reconciler.model import Drift, DriftRow, Reconciliation, RunSummary, SystemRevenue
from billing_core.reconciler.rules import (
    LIST_LIMIT,
    SETTLE_MARGIN_SECONDS,
    balance_checks,
    cross_checks,
    drift_ratio,
    failed_rows,
    lifetime_checks,
    percent,
)
from billing_core.reconciler.scan import Scan
from billing_core.store import reconciliation as store

RECHECK_LIMIT = 200  # accounts re-read per run to confirm drift; beyond it drift stays unconfirmed
HISTORY_TTL_SECONDS = 90 * 86_400

# Metric names (namespace from POWERTOOLS_METRICS_NAMESPACE; Powertools adds the service dimension).
M_INVARIANT = "InvariantViolations"
M_DRIFTED = "DriftedAccounts"
M_DRIFT_PERCENT = "DriftRatioPercent"
M_ACCOUNTS = "AccountsChecked"
M_LOTS = "LotsChecked"
M_MANUAL_REVIEW = "ManualReviewItems"
M_CAMPAIGN_MAX = "CampaignBudgetMaxUsedPercent"
M_COMPLETE = "ReconcilerComplete"
M_REVENUE = "SystemRevenueMismatches"


def run(*, actor: str, time_budget_seconds: float | None = None) -> Reconciliation:
    """Reconcile both tables, store the result (last + a history item), emit metrics, return it."""
    started_at = clock.now()
    began = time.monotonic()
    deadline = began + time_budget_seconds if time_budget_seconds is not None else None
    cutoff = clock.iso(started_at - SETTLE_MARGIN_SECONDS)
    state = Scan(cutoff, deadline)
    run_id = f"rec_{uuid.uuid4().hex}"

    complete = False
    try:
        complete = state.scan_billing() and state.scan_ledger()
    except Exception as exc:
        logger.exception("reconciliation scan failed")
        state.error(f"scan failed: {type(exc).__name__}: {exc}")

    drift = Drift()
    accounts_checked = 0
    system_revenue: dict[str, SystemRevenue] = {}
    if complete:
        accounts_checked, drift = _evaluate(state)
        system_revenue = state.system_revenue()
    revenue_mismatches = sum(1 for v in system_revenue.values() if not v.ok)

    manual_review = gauges.manual_review(state.error)
    campaigns = gauges.campaign_usage(state.error)
    campaign_max_bps = max((c.used_bps for c in campaigns), default=0)

    metrics: dict[str, Any] = {M_INVARIANT: state.violations_total, M_LOTS: state.lots_checked,
                               M_COMPLETE: 1 if complete else 0, M_CAMPAIGN_MAX: f"{campaign_max_bps / 100:.2f}"}
    if complete:
        metrics.update({M_DRIFTED: drift.drifted_accounts_total, M_ACCOUNTS: accounts_checked,
                        M_DRIFT_PERCENT: f"{percent(drift.drifted_accounts_total, accounts_checked):.4f}",
                        M_REVENUE: revenue_mismatches})
    if manual_review is not None:
        metrics[M_MANUAL_REVIEW] = manual_review

    bad = state.violations_total or drift.drifted_accounts_total or revenue_mismatches
    finished_at = clock.iso(clock.now())
    result = Reconciliation(
        run_id=run_id,
        started_at=clock.iso(started_at),
        finished_at=finished_at,
        actor=actor,
        # "incomplete": cut short before the balances could be judged (lot violations still count as bad).
        status="violations" if bad else ("ok" if complete else "incomplete"),
        complete=complete,
        drift_evaluated=complete,
        settled_through=cutoff,
        duration_ms=int((time.monotonic() - began) * 1000),
        lots_checked=state.lots_checked,
        accounts_checked=accounts_checked,
        reservations_checked=state.reservations_checked,
        invariant_violations=tuple(state.violations),
        invariant_violations_total=state.violations_total,
        drifted_accounts=drift.drifted_accounts,
        drifted_accounts_total=drift.drifted_accounts_total,
        drift_rows_total=drift.drift_rows_total,
        cleared_on_recheck=drift.cleared_on_recheck,
        unconfirmed_accounts=drift.unconfirmed_accounts,
        rechecked_accounts=drift.rechecked_accounts,
        drift_ratio=drift_ratio(drift.drifted_accounts_total, accounts_checked) if complete else None,
        system_revenue=system_revenue,
        manual_review_items=manual_review,
        campaigns=tuple(campaigns[:LIST_LIMIT]),
        campaigns_over90_percent=sum(1 for c in campaigns if c.over90_percent),
        errors=tuple(state.errors),
        errors_total=state.errors_total,
        scan_pages=state.pages(),
        metrics=metrics,
    )
    _store(result)
    _emit(metrics, complete)
    return result


def _evaluate(state: Scan) -> tuple[int, Drift]:
    """(accounts checked, drift): scan-level checks, then re-reads of suspect accounts."""
    by_account: dict[str, list[str]] = defaultdict(list)
    for account, pool in state.pools:
        by_account[account].append(pool)
    for account in state.accounts:
        by_account.setdefault(account, [])
    # Per account: rows that only a re-read can confirm (lots vs ledger), rows exact already.
    suspects: dict[str, tuple[list[DriftRow], list[DriftRow]]] = {}
    unconfirmed_rows: list[DriftRow] = []
    drifted = unconfirmed = 0
    rows_total = 0
    for account in sorted(by_account):
        balance_rows: list[DriftRow] = []
        settled_rows: list[DriftRow] = []
        for pool in sorted(by_account[account]):
            totals = state.pools[(account, pool)]
            balance_rows += failed_rows(account, pool, balance_checks(totals), confirmed=False)
            settled_rows += failed_rows(account, pool, cross_checks(totals), confirmed=True)
        if account in state.accounts:
            balance_rows += failed_rows(account, None, lifetime_checks(state.accounts[account]), confirmed=False)
        if not balance_rows and not settled_rows:
            continue
        if balance_rows and len(suspects) < RECHECK_LIMIT:
            suspects[account] = (balance_rows, settled_rows)
            continue
        drifted += 1
        unconfirmed += 1 if balance_rows else 0
        rows_total += len(balance_rows) + len(settled_rows)
        if len(unconfirmed_rows) < LIST_LIMIT:
            unconfirmed_rows += settled_rows + balance_rows

    confirmed_rows: list[DriftRow] = []
    cleared = rechecked = 0
    for account, (scan_rows, settled_rows) in suspects.items():
        fresh: list[DriftRow] | None = None
        if not state.out_of_time():
            try:
                fresh = recheck.recheck_account(account)
                rechecked += 1
            except Exception as exc:
                logger.exception("re-read failed", extra={"accountId": account})
                state.error(f"re-read of {account} failed: {type(exc).__name__}: {exc}")
        if fresh is None:  # could not confirm: report what the scan saw, flagged unconfirmed
            fresh = scan_rows
            unconfirmed += 1
        elif not fresh and not settled_rows:
            cleared += 1
            continue
        drifted += 1
        rows_total += len(fresh) + len(settled_rows)
        if len(confirmed_rows) < LIST_LIMIT:
            confirmed_rows += settled_rows + fresh
    rows = sorted(confirmed_rows + unconfirmed_rows, key=lambda r: (r.account_id, r.pool_id or ""))
    return len(by_account), Drift(
        drifted_accounts=tuple(rows[:LIST_LIMIT]),
        drifted_accounts_total=drifted,
        drift_rows_total=rows_total,
        cleared_on_recheck=cleared,
        unconfirmed_accounts=unconfirmed,
        rechecked_accounts=rechecked,
    )


def _store(result: Reconciliation) -> None:
    """The last result (a run that started earlier never overwrites a later one's) and a history
    item per run (expires after 90 days through the table's TTL)."""
    if not store.save_last(result):
        logger.info("a later reconciliation already stored its result", extra={"runId": result.run_id})
    store.save_run(result, expires_at_epoch=int(clock.now()) + HISTORY_TTL_SECONDS)


def _emit(metrics: dict[str, Any], complete: bool) -> None:
    observability.gauge(M_INVARIANT, metrics[M_INVARIANT])
    observability.gauge(M_LOTS, metrics[M_LOTS])
    observability.gauge(M_COMPLETE, metrics[M_COMPLETE])
    observability.gauge(M_CAMPAIGN_MAX, float(metrics[M_CAMPAIGN_MAX]), MetricUnit.Percent)
    if M_MANUAL_REVIEW in metrics:
        observability.gauge(M_MANUAL_REVIEW, metrics[M_MANUAL_REVIEW])
    if complete:  # drift of a half-read ledger would be noise, not a measurement
        observability.gauge(M_DRIFTED, metrics[M_DRIFTED])
        observability.gauge(M_ACCOUNTS, metrics[M_ACCOUNTS])
        observability.gauge(M_DRIFT_PERCENT, float(metrics[M_DRIFT_PERCENT]), MetricUnit.Percent)
        observability.gauge(M_REVENUE, metrics[M_REVENUE])


def last_result() -> Reconciliation | None:
    """The most recent stored result (one GetItem), or None before the first run."""
    return store.last()


def history(limit: int = 20) -> list[RunSummary]:
    """Summaries of the most recent runs, newest first (one Query page)."""
    return store.recent(limit)
