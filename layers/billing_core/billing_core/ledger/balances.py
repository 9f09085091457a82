"""Balances are read from the lots themselves (one strongly consistent Query), never from a
separately maintained total that could drift from them."""

from __future__ import annotations

from billing_core.kernel import clock
from billing_core.ledger.model import Balance, PoolBalance, PoolSnapshot
from billing_core.store import accounts as account_store
from billing_core.store import lots as lot_store


def _pool(pool_id: str, pool: PoolSnapshot, now_iso: str) -> PoolBalance:
    live = sum(lot.available for lot in pool.lots if lot.live(now_iso))
    expired = sum(lot.available for lot in pool.lots if not lot.live(now_iso))
    return PoolBalance(
        pool_id=pool_id,
        # Soft mode: debt is owed and unbacked reservations are held from the pool, so both show
        # as negative availability; the unbacked holds count as reserved.
        available_micro=live - pool.debt - pool.unbacked,
        reserved_micro=sum(lot.reserved for lot in pool.lots) + pool.unbacked,
        consumed_micro=sum(lot.consumed for lot in pool.lots),
        expired_micro=expired,
        debt_micro=pool.debt,
    )


def balance(account_id: str, pool_id: str | None = None) -> Balance:
    """One Query. An asked-for pool that holds nothing answers with zeros."""
    now_iso = clock.iso(clock.now())
    pools = lot_store.read_account(account_id, pool_id)
    if pool_id and pool_id not in pools:
        pools[pool_id] = PoolSnapshot(lots=[])
    shown = [_pool(pid, pools[pid], now_iso) for pid in sorted(pools)]
    return Balance(account_id, shown, sum(p.available_micro for p in shown))


def operator_balance(account_id: str, pool_id: str | None = None) -> Balance:
    """An operator's view adds the lifetime totals (two calls: the Query and one GetItem)."""
    paid, refunded = account_store.lifetime_totals(account_id)
    view = balance(account_id, pool_id)
    return Balance(view.account_id, view.pools, view.total_available_micro, paid, refunded)
