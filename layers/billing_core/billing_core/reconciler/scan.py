"""One pass over both tables (Scan, page by page; a nightly job may, no request path does),
aggregated per (account, pool) and per system account, never keeping every item.

A Scan is not a snapshot: money moves while the tables are read. What the scan alone can judge
(the lot invariant, reservations against entries inside the settled window, system revenue) it
judges; balances against the ledger are confirmed by a re-read of the account (recheck.py).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from billing_core.kernel import ids
from billing_core.reconciler import rules
from billing_core.reconciler.model import LotViolation, ScanPages, SystemRevenue
from billing_core.reconciler.rules import AccountTotals, PoolTotals
from billing_core.store import keys
from billing_core.store import reconciliation as store


class Scan:
    """One reconciliation's aggregates, and the rows and errors it has found so far."""

    def __init__(self, cutoff: str, deadline: float | None) -> None:
        self.cutoff = cutoff  # the settled window's end (ISO)
        self.deadline = deadline  # time.monotonic() past which the run stops reading
        self.pools: dict[tuple[str, str], PoolTotals] = defaultdict(PoolTotals)
        self.accounts: dict[str, AccountTotals] = defaultdict(AccountTotals)
        self.lots_checked = 0
        self.reservations_checked = 0
        self.violations: list[LotViolation] = []
        self.violations_total = 0
        self.errors: list[str] = []
        self.errors_total = 0
        self.scan_pages = {"billing": 0, "ledger": 0}
        # system account -> [micro, count]
        self.revenue_expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.revenue_checked: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.revenue_total: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.revenue_shards: dict[str, set[str]] = defaultdict(set)

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def error(self, message: str) -> None:
        self.errors_total += 1
        if len(self.errors) < rules.LIST_LIMIT:
            self.errors.append(message[:300])

    def violation(self, row: LotViolation) -> None:
        self.violations_total += 1
        if len(self.violations) < rules.LIST_LIMIT:
            self.violations.append(row)

    # BillingTable ---------------------------------------------------------------------------

    def scan_billing(self) -> bool:
        """False when the time budget ran out before the last page."""
        for page in store.billing_pages():
            self.scan_pages["billing"] += 1
            for raw in page:
                self.billing_item(raw)
            if self.out_of_time():
                return False
        return True

    def billing_item(self, raw: Mapping[str, Any]) -> None:
        pk, sk = store.text(raw, "pk"), store.text(raw, "sk")
        if keys.is_account_pk(pk) and keys.is_balance_sk(sk):
            account = keys.account_of(pk)
            pool, kind = keys.parse_balance_sk(sk)
            item = store.convert(raw)
            if kind == keys.BALANCE_LOT:
                self.lots_checked += 1
                lot = item if item is not None else {"sk": sk, "lotId": store.text(raw, "lotId")}
                problem = rules.lot_problem(lot) if item is not None else "unreadable item (a non-integer number)"
                if problem:
                    self.violation(rules.lot_violation(account, pool, lot, problem))
                self.pools[(account, pool)].add_lot(lot)
            elif kind == keys.BALANCE_DEBT:
                if item is None:
                    self.pools[(account, pool)].unreadable += 1
                else:
                    self.pools[(account, pool)].add_shortfall(item)
        elif keys.is_account_pk(pk) and sk == keys.TOTALS_SK:
            self.accounts[keys.account_of(pk)].add_item(store.convert(raw) or {})
        elif keys.is_reservation_key(pk, sk):
            self.reservations_checked += 1
            self.reservation(raw)

    def reservation(self, raw: Mapping[str, Any]) -> None:
        res = store.convert(raw)
        account, pool = store.text(raw, "accountId"), store.text(raw, "poolId")
        if res is None or not account or not pool:
            if account and pool:
                self.pools[(account, pool)].unreadable += 1
            else:
                self.error(f"unreadable reservation item {store.text(raw, 'pk')}")
            return
        if res.get("mode") not in rules.MONEY_MODES:
            return
        charged = rules.apply_reservation(self.pools[(account, pool)], res, self.cutoff)
        if charged is None:
            return
        for system, share in rules.revenue_owed(res, charged):
            self.revenue_expected[system][0] += share
            self.revenue_expected[system][1] += 1

    # LedgerTable ----------------------------------------------------------------------------

    def scan_ledger(self) -> bool:
        """False when the time budget ran out before the last page."""
        for page in store.ledger_pages():
            self.scan_pages["ledger"] += 1
            for raw in page:
                self.ledger_item(raw)
            if self.out_of_time():
                return False
        return True

    def ledger_item(self, raw: Mapping[str, Any]) -> None:
        entry = store.convert(raw)
        account, pool = store.text(raw, "accountId"), store.text(raw, "poolId")
        if entry is None or not account or not pool:
            if account and pool:
                self.pools[(account, pool)].unreadable += 1
            else:
                self.error(f"unreadable ledger entry {store.text(raw, 'pk')} {store.text(raw, 'sk')}")
            return
        if entry.get("entryType") in rules.REVENUE_TYPES:  # one share per entry (earlier deployments)
            self.revenue_share(account, rules.int_or_zero(entry.get("amountMicro")), entry)
            return
        for system, share in rules.revenue_carried(entry):  # a finalize carrying its distribution
            self.revenue_share(system, share, entry)
        rules.apply_entry(self.pools[(account, pool)], entry, self.cutoff)
        rules.apply_lifetime(self.accounts[account], entry)

    def revenue_share(self, system: str, amount: int, entry: Mapping[str, Any]) -> None:
        self.revenue_total[system][0] += amount
        self.revenue_total[system][1] += 1
        self.revenue_shards[system].add(entry["pk"])  # partitions holding its shares
        if entry.get("createdAt", "~") < self.cutoff:
            self.revenue_checked[system][0] += amount
            self.revenue_checked[system][1] += 1

    # results --------------------------------------------------------------------------------

    def system_revenue(self) -> dict[str, SystemRevenue]:
        names = set(ids.SYSTEM_ACCOUNTS) | set(self.revenue_expected) | set(self.revenue_total)
        out = {}
        for name in sorted(names):
            expected, checked, total = self.revenue_expected[name], self.revenue_checked[name], self.revenue_total[name]
            out[name] = SystemRevenue(
                entries_micro=total[0], entries=total[1], shards_with_entries=len(self.revenue_shards[name]),
                settled_entries_micro=checked[0], settled_entries=checked[1],
                expected_micro=expected[0], expected_entries=expected[1],
            )
        return out

    def pages(self) -> ScanPages:
        return ScanPages(billing=self.scan_pages["billing"], ledger=self.scan_pages["ledger"])
