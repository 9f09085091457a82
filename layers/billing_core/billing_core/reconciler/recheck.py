"""The re-read of one account, confirming the drift its scan showed.

The scan compares mutable lots with the ledger, so an account that fails it is read again on its
own: its ledger partition, its BAL# items, its TOTALS item, then the ledger's recent tail again.
Only when nothing was appended meanwhile is the result used. Every money move writes an entry
into the account's partition in the same transaction, so a quiet tail means the lots read in
between belong to exactly that ledger. Drift the re-read reproduces is confirmed; drift it
clears was traffic.
"""

from __future__ import annotations

from collections import defaultdict

from billing_core.kernel import clock
from billing_core.reconciler import rules
from billing_core.reconciler.model import DriftRow
from billing_core.reconciler.rules import AccountTotals, OpenHolds, PoolTotals
from billing_core.store import keys
from billing_core.store import reconciliation as store

RECHECK_ATTEMPTS = 3


def recheck_account(account_id: str) -> list[DriftRow] | None:
    """The account's failing balance rows from a consistent re-read (empty: the scan's drift was
    traffic), or None when the account kept changing through every attempt. Calls per attempt:
    Query(s) of its ledger partition, Query(s) of its BAL# items, GetItem TOTALS, Query(s) of the
    ledger's recent tail.

    A plain loop, not retry.bounded: this waits for a quiet account rather than retrying a write,
    and its reads keep their own retries (inside bounded they would run once)."""
    for _ in range(RECHECK_ATTEMPTS):
        rows = _attempt(account_id)
        if rows is not None:
            return rows
    return None


def _attempt(account_id: str) -> list[DriftRow] | None:
    """One re-read; None when money moved while it read."""
    tail_from = clock.iso(clock.now() - rules.SETTLE_MARGIN_SECONDS)
    tail_start = keys.entries_from(tail_from)
    pools: dict[str, PoolTotals] = defaultdict(PoolTotals)
    lifetime = AccountTotals()
    holds = OpenHolds()
    recent: set[str] = set()
    for page in store.entry_pages(account_id):
        for raw in page:
            sk = store.text(raw, "sk")
            if sk >= tail_start:
                recent.add(sk)
            entry = store.convert(raw)
            pool = store.text(raw, "poolId")
            if entry is None:
                pools[pool].unreadable += 1
                continue
            if entry.get("entryType") in rules.REVENUE_TYPES:
                continue
            rules.apply_entry(pools[pool], entry, cutoff="")  # cross-checks are not re-read here
            rules.apply_lifetime(lifetime, entry)
            holds.add(entry)
    for page in store.balance_pages(account_id):
        for raw in page:
            pool, kind = keys.parse_balance_sk(store.text(raw, "sk"))
            item = store.convert(raw)
            if item is None:
                pools[pool].unreadable += 1
            elif kind == keys.BALANCE_LOT:
                pools[pool].add_lot(item)
            elif kind == keys.BALANCE_DEBT:
                pools[pool].add_shortfall(item)
    lifetime.add_item(store.account_totals(account_id))
    if store.entry_keys_since(account_id, tail_from) != recent:
        return None  # money moved while we read: read again
    for pool, (on_lots, unbacked) in holds.per_pool().items():
        pools[pool].held_backed += on_lots
        pools[pool].held_unbacked += unbacked
    rows = []
    for pool in sorted(pools):
        rows += rules.failed_rows(account_id, pool, rules.balance_checks(pools[pool]), confirmed=True)
    return rows + rules.failed_rows(account_id, None, rules.lifetime_checks(lifetime), confirmed=True)
