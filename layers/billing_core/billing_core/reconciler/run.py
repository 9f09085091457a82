"""The reconciler: proves, from the items themselves, that not one micro-unit went missing.

One run reads both tables once (Scan, page by page; a nightly job may, no request path does)
and aggregates per (account, pool), never keeping every item:

1. Every lot: available + reserved + consumed == original, each >= 0 (the critical alarm).
2. Every (account, pool): its lots and its shortfall item (debt, unbacked) against its ledger
   entries and its reservations. How each writer moves money (lots.py, reservations.py,
   adjustments.py, payments.py) gives these exact identities:

   original  Σ lot.original  == Σ deposit entries (mints, campaign grants, top-ups)
                               + Σ adjustment/refund entries with direction credit
   consumed  Σ lot.consumed  == Σ settledDebtMicro (deposits, credit adjustments)
                               + Σ finalize (amount - debtMicro) + Σ debit fromLotsMicro
   debt      debt            == Σ finalize debtMicro + Σ debit toDebtMicro - Σ settledDebtMicro
   reserved  Σ lot.reserved  == Σ backedMicro of pending soft/live reservations
   unbacked  unbacked        == Σ (estimate - backed) of pending soft reservations
   balance   Σ lot.available - debt - unbacked
                             == credits - Σ finalize - Σ debits - held on lots - unbacked holds
                                (expired lots included: credit no longer spendable, not gone)

   shadow_* entries and shadow reservations never touch balances and are left out. Per account:
   the TOTALS item (lifetimePaid, lifetimeRefunded) == Σ provider deposits, Σ refund entries.
3. Reservations against the ledger, over the settled window (see below): per (account, pool)
   the reserve entries match the reservations made (count, Σ estimate, Σ backed), the finalize
   entries the finalized ones (count, Σ charged, Σ debt), the release/expire entries the
   released/expired ones (count, Σ estimate).
4. System accounts: Σ revenue_share/commons_contribution entries over all 16 shard partitions
   == Σ over finalized soft/live reservations of money.share(charged, bps) with the bps
   snapshot the reservation carries (entries of zero are never written, and none are counted).
5. Gauges: work items in manual_review, campaign budget usage (when campaigns exist).

A Scan is not a snapshot: money moves while the tables are read. Two rules keep a busy system
from raising false drift:
- Checks 3 and 4 compare append-only facts and terminal states stamped with the same instant on
  both sides (an entry's createdAt == its reservation's createdAt/finalizedAt/releasedAt/
  expiredAt), restricted to the *settled window*: before the run's start minus
  SETTLE_MARGIN_SECONDS (no transaction commits that long after it took its timestamp).
- Check 2 compares mutable lots with the ledger, so an account that fails it is re-read on its
  own (its ledger partition, its BAL# items, its TOTALS item, then the ledger's recent tail
  again): only when nothing was appended meanwhile is the result used. Every money move writes
  an entry into the account's partition in the same transaction, so a quiet tail means the lots
  read in between belong to exactly that ledger. Drift the re-read reproduces is `confirmed`;
  drift the re-read cleared is counted in `clearedOnRecheck` and not reported.

A run cut short by its time budget (complete=false) still reports lot invariant violations
found so far, but evaluates no drift (driftEvaluated=false): a half-read ledger proves nothing.

Wire result (run() and last_result()): amounts are decimal strings, counts ints. Lists
(invariantViolations, driftedAccounts, campaigns, errors) keep the first 100 rows; the *Total
fields count them all. driftRatio = drifted accounts / accounts checked, a decimal fraction with
6 places ("0.012345"), null when drift was not evaluated. A driftedAccounts row names accountId,
poolId (null for the account's lifetime totals), what, expectedMicro, actualMicro,
differenceMicro (actual - expected) and, for entry checks, expectedCount/actualCount; confirmed
is false when the re-read could not be done (RECHECK_LIMIT, time budget) or never found the
account quiet.

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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from billing_core.kernel import clock, ids, money, settings
from billing_core.kernel.observability import logger
from billing_core.store import dynamo, keys

LIST_LIMIT = 100  # rows kept in each list of the result; totals count them all
RECHECK_LIMIT = 200  # accounts re-read per run to confirm drift; beyond it drift stays unconfirmed
RECHECK_ATTEMPTS = 3
SETTLE_MARGIN_SECONDS = 300
HISTORY_TTL_SECONDS = 90 * 86_400
MONEY_MODES = ("soft", "live")
TERMINAL_TYPES = ("finalize", "release", "expire")
REVENUE_TYPES = ("revenue_share", "commons_contribution")
LOT_FIELDS = ("original", "available", "reserved", "consumed")
HISTORY_PREFIX = "RUN#"

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


# -- pure rules -------------------------------------------------------------------------------


def lot_problem(lot: Mapping[str, Any]) -> str | None:
    """What is wrong with one lot item, or None. Missing or non-integer amounts are problems too."""
    bad = [name for name in LOT_FIELDS if not _is_int(lot.get(name))]
    if bad:
        return "unreadable " + ", ".join(bad)
    problems = [f"{name} is negative" for name in LOT_FIELDS if lot[name] < 0]
    total = lot["available"] + lot["reserved"] + lot["consumed"]
    if total != lot["original"]:
        problems.append(f"available + reserved + consumed = {total} != original {lot['original']} "
                        f"(off by {total - lot['original']})")
    return "; ".join(problems) or None


def held(mode: str, estimate: int, backed: int) -> tuple[int, int]:
    """(held on lots, unbacked hold) of one pending reservation (reservations.reserve)."""
    if mode == "soft":
        return backed, estimate - backed
    if mode == "live":
        return backed, 0
    return 0, 0  # shadow: nothing moves


def finalize_split(mode: str, backed: int, charged: int) -> tuple[int, int]:
    """(consumed from lots, new debt) of a finalize that charged `charged` (reservations._settlement):
    the allocations (which sum to backed) absorb the charge in order; in soft mode the rest is debt."""
    from_lots = min(backed, charged)
    return from_lots, (charged - from_lots if mode == "soft" else 0)


def drift_ratio(drifted: int, checked: int) -> str:
    """Drifted accounts / accounts checked as a decimal fraction string with 6 places."""
    if checked <= 0:
        return "0.000000"
    return str((Decimal(drifted) / Decimal(checked)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def percent(numerator: int, denominator: int) -> float:
    return 0.0 if denominator <= 0 else numerator * 100 / denominator


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(value: Any) -> int:
    return value if _is_int(value) else 0


@dataclass(slots=True)
class PoolTotals:
    """Everything one (account, pool) contributes to its identities. Integers only."""

    lots: int = 0
    original: int = 0
    available: int = 0
    reserved: int = 0
    consumed: int = 0
    debt: int = 0
    unbacked: int = 0
    # held by pending soft/live reservations
    held_backed: int = 0
    held_unbacked: int = 0
    # ledger, all time
    credits: int = 0
    settled: int = 0
    charged: int = 0
    charged_to_debt: int = 0
    debit_from_lots: int = 0
    debit_to_debt: int = 0
    unreadable: int = 0
    # settled window: reservation items ...
    r_reserve_count: int = 0
    r_reserve_estimate: int = 0
    r_reserve_backed: int = 0
    r_finalize_count: int = 0
    r_finalize_charged: int = 0
    r_finalize_debt: int = 0
    r_release_count: int = 0
    r_release_estimate: int = 0
    # ... and ledger entries
    e_reserve_count: int = 0
    e_reserve_estimate: int = 0
    e_reserve_backed: int = 0
    e_finalize_count: int = 0
    e_finalize_charged: int = 0
    e_finalize_debt: int = 0
    e_release_count: int = 0
    e_release_amount: int = 0

    def add_lot(self, lot: Mapping[str, Any]) -> None:
        self.lots += 1
        self.original += _int(lot.get("original"))
        self.available += _int(lot.get("available"))
        self.reserved += _int(lot.get("reserved"))
        self.consumed += _int(lot.get("consumed"))

    def add_shortfall(self, item: Mapping[str, Any]) -> None:
        self.debt += _int(item.get("debt"))
        self.unbacked += _int(item.get("unbacked"))


@dataclass(slots=True)
class AccountTotals:
    """The account's lifetime totals item against the ledger (payments.py)."""

    paid_item: int = 0
    refunded_item: int = 0
    paid_ledger: int = 0
    refunded_ledger: int = 0


@dataclass(frozen=True)
class Check:
    what: str
    expected: int
    actual: int
    expected_count: int | None = None
    actual_count: int | None = None

    @property
    def ok(self) -> bool:
        return self.expected == self.actual and self.expected_count == self.actual_count


def apply_entry(totals: PoolTotals, entry: Mapping[str, Any], cutoff: str) -> None:
    """Add one (non-revenue) ledger entry of the pool. `cutoff`: the settled window's end (ISO)."""
    kind = entry.get("entryType")
    amount = entry.get("amountMicro")
    meta = entry.get("metadata") or {}
    if not isinstance(kind, str) or not _is_int(amount) or not isinstance(meta, dict):
        totals.unreadable += 1
        return
    settled_window = entry.get("createdAt", "~") < cutoff
    if kind == "deposit":
        totals.credits += amount
        totals.settled += _int(meta.get("settledDebtMicro"))
    elif kind in ("adjustment", "refund"):
        direction = meta.get("direction")
        from_lots, to_debt = meta.get("fromLotsMicro"), meta.get("toDebtMicro")
        if direction == "credit":
            totals.credits += amount
            totals.settled += _int(meta.get("settledDebtMicro"))
        elif direction in ("debit", "none") and _is_int(from_lots) and _is_int(to_debt) \
                and from_lots + to_debt == amount:
            totals.debit_from_lots += from_lots
            totals.debit_to_debt += to_debt
        else:
            totals.unreadable += 1
    elif kind == "finalize":
        debt = _int(meta.get("debtMicro"))
        totals.charged += amount
        totals.charged_to_debt += debt
        if settled_window:
            totals.e_finalize_count += 1
            totals.e_finalize_charged += amount
            totals.e_finalize_debt += debt
    elif kind == "reserve":
        if settled_window:
            totals.e_reserve_count += 1
            totals.e_reserve_estimate += amount
            totals.e_reserve_backed += _int(meta.get("backedMicro"))
    elif kind in ("release", "expire"):
        if settled_window:
            totals.e_release_count += 1
            totals.e_release_amount += amount
    elif kind.startswith("shadow_"):
        pass  # recorded, never moves money
    else:
        totals.unreadable += 1


def apply_reservation(totals: PoolTotals, res: Mapping[str, Any], cutoff: str) -> int | None:
    """Add one reservation item. Returns the amount it charged when it is a soft/live reservation
    finalized inside the settled window (what its revenue shares are owed on), else None."""
    mode, status = res.get("mode"), res.get("status")
    if mode not in MONEY_MODES:
        return None
    estimate, backed = res.get("estimateMicro"), res.get("backedMicro")
    if not _is_int(estimate) or not _is_int(backed):
        totals.unreadable += 1
        return None
    if status == "pending":
        on_lots, unbacked = held(mode, estimate, backed)
        totals.held_backed += on_lots
        totals.held_unbacked += unbacked
    if res.get("createdAt", "~") < cutoff:
        totals.r_reserve_count += 1
        totals.r_reserve_estimate += estimate
        totals.r_reserve_backed += backed
    if status == "finalized" and res.get("finalizedAt", "~") < cutoff:
        try:
            charged = int(res["finalizedMicro"])
        except (KeyError, TypeError, ValueError):
            totals.unreadable += 1
            return None
        totals.r_finalize_count += 1
        totals.r_finalize_charged += charged
        totals.r_finalize_debt += finalize_split(mode, backed, charged)[1]
        return charged
    if status in ("released", "expired") and res.get(f"{status}At", "~") < cutoff:
        totals.r_release_count += 1
        totals.r_release_estimate += estimate
    return None


def balance_checks(t: PoolTotals) -> list[Check]:
    """Lots and shortfall against ledger + pending holds (identities 2 of the module docstring)."""
    consumed = t.settled + (t.charged - t.charged_to_debt) + t.debit_from_lots
    debt = t.charged_to_debt + t.debit_to_debt - t.settled
    balance = t.credits - t.charged - t.debit_from_lots - t.debit_to_debt - t.held_backed - t.held_unbacked
    return [
        Check("original", t.credits, t.original),
        Check("consumed", consumed, t.consumed),
        Check("debt", debt, t.debt),
        Check("reserved", t.held_backed, t.reserved),
        Check("unbacked", t.held_unbacked, t.unbacked),
        Check("balance", balance, t.available - t.debt - t.unbacked),
        Check("unreadableItems", 0, 0, 0, t.unreadable),
    ]


def cross_checks(t: PoolTotals) -> list[Check]:
    """Reservation items (expected) against ledger entries (actual), over the settled window."""
    return [
        Check("reserveEntries", t.r_reserve_estimate, t.e_reserve_estimate, t.r_reserve_count, t.e_reserve_count),
        Check("reserveBacked", t.r_reserve_backed, t.e_reserve_backed),
        Check("finalizeEntries", t.r_finalize_charged, t.e_finalize_charged, t.r_finalize_count,
              t.e_finalize_count),
        Check("finalizeDebt", t.r_finalize_debt, t.e_finalize_debt),
        Check("releaseEntries", t.r_release_estimate, t.e_release_amount, t.r_release_count, t.e_release_count),
    ]


def lifetime_checks(a: AccountTotals) -> list[Check]:
    return [Check("lifetimePaid", a.paid_ledger, a.paid_item),
            Check("lifetimeRefunded", a.refunded_ledger, a.refunded_item)]


def apply_lifetime(a: AccountTotals, entry: Mapping[str, Any]) -> None:
    amount = entry.get("amountMicro")
    if not _is_int(amount):
        return
    meta = entry.get("metadata") or {}
    if entry.get("entryType") == "deposit" and isinstance(meta, dict) and meta.get("provider"):
        a.paid_ledger += amount  # payments._credit: the same transaction adds lifetimePaid
    elif entry.get("entryType") == "refund":
        a.refunded_ledger += amount  # payments.refund/_apply_refund add lifetimeRefunded


class OpenHolds:
    """Pending holds derived from one account's ledger alone (for the re-read): a reserve entry
    with no finalize/release/expire entry is a pending reservation. Entries arrive in sort-key
    order (createdAt, then entry id), so a terminal entry sharing its reserve's timestamp may
    come first; it is remembered until its reserve arrives. Memory: open reservations only."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[str, int, int]] = {}
        self._closed_early: set[str] = set()

    def add(self, entry: Mapping[str, Any]) -> None:
        rid, kind = entry.get("reservationId"), entry.get("entryType")
        if not rid:
            return
        if kind == "reserve":
            if rid in self._closed_early:
                self._closed_early.discard(rid)
                return
            meta = entry.get("metadata") or {}
            self._open[rid] = (entry.get("poolId", ""), _int(entry.get("amountMicro")),
                               _int(meta.get("backedMicro") if isinstance(meta, dict) else 0))
        elif kind in TERMINAL_TYPES and self._open.pop(rid, None) is None:
            self._closed_early.add(rid)

    def per_pool(self) -> dict[str, tuple[int, int]]:
        """pool -> (held on lots, unbacked). A live reservation is fully backed (reserve refuses
        otherwise), so estimate - backed is exactly soft mode's unbacked part."""
        out: dict[str, tuple[int, int]] = {}
        for pool, estimate, backed in self._open.values():
            on_lots, unbacked = out.get(pool, (0, 0))
            out[pool] = (on_lots + backed, unbacked + estimate - backed)
        return out


def failed_rows(account_id: str, pool_id: str | None, checks: list[Check], confirmed: bool) -> list[dict[str, Any]]:
    rows = []
    for c in checks:
        if c.ok:
            continue
        row: dict[str, Any] = {
            "accountId": account_id, "poolId": pool_id, "what": c.what,
            "expectedMicro": money.fmt(c.expected), "actualMicro": money.fmt(c.actual),
            "differenceMicro": money.fmt(c.actual - c.expected), "confirmed": confirmed,
        }
        if c.expected_count is not None:
            row["expectedCount"] = c.expected_count
            row["actualCount"] = c.actual_count
        rows.append(row)
    return rows


# -- reads ------------------------------------------------------------------------------------


def _convert(raw: Mapping[str, Any]) -> dynamo.Item | None:
    try:
        return dynamo.from_item(raw)
    except (ValueError, TypeError):
        return None


def _raw_str(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name) or {}
    return value.get("S", "") if isinstance(value, dict) else ""


def _scan(table: str) -> Iterator[list[dict[str, Any]]]:
    """Raw pages, so one malformed item is reported rather than ending the run."""
    return dynamo.scan_pages(table, raw=True)


def _query(table: str, pk: str, condition: str, value: str) -> Iterator[list[dict[str, Any]]]:
    """One partition, sort keys `begins_with` or `>=` value, strongly consistent, oldest first, raw."""
    return (page.items for page in dynamo.query_pages(table, key_name="pk", key_value=pk,
                                                       sort=dynamo.Range(condition, "sk", value), consistent=True,
                                                       raw=True))


def _lot_violation(account_id: str, pool_id: str, lot: Mapping[str, Any], problem: str) -> dict[str, Any]:
    def amount(name: str) -> str | None:
        value = lot.get(name)
        return money.fmt(value) if _is_int(value) else None

    return {
        "accountId": account_id, "lotId": lot.get("lotId"), "poolId": pool_id, "sk": lot.get("sk"),
        "originalMicro": amount("original"), "availableMicro": amount("available"),
        "reservedMicro": amount("reserved"), "consumedMicro": amount("consumed"), "problem": problem,
    }


def _parse_bal_sk(sk: str) -> tuple[str, str]:
    """BAL#<pool>#LOT#... or BAL#<pool>#DEBT -> (pool, 'LOT' | 'DEBT' | other)."""
    pool, _, rest = sk[len("BAL#"):].partition("#")
    return pool, rest.split("#", 1)[0]


class _Run:
    """One reconciliation's aggregates."""

    def __init__(self, cutoff: str, deadline: float | None) -> None:
        self.cutoff = cutoff
        self.deadline = deadline
        self.pools: dict[tuple[str, str], PoolTotals] = defaultdict(PoolTotals)
        self.accounts: dict[str, AccountTotals] = defaultdict(AccountTotals)
        self.lots_checked = 0
        self.reservations_checked = 0
        self.violations: list[dict[str, Any]] = []
        self.violations_total = 0
        self.errors: list[str] = []
        self.errors_total = 0
        self.scan_pages = {"billing": 0, "ledger": 0}
        # system account -> figures
        self.revenue_expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # [micro, count]
        self.revenue_checked: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.revenue_total: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.revenue_shards: dict[str, set[str]] = defaultdict(set)

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def error(self, message: str) -> None:
        self.errors_total += 1
        if len(self.errors) < LIST_LIMIT:
            self.errors.append(message[:300])

    def violation(self, row: dict[str, Any]) -> None:
        self.violations_total += 1
        if len(self.violations) < LIST_LIMIT:
            self.violations.append(row)

    # BillingTable ---------------------------------------------------------------------------

    def scan_billing(self) -> bool:
        for page in _scan(settings.get().billing_table):
            self.scan_pages["billing"] += 1
            for raw in page:
                self.billing_item(raw)
            if self.out_of_time():
                return False
        return True

    def billing_item(self, raw: Mapping[str, Any]) -> None:
        pk, sk = _raw_str(raw, "pk"), _raw_str(raw, "sk")
        if pk.startswith("ACCT#") and sk.startswith("BAL#"):
            account = pk[len("ACCT#"):]
            pool, kind = _parse_bal_sk(sk)
            item = _convert(raw)
            if kind == "LOT":
                self.lots_checked += 1
                lot = item if item is not None else {"sk": sk, "lotId": _raw_str(raw, "lotId")}
                problem = lot_problem(lot) if item is not None else "unreadable item (a non-integer number)"
                if problem:
                    self.violation(_lot_violation(account, pool, lot, problem))
                self.pools[(account, pool)].add_lot(lot)
            elif kind == "DEBT":
                if item is None:
                    self.pools[(account, pool)].unreadable += 1
                else:
                    self.pools[(account, pool)].add_shortfall(item)
        elif pk.startswith("ACCT#") and sk == "TOTALS":
            item = _convert(raw) or {}
            totals = self.accounts[pk[len("ACCT#"):]]
            totals.paid_item += _int(item.get("lifetimePaid"))
            totals.refunded_item += _int(item.get("lifetimeRefunded"))
        elif pk.startswith("RES#") and sk == "RES":
            self.reservations_checked += 1
            self.reservation(raw)

    def reservation(self, raw: Mapping[str, Any]) -> None:
        res = _convert(raw)
        account, pool = _raw_str(raw, "accountId"), _raw_str(raw, "poolId")
        if res is None or not account or not pool:
            if account and pool:
                self.pools[(account, pool)].unreadable += 1
            else:
                self.error(f"unreadable reservation item {_raw_str(raw, 'pk')}")
            return
        if res.get("mode") not in MONEY_MODES:
            return
        charged = apply_reservation(self.pools[(account, pool)], res, self.cutoff)
        if charged is None:
            return
        for system, bps in sorted((res.get("revenueShares") or {}).items()):
            share = money.share(charged, _int(bps))
            if share > 0:  # reservations._revenue_share_entries writes no entry of zero
                self.revenue_expected[system][0] += share
                self.revenue_expected[system][1] += 1

    # LedgerTable ----------------------------------------------------------------------------

    def scan_ledger(self) -> bool:
        for page in _scan(settings.get().ledger_table):
            self.scan_pages["ledger"] += 1
            for raw in page:
                self.ledger_item(raw)
            if self.out_of_time():
                return False
        return True

    def ledger_item(self, raw: Mapping[str, Any]) -> None:
        entry = _convert(raw)
        account, pool = _raw_str(raw, "accountId"), _raw_str(raw, "poolId")
        if entry is None or not account or not pool:
            if account and pool:
                self.pools[(account, pool)].unreadable += 1
            else:
                self.error(f"unreadable ledger entry {_raw_str(raw, 'pk')} {_raw_str(raw, 'sk')}")
            return
        if entry.get("entryType") in REVENUE_TYPES:
            amount = _int(entry.get("amountMicro"))
            self.revenue_total[account][0] += amount
            self.revenue_total[account][1] += 1
            self.revenue_shards[account].add(entry["pk"])
            if entry.get("createdAt", "~") < self.cutoff:
                self.revenue_checked[account][0] += amount
                self.revenue_checked[account][1] += 1
            return
        apply_entry(self.pools[(account, pool)], entry, self.cutoff)
        apply_lifetime(self.accounts[account], entry)

    # results --------------------------------------------------------------------------------

    def system_revenue(self) -> dict[str, dict[str, Any]]:
        names = set(ids.SYSTEM_ACCOUNTS) | set(self.revenue_expected) | set(self.revenue_total)
        out = {}
        for name in sorted(names):
            expected, checked, total = self.revenue_expected[name], self.revenue_checked[name], self.revenue_total[name]
            out[name] = {
                "entriesMicro": money.fmt(total[0]), "entries": total[1],
                "shardsWithEntries": len(self.revenue_shards[name]),
                "settledEntriesMicro": money.fmt(checked[0]), "settledEntries": checked[1],
                "expectedMicro": money.fmt(expected[0]), "expectedEntries": expected[1],
                "differenceMicro": money.fmt(checked[0] - expected[0]),
                "ok": checked == expected,
            }
        return out


# -- re-read of one account (confirming drift) ------------------------------------------------


def recheck_account(account_id: str) -> list[dict[str, Any]] | None:
    """Re-evaluate one account's balance identities from a consistent re-read (module docstring).
    Returns its failing rows (empty: the scan's drift was traffic), or None when the account kept
    changing through every attempt. Calls per attempt: Query(s) of its ledger partition, Query(s)
    of its BAL# items, GetItem TOTALS, Query(s) of the ledger's recent tail."""
    pk = keys.account_pk(account_id)
    for _ in range(RECHECK_ATTEMPTS):
        tail_from = clock.iso(clock.now() - SETTLE_MARGIN_SECONDS)
        pools: dict[str, PoolTotals] = defaultdict(PoolTotals)
        lifetime = AccountTotals()
        holds = OpenHolds()
        recent: set[str] = set()
        for page in _query(settings.get().ledger_table, pk, "begins_with", "E#"):
            for raw in page:
                sk = _raw_str(raw, "sk")
                if sk >= "E#" + tail_from:
                    recent.add(sk)
                entry = _convert(raw)
                pool = _raw_str(raw, "poolId")
                if entry is None:
                    pools[pool].unreadable += 1
                    continue
                if entry.get("entryType") in REVENUE_TYPES:
                    continue
                apply_entry(pools[pool], entry, cutoff="")  # cross-checks are not re-read here
                apply_lifetime(lifetime, entry)
                holds.add(entry)
        for page in _query(settings.get().billing_table, pk, "begins_with", "BAL#"):
            for raw in page:
                pool, kind = _parse_bal_sk(_raw_str(raw, "sk"))
                item = _convert(raw)
                if item is None:
                    pools[pool].unreadable += 1
                elif kind == "LOT":
                    pools[pool].add_lot(item)
                elif kind == "DEBT":
                    pools[pool].add_shortfall(item)
        totals_item = dynamo.get(settings.get().billing_table, keys.account_totals_key(account_id)) or {}
        lifetime.paid_item = _int(totals_item.get("lifetimePaid"))
        lifetime.refunded_item = _int(totals_item.get("lifetimeRefunded"))
        tail = {_raw_str(raw, "sk") for page in _query(settings.get().ledger_table, pk, ">=", "E#" + tail_from)
                for raw in page}
        if tail != recent:
            continue  # money moved while we read: read again
        for pool, (on_lots, unbacked) in holds.per_pool().items():
            pools[pool].held_backed += on_lots
            pools[pool].held_unbacked += unbacked
        rows = []
        for pool in sorted(pools):
            rows += failed_rows(account_id, pool, balance_checks(pools[pool]), confirmed=True)
        return rows + failed_rows(account_id, None, lifetime_checks(lifetime), confirmed=True)
    return None


# -- gauges -----------------------------------------------------------------------------------


def _manual_review(run: _Run) -> int | None:
    try:
        from billing_core.work import items as work

        return work.count("manual_review")
    except Exception as exc:  # a gauge must not sink the reconciliation
        logger.exception("manual_review count failed")
        run.error(f"manual_review count failed: {type(exc).__name__}: {exc}")
        return None


def _campaign_usage(run: _Run) -> list[dict[str, Any]]:
    try:
        from billing_core.campaigns import grants as campaigns
    except ImportError:
        return []
    usage_fn: Callable[[], list[dict[str, Any]]] | None = getattr(campaigns, "budget_usage", None)
    if usage_fn is None:
        return []
    try:
        usage = usage_fn()
        out = []
        for c in usage:
            used = int(c["usedBps"])
            out.append({"campaignId": c["campaignId"], "budgetMicro": money.fmt(int(c["budgetMicro"])),
                        "grantedMicro": money.fmt(int(c["grantedMicro"])), "usedBps": used,
                        "usedPercent": f"{used / 100:.2f}", "over90Percent": used > 9_000})
        return sorted(out, key=lambda c: (-c["usedBps"], c["campaignId"]))
    except Exception as exc:
        logger.exception("campaign budget usage failed")
        run.error(f"campaign budget usage failed: {type(exc).__name__}: {exc}")
        return []


# -- the run ----------------------------------------------------------------------------------


def run(*, actor: str, time_budget_seconds: float | None = None) -> dict[str, Any]:
    """Reconcile both tables, store the result (last + a history item), emit metrics, return it."""
    started_at = clock.now()
    began = time.monotonic()
    deadline = began + time_budget_seconds if time_budget_seconds is not None else None
    cutoff = clock.iso(started_at - SETTLE_MARGIN_SECONDS)
    state = _Run(cutoff, deadline)
    run_id = f"rec_{uuid.uuid4().hex}"

    complete = False
    try:
        complete = state.scan_billing() and state.scan_ledger()
    except Exception as exc:
        logger.exception("reconciliation scan failed")
        state.error(f"scan failed: {type(exc).__name__}: {exc}")

    drift: dict[str, Any] = {"driftedAccounts": [], "driftedAccountsTotal": 0, "driftRowsTotal": 0,
                             "clearedOnRecheck": 0, "unconfirmedAccounts": 0, "recheckedAccounts": 0}
    accounts_checked = 0
    system_revenue: dict[str, Any] = {}
    if complete:
        accounts_checked, drift = _evaluate(state)
        system_revenue = state.system_revenue()
    revenue_mismatches = sum(1 for v in system_revenue.values() if not v["ok"])

    manual_review = _manual_review(state)
    campaigns = _campaign_usage(state)
    campaign_max_bps = max((c["usedBps"] for c in campaigns), default=0)

    metrics: dict[str, Any] = {M_INVARIANT: state.violations_total, M_LOTS: state.lots_checked,
                               M_COMPLETE: 1 if complete else 0, M_CAMPAIGN_MAX: f"{campaign_max_bps / 100:.2f}"}
    if complete:
        metrics.update({M_DRIFTED: drift["driftedAccountsTotal"], M_ACCOUNTS: accounts_checked,
                        M_DRIFT_PERCENT: f"{percent(drift['driftedAccountsTotal'], accounts_checked):.4f}",
                        M_REVENUE: revenue_mismatches})
    if manual_review is not None:
        metrics[M_MANUAL_REVIEW] = manual_review

    bad = state.violations_total or drift["driftedAccountsTotal"] or revenue_mismatches
    result = {
        "runId": run_id,
        "startedAt": clock.iso(started_at),
        "finishedAt": clock.iso(clock.now()),
        "actor": actor,
        # "incomplete": cut short before the balances could be judged (lot violations still count as bad).
        "status": "violations" if bad else ("ok" if complete else "incomplete"),
        "complete": complete,
        "driftEvaluated": complete,
        "settledThrough": cutoff,
        "durationMs": int((time.monotonic() - began) * 1000),
        "lotsChecked": state.lots_checked,
        "accountsChecked": accounts_checked,
        "reservationsChecked": state.reservations_checked,
        "invariantViolations": state.violations,
        "invariantViolationsTotal": state.violations_total,
        **drift,
        "driftRatio": drift_ratio(drift["driftedAccountsTotal"], accounts_checked) if complete else None,
        "systemRevenue": system_revenue,
        "manualReviewItems": manual_review,
        "campaigns": campaigns[:LIST_LIMIT],
        "campaignsOver90Percent": sum(1 for c in campaigns if c["over90Percent"]),
        "errors": state.errors,
        "errorsTotal": state.errors_total,
        "scanPages": dict(state.scan_pages),
        "metrics": metrics,
    }
    _store(result)
    _emit(metrics, complete)
    return result


def _evaluate(state: _Run) -> tuple[int, dict[str, Any]]:
    """(accounts checked, drift fields): scan-level checks, then re-reads of suspect accounts."""
    by_account: dict[str, list[str]] = defaultdict(list)
    for account, pool in state.pools:
        by_account[account].append(pool)
    for account in state.accounts:
        by_account.setdefault(account, [])
    # Per account: rows that only a re-read can confirm (lots vs ledger), rows exact already.
    suspects: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    unconfirmed_rows: list[dict[str, Any]] = []
    drifted = unconfirmed = 0
    rows_total = 0
    for account in sorted(by_account):
        balance_rows: list[dict[str, Any]] = []
        settled_rows: list[dict[str, Any]] = []
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

    confirmed_rows: list[dict[str, Any]] = []
    cleared = rechecked = 0
    for account, (scan_rows, settled_rows) in suspects.items():
        fresh: list[dict[str, Any]] | None = None
        if not state.out_of_time():
            try:
                fresh = recheck_account(account)
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
    rows = sorted(confirmed_rows + unconfirmed_rows, key=lambda r: (r["accountId"], r["poolId"] or ""))
    return len(by_account), {
        "driftedAccounts": rows[:LIST_LIMIT],
        "driftedAccountsTotal": drifted,
        "driftRowsTotal": rows_total,
        "clearedOnRecheck": cleared,
        "unconfirmedAccounts": unconfirmed,
        "recheckedAccounts": rechecked,
    }


def _history_key(started_at: str, run_id: str) -> dict[str, str]:
    return {"pk": keys.RECONCILIATION_KEY["pk"], "sk": f"{HISTORY_PREFIX}{started_at}#{run_id}"}


def _store(result: dict[str, Any]) -> None:
    """The last result (a run that started earlier never overwrites a later one's) and a history
    item per run (expires after 90 days through the table's TTL)."""
    table = settings.get().billing_table
    try:
        dynamo.update_item(
            table, keys.RECONCILIATION_KEY,
            "SET #result = :result, #started = :started, #finished = :finished, #run = :run, #status = :status",
            condition="attribute_not_exists(#started) OR #started <= :started",
            names={"#result": "result", "#started": "startedAt", "#finished": "finishedAt", "#run": "runId",
                   "#status": "status"},
            values={":result": result, ":started": result["startedAt"], ":finished": result["finishedAt"],
                    ":run": result["runId"], ":status": result["status"]},
        )
    except dynamo.ConditionFailed:
        logger.info("a later reconciliation already stored its result", extra={"runId": result["runId"]})
    dynamo.put_item(table, {
        **_history_key(result["startedAt"], result["runId"]), "result": result,
        "ttl": int(clock.now()) + HISTORY_TTL_SECONDS,
    })


def _emit(metrics: dict[str, Any], complete: bool) -> None:
    # Imported here: observability creates Powertools' Metrics (which reads its namespace from the
    # environment) on import, and importing this module for its pure rules must not do that.
    from billing_core.kernel import observability

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


def last_result() -> dict[str, Any] | None:
    """The most recent stored result (one GetItem), or None before the first run."""
    item = dynamo.get(settings.get().billing_table, keys.RECONCILIATION_KEY)
    return item.get("result") if item else None


def history(limit: int = 20) -> list[dict[str, Any]]:
    """Summaries of the most recent runs, newest first (one Query page)."""
    page = dynamo.query(settings.get().billing_table, key_name="pk", key_value=keys.RECONCILIATION_KEY["pk"],
                        limit=limit + 1, newest_first=True)
    runs = [i["result"] for i in page.items if i["sk"].startswith(HISTORY_PREFIX)][:limit]
    summary_fields = ("runId", "startedAt", "finishedAt", "actor", "status", "complete", "accountsChecked",
                      "lotsChecked", "invariantViolationsTotal", "driftedAccountsTotal", "driftRatio")
    return [{k: r.get(k) for k in summary_fields} for r in runs]

