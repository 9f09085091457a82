"""Billing configuration: mode, revenue shares and public pricing, in one DynamoDB item.

A mode change takes effect without a deploy. Each execution environment caches the item for
BILLING_CONFIG_CACHE_SECONDS (5 s in production, 0 locally) so a reserve costs one Query and
one transaction instead of three calls; the instance that wrote a change sees it at once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from billing_core.kernel import clock, ids, retry
from billing_core.kernel.context import Context
from billing_core.kernel.errors import InvalidInput
from billing_core.ledger.model import MODES
from billing_core.store import config as store
from billing_core.store import dynamo, transaction
from billing_core.store.cached import Cached

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


@dataclass(frozen=True)
class Pricing:
    billing_mode: str
    pools: list[dict[str, Any]]
    rates: list[dict[str, Any]]
    tiers: list[dict[str, Any]]
    source: str  # config | defaults (the table could not be read)


@dataclass(frozen=True)
class ModeChanged:
    mode: str
    previous_mode: str
    updated_at: str
    updated_by: str


@dataclass(frozen=True)
class SharesChanged:
    revenue_shares: dict[str, int]
    previous_revenue_shares: dict[str, int]
    updated_at: str
    updated_by: str


def _from_item(item: dict[str, Any] | None) -> BillingConfig:
    defaults = BillingConfig.defaults()
    if item is None:
        return defaults
    mode = item.get("mode")
    return BillingConfig(
        mode=mode if mode in MODES else defaults.mode,
        revenue_shares={k: int(v) for k, v in (item.get("revenueShares") or defaults.revenue_shares).items()},
        pricing=item.get("pricing") or defaults.pricing,
        updated_at=item.get("updatedAt"),
    )


_cache: Cached[BillingConfig] = Cached(lambda: _from_item(store.load()))


def invalidate() -> None:
    _cache.invalidate()


def current() -> BillingConfig:
    """The config item, or the documented defaults (shadow mode) when it does not exist yet."""
    return _cache.get()


def describe() -> BillingConfig:
    return current()


def pricing() -> Pricing:
    """Public pricing; answers the defaults when the table is unreadable."""
    try:
        cfg, source = current(), "config"
    except Exception:
        cfg, source = BillingConfig.defaults(), "defaults"
    return Pricing(cfg.mode, cfg.pricing.get("pools", []), cfg.pricing.get("rates", []), cfg.pricing.get("tiers", []),
                   source)


def seed_item() -> dict[str, Any]:
    defaults = BillingConfig.defaults()
    return {"mode": defaults.mode, "revenueShares": defaults.revenue_shares, "pricing": defaults.pricing,
            "updatedAt": clock.iso(clock.now()), "updatedBy": "bootstrap"}


def _defaults_map() -> dict[str, Any]:
    defaults = BillingConfig.defaults()
    return {"mode": defaults.mode, "revenueShares": defaults.revenue_shares, "pricing": defaults.pricing}


T = TypeVar("T")


def _audited(ctx: Context, action: str,
             build: Callable[[dict[str, Any] | None, str], tuple[dynamo.Action, dict[str, Any], T]]) -> T:
    """One audited config change in one transaction: `build(item, now)` returns the update
    (conditioned on what it read), the audit fields and the result. When the item changed
    meanwhile, read it again and rebuild. Calls per attempt: GetItem + TransactWriteItems."""
    def attempt() -> T:
        item = store.load()
        now_iso = clock.iso(clock.now())
        update, audit, result = build(item, now_iso)
        try:
            transaction.commit([update, store.audit(action, audit, at=now_iso, by=ctx.actor)], ctx)
        except dynamo.TransactionCancelled as cancelled:
            if "config" in cancelled.failed:
                raise retry.Again("the config changed meanwhile") from cancelled
            raise
        return result

    result = retry.bounded(attempt, what="the billing config")
    invalidate()
    return result


def set_mode(ctx: Context, mode: str) -> ModeChanged:
    """Switch the billing mode, audited, conditioned on the mode it replaces."""
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}", code="INVALID_MODE")

    def build(item: dict[str, Any] | None, now_iso: str) -> tuple[dynamo.Action, dict[str, Any], ModeChanged]:
        previous = _from_item(item).mode
        seen = item.get("mode") if item else None
        return (store.set_mode(mode, seen_mode=seen, at=now_iso, by=ctx.actor, defaults=_defaults_map()),
                {"previousMode": previous, "mode": mode}, ModeChanged(mode, previous, now_iso, ctx.actor))

    return _audited(ctx, "set_mode", build)


def set_revenue_shares(ctx: Context, shares: dict[str, int]) -> SharesChanged:
    """Replace the revenue shares (basis points per system account), audited. New reservations
    carry the shares in force when they were made, so a change never re-prices pending work."""
    unknown = sorted(set(shares) - set(ids.SYSTEM_ACCOUNTS))
    if unknown:
        raise InvalidInput("revenue shares go to system accounts only", code="INVALID_REVENUE_SHARES",
                           details={"unknownAccounts": unknown, "allowed": list(ids.SYSTEM_ACCOUNTS)})
    if any(not 0 <= bps <= 10_000 for bps in shares.values()) or sum(shares.values()) > 10_000:
        raise InvalidInput("shares are basis points, 0..10000 each, at most 10000 in total",
                           code="INVALID_REVENUE_SHARES")

    def build(item: dict[str, Any] | None, now_iso: str) -> tuple[dynamo.Action, dict[str, Any], SharesChanged]:
        previous = _from_item(item).revenue_shares
        return (store.set_revenue_shares(shares, seen_updated_at=item.get("updatedAt") if item else None,
                                         at=now_iso, by=ctx.actor, defaults=_defaults_map()),
                {"previousRevenueShares": previous, "revenueShares": dict(shares)},
                SharesChanged(dict(shares), previous, now_iso, ctx.actor))

    return _audited(ctx, "set_revenue_shares", build)
