"""The reconciler's rules: pure identities over integers, no I/O.

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
3. Reservations against the ledger, over the settled window (entries and reservations stamped
   before `cutoff`): per (account, pool) the reserve entries match the reservations made (count,
   Σ estimate, Σ backed), the finalize entries the finalized ones (count, Σ charged, Σ debt), the
   release/expire entries the released/expired ones (count, Σ estimate).
4. System accounts: Σ of their shares == Σ over finalized soft/live reservations of
   money.share(charged, bps) with the bps snapshot the reservation carries (shares of zero are
   never written, and none are counted). A share is an entry of a finalize's `revenueShares`
   (ledger.revenue), or, written by earlier deployments, a revenue_share/commons_contribution
   entry in one of the system account's 16 shard partitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeGuard

from billing_core.kernel import money
from billing_core.reconciler.model import DriftRow, LotViolation

LIST_LIMIT = 100  # rows kept in each list of the result; totals count them all
SETTLE_MARGIN_SECONDS = 300  # no transaction commits that long after it took its timestamp
MONEY_MODES = ("soft", "live")
TERMINAL_TYPES = ("finalize", "release", "expire")
REVENUE_TYPES = ("revenue_share", "commons_contribution")
LOT_FIELDS = ("original", "available", "reserved", "consumed")


def lot_problem(lot: Mapping[str, Any]) -> str | None:
    """What is wrong with one lot item, or None. Missing or non-integer amounts are problems too."""
    bad = [name for name in LOT_FIELDS if not is_int(lot.get(name))]
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


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def int_or_zero(value: Any) -> int:
    return value if is_int(value) else 0


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
        self.original += int_or_zero(lot.get("original"))
        self.available += int_or_zero(lot.get("available"))
        self.reserved += int_or_zero(lot.get("reserved"))
        self.consumed += int_or_zero(lot.get("consumed"))

    def add_shortfall(self, item: Mapping[str, Any]) -> None:
        self.debt += int_or_zero(item.get("debt"))
        self.unbacked += int_or_zero(item.get("unbacked"))


@dataclass(slots=True)
class AccountTotals:
    """The account's lifetime totals item against the ledger (payments.py)."""

    paid_item: int = 0
    refunded_item: int = 0
    paid_ledger: int = 0
    refunded_ledger: int = 0

    def add_item(self, item: Mapping[str, Any]) -> None:
        self.paid_item += int_or_zero(item.get("lifetimePaid"))
        self.refunded_item += int_or_zero(item.get("lifetimeRefunded"))


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
    if not isinstance(kind, str) or not is_int(amount) or not isinstance(meta, dict):
        totals.unreadable += 1
        return
    settled_window = entry.get("createdAt", "~") < cutoff
    if kind == "deposit":
        totals.credits += amount
        totals.settled += int_or_zero(meta.get("settledDebtMicro"))
    elif kind in ("adjustment", "refund"):
        direction = meta.get("direction")
        from_lots, to_debt = meta.get("fromLotsMicro"), meta.get("toDebtMicro")
        if direction == "credit":
            totals.credits += amount
            totals.settled += int_or_zero(meta.get("settledDebtMicro"))
        elif direction in ("debit", "none") and is_int(from_lots) and is_int(to_debt) \
                and from_lots + to_debt == amount:
            totals.debit_from_lots += from_lots
            totals.debit_to_debt += to_debt
        else:
            totals.unreadable += 1
    elif kind == "finalize":
        debt = int_or_zero(meta.get("debtMicro"))
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
            totals.e_reserve_backed += int_or_zero(meta.get("backedMicro"))
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
    if not is_int(estimate) or not is_int(backed):
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
    if not is_int(amount):
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
            self._open[rid] = (entry.get("poolId", ""), int_or_zero(entry.get("amountMicro")),
                               int_or_zero(meta.get("backedMicro") if isinstance(meta, dict) else 0))
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


def failed_rows(account_id: str, pool_id: str | None, checks: list[Check], confirmed: bool) -> list[DriftRow]:
    return [DriftRow(account_id, pool_id, c.what, c.expected, c.actual, confirmed, c.expected_count, c.actual_count)
            for c in checks if not c.ok]


def lot_violation(account_id: str, pool_id: str, lot: Mapping[str, Any], problem: str) -> LotViolation:
    def amount(name: str) -> int | None:
        value = lot.get(name)
        return value if is_int(value) else None

    lot_id = lot.get("lotId")  # a corrupt item may hold anything: shown as text
    return LotViolation(
        account_id=account_id, lot_id=lot_id if lot_id is None else str(lot_id), pool_id=pool_id, sk=lot.get("sk"),
        original_micro=amount("original"), available_micro=amount("available"), reserved_micro=amount("reserved"),
        consumed_micro=amount("consumed"), problem=problem)


def revenue_carried(entry: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(system account, share) a finalize entry carries in its `revenueShares`."""
    carried = entry.get("revenueShares")
    if not isinstance(carried, Mapping):
        return []
    return [(system, int_or_zero(share.get("amountMicro") if isinstance(share, Mapping) else None))
            for system, share in sorted(carried.items())]


def revenue_owed(res: Mapping[str, Any], charged: int) -> list[tuple[str, int]]:
    """(system account, share) of one finalized charge, with the bps its reservation carries;
    reservations._revenue_share_entries writes no entry of zero, so none is owed."""
    owed = []
    for system, bps in sorted((res.get("revenueShares") or {}).items()):
        share = money.share(charged, int_or_zero(bps))
        if share > 0:
            owed.append((system, share))
    return owed
