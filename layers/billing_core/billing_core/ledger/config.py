"""Billing configuration: mode, revenue shares and public pricing, in one DynamoDB item.

A mode change takes effect without a deploy. Each execution environment caches the item for
BILLING_CONFIG_CACHE_SECONDS (5 s in production, 0 locally) so a reserve costs one Query and
one transaction instead of three calls; the instance that wrote a change sees it at once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from billing_core.kernel import clock, settings
from billing_core.store import dynamo, keys
from billing_core.store.cached import Cached

MODES = ("shadow", "soft", "live")

# Basis points of each finalized (consumed) amount credited to the system accounts.
DEFAULT_REVENUE_SHARES: dict[str, int] = {
    "sys-foundation": 1000,
    "sys-commons": 500,
    "sys-community-pool": 250,
}

DEFAULT_PRICING: dict[str, Any] = {
    "pools": [
        {"poolId": "general", "description": "Default pool; spendable on every metered resource"},
    ],
    "rates": [
        {"resource": "llm.input_tokens", "unit": "1k_tokens", "priceMicro": "3000"},
        {"resource": "llm.output_tokens", "unit": "1k_tokens", "priceMicro": "15000"},
        {"resource": "agent.run", "unit": "run", "priceMicro": "20000"},
        {"resource": "api.request", "unit": "request", "priceMicro": "100"},
    ],
    "tiers": [
        {"name": "standard", "minMonthlySpendMicro": "0", "discountBps": 0},
        {"name": "volume", "minMonthlySpendMicro": "500000000", "discountBps": 500},
        {"name": "scale", "minMonthlySpendMicro": "5000000000", "discountBps": 1000},
    ],
}


@dataclass(frozen=True)
class BillingConfig:
    mode: str
    revenue_shares: dict[str, int]
    pricing: dict[str, Any]
    updated_at: str | None = None

    @staticmethod
    def defaults() -> BillingConfig:
        return BillingConfig("shadow", dict(DEFAULT_REVENUE_SHARES), copy.deepcopy(DEFAULT_PRICING))


def _load() -> BillingConfig:
    item = dynamo.get(settings.billing_table(), keys.CONFIG_KEY)
    return _from_item(item) if item else BillingConfig.defaults()


_cache: Cached[BillingConfig] = Cached(_load)


def invalidate() -> None:
    _cache.invalidate()


def _from_item(item: dict[str, Any]) -> BillingConfig:
    defaults = BillingConfig.defaults()
    mode = item.get("mode")
    return BillingConfig(
        mode=mode if mode in MODES else defaults.mode,
        revenue_shares={k: int(v) for k, v in (item.get("revenueShares") or defaults.revenue_shares).items()},
        pricing=item.get("pricing") or defaults.pricing,
        updated_at=item.get("updatedAt"),
    )


def current() -> BillingConfig:
    """The config item, or the documented defaults (shadow mode) when it does not exist yet."""
    return _cache.get()


def current_or_defaults() -> tuple[BillingConfig, bool]:
    """For public reads that must answer even when the table is unreadable: (config, from_defaults)."""
    try:
        return current(), False
    except Exception:
        return BillingConfig.defaults(), True


def seed_item() -> dict[str, Any]:
    defaults = BillingConfig.defaults()
    return {
        **keys.CONFIG_KEY,
        "mode": defaults.mode,
        "revenueShares": defaults.revenue_shares,
        "pricing": defaults.pricing,
        "updatedAt": clock.iso(clock.now()),
        "updatedBy": "bootstrap",
    }


def _audited_update(*, actor: str, rate: Any, action: str,
                    build: Callable[[dict[str, Any] | None, str], tuple[dynamo.Action, dict[str, Any], dict[str, Any]]],
                    ) -> dict[str, Any]:
    """One audited config change in one transaction: `build(item, now)` returns the update
    (tag "config", conditioned on what it read), the audit fields and the response. When the
    item changed meanwhile, read it again and rebuild."""
    from billing_core.kernel.errors import Contention
    from billing_core.store import ratelimit

    table = settings.billing_table()
    for _ in range(5):
        item = dynamo.get(table, keys.CONFIG_KEY)
        now_iso = clock.iso(clock.now())
        update, audit, response = build(item, now_iso)
        actions = [update, dynamo.put(table, {"pk": "AUDIT#config", "sk": f"{now_iso}#{actor}", "action": action,
                                              **audit, "actor": actor, "at": now_iso}, tag="audit")]
        try:
            ratelimit.transact(actions, rate)
        except dynamo.TransactionCancelled as cancelled:
            if "config" in cancelled.failed or cancelled.conflict:
                continue
            raise
        invalidate()
        return response
    raise Contention("the billing config kept changing; retry the request")


def set_mode(mode: str, *, actor: str, rate: Any) -> dict[str, Any]:
    """Switch the billing mode, audited, in one transaction conditioned on the mode it replaces."""
    from billing_core.kernel.errors import InvalidInput

    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}", code="INVALID_MODE")

    def build(item: dict[str, Any] | None, now_iso: str) -> tuple[dynamo.Action, dict[str, Any], dict[str, Any]]:
        previous = _from_item(item).mode if item else BillingConfig.defaults().mode
        condition = "#m = :prev" if item and item.get("mode") else "attribute_not_exists(#m)"
        defaults = BillingConfig.defaults()
        values: dict[str, Any] = {":mode": mode, ":now": now_iso, ":by": actor, ":shares": defaults.revenue_shares,
                                  ":pricing": defaults.pricing}
        if item and item.get("mode"):
            values[":prev"] = item["mode"]
        update = dynamo.update(
            settings.billing_table(), keys.CONFIG_KEY,
            "SET #m = :mode, updatedAt = :now, updatedBy = :by, "
            "revenueShares = if_not_exists(revenueShares, :shares), pricing = if_not_exists(pricing, :pricing)",
            condition=condition, names={"#m": "mode"}, values=values, tag="config",
        )
        return (update, {"previousMode": previous, "mode": mode},
                {"mode": mode, "previousMode": previous, "updatedAt": now_iso, "updatedBy": actor})

    return _audited_update(actor=actor, rate=rate, action="set_mode", build=build)


def set_revenue_shares(shares: dict[str, int], *, actor: str, rate: Any) -> dict[str, Any]:
    """Replace the revenue shares (basis points per system account), audited. New reservations
    carry the shares in force when they were made, so a change never re-prices pending work."""
    from billing_core.kernel.errors import InvalidInput

    unknown = sorted(set(shares) - set(keys.SYSTEM_ACCOUNTS))
    if unknown:
        raise InvalidInput("revenue shares go to system accounts only", code="INVALID_REVENUE_SHARES",
                           details={"unknownAccounts": unknown, "allowed": list(keys.SYSTEM_ACCOUNTS)})
    if any(not 0 <= bps <= 10_000 for bps in shares.values()) or sum(shares.values()) > 10_000:
        raise InvalidInput("shares are basis points, 0..10000 each, at most 10000 in total",
                           code="INVALID_REVENUE_SHARES")

    def build(item: dict[str, Any] | None, now_iso: str) -> tuple[dynamo.Action, dict[str, Any], dict[str, Any]]:
        previous = (_from_item(item) if item else BillingConfig.defaults()).revenue_shares
        seen = item.get("updatedAt") if item else None
        defaults = BillingConfig.defaults()
        update = dynamo.update(
            settings.billing_table(), keys.CONFIG_KEY,
            "SET revenueShares = :shares, updatedAt = :now, updatedBy = :by, #m = if_not_exists(#m, :mode), "
            "pricing = if_not_exists(pricing, :pricing)",
            condition="updatedAt = :seen" if seen else "attribute_not_exists(updatedAt)",
            names={"#m": "mode"},
            values={":shares": dict(shares), ":now": now_iso, ":by": actor, ":mode": defaults.mode,
                    ":pricing": defaults.pricing, **({":seen": seen} if seen else {})},
            tag="config",
        )
        return (update, {"previousRevenueShares": previous, "revenueShares": dict(shares)},
                {"revenueShares": dict(shares), "previousRevenueShares": previous, "updatedAt": now_iso,
                 "updatedBy": actor})

    return _audited_update(actor=actor, rate=rate, action="set_revenue_shares", build=build)


def describe() -> dict[str, Any]:
    cfg = current()
    return {"mode": cfg.mode, "revenueShares": cfg.revenue_shares, "updatedAt": cfg.updated_at}
