"""The billing config item (BillingTable `CONFIG` / `BILLING`) and its audit trail
(`AUDIT#config` / `<ts>#<actor>`)."""

from __future__ import annotations

from typing import Any

from billing_core.kernel import settings
from billing_core.store import dynamo, keys

AUDIT_PK = "AUDIT#config"


def _table() -> str:
    return settings.get().billing_table


def load() -> dict[str, Any] | None:
    return dynamo.get(_table(), keys.CONFIG_KEY)


def seed(item: dict[str, Any]) -> bool:
    """Create the item unless it exists (a re-run deploy never flips a live system back)."""
    return dynamo.put_item(_table(), {**keys.CONFIG_KEY, **item}, condition="attribute_not_exists(pk)")


def set_mode(mode: str, *, seen_mode: str | None, at: str, by: str, defaults: dict[str, Any]) -> dynamo.Action:
    """Conditioned on the mode it replaces; fills the rest from defaults when the item is new."""
    values: dict[str, Any] = {":mode": mode, ":now": at, ":by": by, ":shares": defaults["revenueShares"],
                              ":pricing": defaults["pricing"]}
    if seen_mode is not None:
        values[":prev"] = seen_mode
    return dynamo.update(
        _table(), keys.CONFIG_KEY,
        "SET #m = :mode, updatedAt = :now, updatedBy = :by, "
        "revenueShares = if_not_exists(revenueShares, :shares), pricing = if_not_exists(pricing, :pricing)",
        condition="#m = :prev" if seen_mode is not None else "attribute_not_exists(#m)",
        names={"#m": "mode"}, values=values, tag="config")


def set_revenue_shares(shares: dict[str, int], *, seen_updated_at: str | None, at: str, by: str,
                       defaults: dict[str, Any]) -> dynamo.Action:
    """Conditioned on the version (updatedAt) it replaces."""
    return dynamo.update(
        _table(), keys.CONFIG_KEY,
        "SET revenueShares = :shares, updatedAt = :now, updatedBy = :by, #m = if_not_exists(#m, :mode), "
        "pricing = if_not_exists(pricing, :pricing)",
        condition="updatedAt = :seen" if seen_updated_at else "attribute_not_exists(updatedAt)",
        names={"#m": "mode"},
        values={":shares": dict(shares), ":now": at, ":by": by, ":mode": defaults["mode"],
                ":pricing": defaults["pricing"], **({":seen": seen_updated_at} if seen_updated_at else {})},
        tag="config")


def audit(action: str, fields: dict[str, Any], *, at: str, by: str) -> dynamo.Action:
    return dynamo.put(_table(), {"pk": AUDIT_PK, "sk": f"{at}#{by}", "action": action, **fields, "actor": by,
                                 "at": at}, tag="audit")
