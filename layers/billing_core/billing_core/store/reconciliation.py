"""What the reconciler reads and writes: both tables whole, one account's partitions, and its own
results (BillingTable partition RECONCILIATION).

Reads come back raw (DynamoDB's attribute-value form), page by page, strongly consistent: the
reconciler converts each item itself (`convert`), so one malformed item is reported rather than
ending the run, and it never holds a table in memory.

Results: `LAST` holds the latest run's result, and a run that started earlier never overwrites a
later one's (its condition); `RUN#<startedAt>#<runId>` holds each run's, expiring through the
table's TTL. Both keep the result as the JSON-compatible map the API answers (amounts as decimal
strings), so what GET reads back is what POST answered.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from billing_core.kernel import money, settings
from billing_core.reconciler.model import (
    CampaignUsage,
    DriftRow,
    LotViolation,
    Reconciliation,
    RunSummary,
    ScanPages,
    SystemRevenue,
)
from billing_core.store import dynamo, keys

RawItem = Mapping[str, Any]


def _billing() -> str:
    return settings.get().billing_table


def _ledger() -> str:
    return settings.get().ledger_table


# -- raw items ------------------------------------------------------------------------------------


def text(raw: RawItem, name: str) -> str:
    """A string attribute of a raw item; "" when absent or not a string."""
    value = raw.get(name) or {}
    return value.get("S", "") if isinstance(value, dict) else ""


def convert(raw: RawItem) -> dynamo.Item | None:
    """The item's values, or None when one does not convert (a non-integer number)."""
    try:
        return dynamo.from_item(raw)
    except (ValueError, TypeError):
        return None


def billing_pages() -> Iterator[Sequence[RawItem]]:
    """Every BillingTable item, one Scan page at a time."""
    return dynamo.scan_pages(_billing(), raw=True)


def ledger_pages() -> Iterator[Sequence[RawItem]]:
    """Every LedgerTable item, one Scan page at a time."""
    return dynamo.scan_pages(_ledger(), raw=True)


def _partition(table: str, pk: str, sort: dynamo.Range) -> Iterator[Sequence[RawItem]]:
    """One partition's items in sort-key order, strongly consistent, raw."""
    return (page.items for page in dynamo.query_pages(table, key_name="pk", key_value=pk, sort=sort,
                                                       consistent=True, raw=True))


def entry_pages(account_id: str) -> Iterator[Sequence[RawItem]]:
    """The account's ledger partition (its own entries, not a system account's shards), oldest first."""
    return _partition(_ledger(), keys.account_pk(account_id), dynamo.Range("begins_with", "sk", keys.ENTRY_PREFIX))


def balance_pages(account_id: str) -> Iterator[Sequence[RawItem]]:
    """The account's lots and shortfall items (BAL#), every pool."""
    return _partition(_billing(), keys.account_pk(account_id), dynamo.Range("begins_with", "sk", keys.balance_prefix()))


def entry_keys_since(account_id: str, created_at: str) -> set[str]:
    """Sort keys of the account's entries created at or after `created_at` (the ledger's tail)."""
    since = dynamo.Range(">=", "sk", keys.entries_from(created_at))
    return {text(raw, "sk") for page in _partition(_ledger(), keys.account_pk(account_id), since) for raw in page}


def account_totals(account_id: str) -> dynamo.Item:
    """The account's lifetime totals item ({} when it has none)."""
    return dynamo.get(_billing(), keys.account_totals_key(account_id)) or {}


# -- results --------------------------------------------------------------------------------------


def save_last(result: Reconciliation) -> bool:
    """Store the latest result; False when a run that started later already stored its own."""
    stored = to_map(result)
    try:
        dynamo.update_item(
            _billing(), keys.RECONCILIATION_KEY,
            "SET #result = :result, #started = :started, #finished = :finished, #run = :run, #status = :status",
            condition="attribute_not_exists(#started) OR #started <= :started",
            names={"#result": "result", "#started": "startedAt", "#finished": "finishedAt", "#run": "runId",
                   "#status": "status"},
            values={":result": stored, ":started": result.started_at, ":finished": result.finished_at,
                    ":run": result.run_id, ":status": result.status},
        )
    except dynamo.ConditionFailed:
        return False
    return True


def save_run(result: Reconciliation, *, expires_at_epoch: int) -> None:
    """One history item per run (the table's TTL deletes it after `expires_at_epoch`)."""
    dynamo.put_item(_billing(), {**keys.reconciliation_run_key(result.started_at, result.run_id),
                                 "result": to_map(result), "ttl": expires_at_epoch})


def last() -> Reconciliation | None:
    """The latest stored result (one GetItem), or None before the first run."""
    item = dynamo.get(_billing(), keys.RECONCILIATION_KEY)
    return from_map(item["result"]) if item else None


_SUMMARY = {"run_id": "runId", "started_at": "startedAt", "finished_at": "finishedAt", "actor": "actor",
            "status": "status", "complete": "complete", "accounts_checked": "accountsChecked",
            "lots_checked": "lotsChecked", "invariant_violations_total": "invariantViolationsTotal",
            "drifted_accounts_total": "driftedAccountsTotal", "drift_ratio": "driftRatio"}


def recent(limit: int) -> list[RunSummary]:
    """The most recent runs, newest first (one Query page)."""
    page = dynamo.query(_billing(), key_name="pk", key_value=keys.RECONCILIATION_KEY["pk"], limit=limit + 1,
                        newest_first=True)
    runs = [i["result"] for i in page.items if i["sk"].startswith(keys.RECONCILIATION_RUN_PREFIX)][:limit]
    return [RunSummary(**{name: r.get(stored) for name, stored in _SUMMARY.items()}) for r in runs]


# -- the stored map (the API's JSON) -------------------------------------------------------------


def _fmt(amount: int | None) -> str | None:
    return None if amount is None else money.fmt(amount)


def _amount(value: Any) -> int | None:
    return None if value is None else int(value)


def to_map(r: Reconciliation) -> dict[str, Any]:
    return {
        "runId": r.run_id, "startedAt": r.started_at, "finishedAt": r.finished_at, "actor": r.actor,
        "status": r.status, "complete": r.complete, "driftEvaluated": r.drift_evaluated,
        "settledThrough": r.settled_through, "durationMs": r.duration_ms, "lotsChecked": r.lots_checked,
        "accountsChecked": r.accounts_checked, "reservationsChecked": r.reservations_checked,
        "invariantViolations": [_violation_map(v) for v in r.invariant_violations],
        "invariantViolationsTotal": r.invariant_violations_total,
        "driftedAccounts": [_row_map(row) for row in r.drifted_accounts],
        "driftedAccountsTotal": r.drifted_accounts_total, "driftRowsTotal": r.drift_rows_total,
        "clearedOnRecheck": r.cleared_on_recheck, "unconfirmedAccounts": r.unconfirmed_accounts,
        "recheckedAccounts": r.rechecked_accounts, "driftRatio": r.drift_ratio,
        "systemRevenue": {name: _revenue_map(v) for name, v in r.system_revenue.items()},
        "manualReviewItems": r.manual_review_items,
        "campaigns": [_campaign_map(c) for c in r.campaigns], "campaignsOver90Percent": r.campaigns_over90_percent,
        "errors": list(r.errors), "errorsTotal": r.errors_total,
        "scanPages": {"billing": r.scan_pages.billing, "ledger": r.scan_pages.ledger},
        "metrics": dict(r.metrics),
    }


def from_map(m: Mapping[str, Any]) -> Reconciliation:
    return Reconciliation(
        run_id=m["runId"], started_at=m["startedAt"], finished_at=m["finishedAt"], actor=m["actor"],
        status=m["status"], complete=m["complete"], drift_evaluated=m["driftEvaluated"],
        settled_through=m["settledThrough"], duration_ms=m["durationMs"], lots_checked=m["lotsChecked"],
        accounts_checked=m["accountsChecked"], reservations_checked=m["reservationsChecked"],
        invariant_violations=tuple(_violation(v) for v in m["invariantViolations"]),
        invariant_violations_total=m["invariantViolationsTotal"],
        drifted_accounts=tuple(_row(row) for row in m["driftedAccounts"]),
        drifted_accounts_total=m["driftedAccountsTotal"], drift_rows_total=m["driftRowsTotal"],
        cleared_on_recheck=m["clearedOnRecheck"], unconfirmed_accounts=m["unconfirmedAccounts"],
        rechecked_accounts=m["recheckedAccounts"], drift_ratio=m["driftRatio"],
        system_revenue={name: _revenue(v) for name, v in m["systemRevenue"].items()},
        manual_review_items=m["manualReviewItems"],
        campaigns=tuple(_campaign(c) for c in m["campaigns"]), campaigns_over90_percent=m["campaignsOver90Percent"],
        errors=tuple(m["errors"]), errors_total=m["errorsTotal"],
        scan_pages=ScanPages(billing=m["scanPages"]["billing"], ledger=m["scanPages"]["ledger"]),
        metrics=dict(m["metrics"]),
    )


def _violation_map(v: LotViolation) -> dict[str, Any]:
    return {"accountId": v.account_id, "lotId": v.lot_id, "poolId": v.pool_id, "sk": v.sk,
            "originalMicro": _fmt(v.original_micro), "availableMicro": _fmt(v.available_micro),
            "reservedMicro": _fmt(v.reserved_micro), "consumedMicro": _fmt(v.consumed_micro), "problem": v.problem}


def _violation(m: Mapping[str, Any]) -> LotViolation:
    return LotViolation(account_id=m["accountId"], lot_id=m["lotId"], pool_id=m["poolId"], sk=m["sk"],
                        original_micro=_amount(m["originalMicro"]), available_micro=_amount(m["availableMicro"]),
                        reserved_micro=_amount(m["reservedMicro"]), consumed_micro=_amount(m["consumedMicro"]),
                        problem=m["problem"])


def _row_map(row: DriftRow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "accountId": row.account_id, "poolId": row.pool_id, "what": row.what,
        "expectedMicro": money.fmt(row.expected_micro), "actualMicro": money.fmt(row.actual_micro),
        "differenceMicro": money.fmt(row.difference_micro), "confirmed": row.confirmed,
    }
    if row.expected_count is not None:
        out["expectedCount"] = row.expected_count
        out["actualCount"] = row.actual_count
    return out


def _row(m: Mapping[str, Any]) -> DriftRow:
    return DriftRow(account_id=m["accountId"], pool_id=m["poolId"], what=m["what"],
                    expected_micro=int(m["expectedMicro"]), actual_micro=int(m["actualMicro"]),
                    confirmed=m["confirmed"], expected_count=m.get("expectedCount"), actual_count=m.get("actualCount"))


def _revenue_map(v: SystemRevenue) -> dict[str, Any]:
    return {"entriesMicro": money.fmt(v.entries_micro), "entries": v.entries,
            "shardsWithEntries": v.shards_with_entries, "settledEntriesMicro": money.fmt(v.settled_entries_micro),
            "settledEntries": v.settled_entries, "expectedMicro": money.fmt(v.expected_micro),
            "expectedEntries": v.expected_entries, "differenceMicro": money.fmt(v.difference_micro), "ok": v.ok}


def _revenue(m: Mapping[str, Any]) -> SystemRevenue:
    return SystemRevenue(entries_micro=int(m["entriesMicro"]), entries=m["entries"],
                         shards_with_entries=m["shardsWithEntries"],
                         settled_entries_micro=int(m["settledEntriesMicro"]), settled_entries=m["settledEntries"],
                         expected_micro=int(m["expectedMicro"]), expected_entries=m["expectedEntries"])


def _campaign_map(c: CampaignUsage) -> dict[str, Any]:
    return {"campaignId": c.campaign_id, "budgetMicro": money.fmt(c.budget_micro),
            "grantedMicro": money.fmt(c.granted_micro), "usedBps": c.used_bps, "usedPercent": c.used_percent,
            "over90Percent": c.over90_percent}


def _campaign(m: Mapping[str, Any]) -> CampaignUsage:
    return CampaignUsage(campaign_id=m["campaignId"], budget_micro=int(m["budgetMicro"]),
                         granted_micro=int(m["grantedMicro"]), used_bps=m["usedBps"])
