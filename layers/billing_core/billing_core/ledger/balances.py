"""Balances are read from the lots themselves (one strongly consistent Query), never from a
separately maintained total that could drift from them."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from billing_core.kernel import clock, money, settings
from billing_core.store import dynamo, keys


def _available(totals: dict[str, int]) -> int:
    return totals["available"] - totals["debt"] - totals["unbacked"]


def balance(account_id: str, pool_id: str | None = None) -> dict[str, Any]:
    items = dynamo.query_prefix(settings.billing_table(), keys.account_pk(account_id), keys.balance_prefix(pool_id))
    now_iso = clock.iso(clock.now())
    pools: dict[str, dict[str, int]] = defaultdict(
        lambda: {"available": 0, "reserved": 0, "consumed": 0, "expired": 0, "debt": 0, "unbacked": 0})
    for item in items:
        totals = pools[item["poolId"]]
        if "#DEBT" in item["sk"]:
            totals["debt"] += item.get("debt", 0)
            totals["unbacked"] += item.get("unbacked", 0)
            continue
        expired = item.get("expiresAt") is not None and item["expiresAt"] <= now_iso
        totals["expired" if expired else "available"] += item["available"]
        totals["reserved"] += item["reserved"]
        totals["consumed"] += item["consumed"]
    if pool_id and pool_id not in pools:
        pools[pool_id]  # an empty pool still answers with zeros
    out = []
    for pid in sorted(pools):
        t = pools[pid]
        out.append({
            "poolId": pid,
            # Soft mode: debt is owed and unbacked reservations are held from the pool, so both
            # show as negative availability; the unbacked holds count as reserved.
            "availableMicro": money.fmt(_available(t)),
            "reservedMicro": money.fmt(t["reserved"] + t["unbacked"]),
            "consumedMicro": money.fmt(t["consumed"]),
            "expiredMicro": money.fmt(t["expired"]),
            "debtMicro": money.fmt(t["debt"]),
        })
    total = sum(_available(pools[p]) for p in pools)
    return {"accountId": account_id, "pools": out, "totalAvailableMicro": money.fmt(total)}
