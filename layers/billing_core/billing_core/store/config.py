"""The billing config item (BillingTable `CONFIG` / `BILLING`) and its audit trail
(`AUDIT#config` / `<ts>#<actor>`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from billing_core.kernel import settings
from billing_core.ledger.model import MODES, BillingConfig
from billing_core.store import dynamo, keys

AUDIT_PK = "AUDIT#config"


@dataclass(frozen=True)
class Stored:
    """The config as read, with what a change conditions on: the mode attribute as stored and
    the version (updatedAt)."""

    config: BillingConfig
    mode: str | None
    updated_at: str | None


def _table() -> str:
    return settings.get().billing_table


def read() -> Stored | None:
    item = dynamo.get(_table(), keys.CONFIG_KEY)
    if item is None:
        return None
    defaults = BillingConfig.defaults()
    mode = item.get("mode")
    config = BillingConfig(
        mode=mode if mode in MODES else defaults.mode,
        revenue_shares={k: int(v) for k, v in (item.get("revenueShares") or defaults.revenue_shares).items()},
        pricing=item.get("pricing") or defaults.pricing,
        updated_at=item.get("updatedAt"))
    return Stored(config, mode, item.get("updatedAt"))


def seed(config: BillingConfig, *, at: str, by: str) -> bool:
    """Create the item unless it exists (a re-run deploy never flips a live system back)."""
    item = {**keys.CONFIG_KEY, "mode": config.mode, "revenueShares": config.revenue_shares, "pricing": config.pricing,
            "updatedAt": at, "updatedBy": by}
    return dynamo.put_item(_table(), item, condition="attribute_not_exists(pk)")


def _defaults() -> dict[str, Any]:
    defaults = BillingConfig.defaults()
    return {":dmode": defaults.mode, ":dshares": defaults.revenue_shares, ":dpricing": defaults.pricing}


def set_mode(mode: str, *, seen: Stored | None, at: str, by: str) -> dynamo.Action:
    """Conditioned on the mode it replaces; fills the rest from defaults when the item is new."""
    values: dict[str, Any] = {":mode": mode, ":now": at, ":by": by, **_defaults()}
    del values[":dmode"]
    if seen is not None and seen.mode is not None:
        values[":prev"] = seen.mode
    return dynamo.update(
        _table(), keys.CONFIG_KEY,
        "SET #m = :mode, updatedAt = :now, updatedBy = :by, "
        "revenueShares = if_not_exists(revenueShares, :dshares), pricing = if_not_exists(pricing, :dpricing)",
        condition="#m = :prev" if ":prev" in values else "attribute_not_exists(#m)",
        names={"#m": "mode"}, values=values, tag="config")


def set_revenue_shares(shares: dict[str, int], *, seen: Stored | None, at: str, by: str) -> dynamo.Action:
    """Conditioned on the version (updatedAt) it replaces."""
    version = seen.updated_at if seen is not None else None
    return dynamo.update(
        _table(), keys.CONFIG_KEY,
        "SET revenueShares = :shares, updatedAt = :now, updatedBy = :by, #m = if_not_exists(#m, :dmode), "
        "pricing = if_not_exists(pricing, :dpricing)",
        condition="updatedAt = :seen" if version else "attribute_not_exists(updatedAt)",
        names={"#m": "mode"},
        values={":shares": dict(shares), ":now": at, ":by": by, **{k: v for k, v in _defaults().items()
                                                                    if k != ":dshares"},
                **({":seen": version} if version else {})},
        tag="config")


def audit(action: str, fields: dict[str, Any], *, at: str, by: str) -> dynamo.Action:
    return dynamo.put(_table(), {"pk": AUDIT_PK, "sk": f"{at}#{by}", "action": action, **fields, "actor": by,
                                 "at": at}, tag="audit")
