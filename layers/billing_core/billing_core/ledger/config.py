"""Billing configuration: mode, revenue shares and public pricing, in one DynamoDB item.

A mode change takes effect without a deploy. Each execution environment caches the item for
BILLING_CONFIG_CACHE_SECONDS (5 s in production, 0 locally) so a reserve costs one Query and
one transaction instead of three calls; the instance that wrote a change sees it at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from billing_core.kernel import clock, ids, retry
from billing_core.kernel.context import Context
from billing_core.kernel.errors import InvalidInput
from billing_core.ledger.model import MODES, BillingConfig
from billing_core.store import config as store
from billing_core.store import dynamo, transaction
from billing_core.store.cached import Cached


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


def _load() -> BillingConfig:
    stored = store.read()
    return stored.config if stored else BillingConfig.defaults()


_cache: Cached[BillingConfig] = Cached(_load)


def invalidate() -> None:
    _cache.invalidate()


def current() -> BillingConfig:
    """The config item, or the documented defaults (shadow mode) when it does not exist yet."""
    return _cache.get()


def pricing() -> Pricing:
    """Public pricing; answers the defaults when the table is unreadable."""
    try:
        cfg, source = current(), "config"
    except Exception:
        cfg, source = BillingConfig.defaults(), "defaults"
    return Pricing(cfg.mode, cfg.pricing.get("pools", []), cfg.pricing.get("rates", []), cfg.pricing.get("tiers", []),
                   source)


def seed() -> bool:
    """The documented defaults (shadow mode), unless a config exists: a re-run deploy never
    flips a live system back."""
    return store.seed(BillingConfig.defaults(), at=clock.iso(clock.now()), by="bootstrap")


T = TypeVar("T")


def _audited(ctx: Context, action: str,
             build: Callable[[store.Stored | None, str], tuple[dynamo.Action, dict[str, Any], T]]) -> T:
    """One audited config change in one transaction: `build(item, now)` returns the update
    (conditioned on what it read), the audit fields and the result. When the item changed
    meanwhile, read it again and rebuild. Calls per attempt: GetItem + TransactWriteItems."""
    def attempt() -> T:
        seen = store.read()
        now_iso = clock.iso(clock.now())
        update, audit, result = build(seen, now_iso)
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

    def build(seen: store.Stored | None, now_iso: str) -> tuple[dynamo.Action, dict[str, Any], ModeChanged]:
        previous = (seen.config if seen else BillingConfig.defaults()).mode
        return (store.set_mode(mode, seen=seen, at=now_iso, by=ctx.actor),
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

    def build(seen: store.Stored | None, now_iso: str) -> tuple[dynamo.Action, dict[str, Any], SharesChanged]:
        previous = (seen.config if seen else BillingConfig.defaults()).revenue_shares
        return (store.set_revenue_shares(shares, seen=seen, at=now_iso, by=ctx.actor),
                {"previousRevenueShares": previous, "revenueShares": dict(shares)},
                SharesChanged(dict(shares), previous, now_iso, ctx.actor))

    return _audited(ctx, "set_revenue_shares", build)
