"""Plan items (BillingTable `PLANS` / `PLAN#<slug>`): one partition, so the whole catalogue is one
strongly consistent Query. Money on the item is integers: `priceMonthlyCents` and the overage
prices in micro-units."""

from __future__ import annotations

from typing import Any

from billing_core.kernel import settings
from billing_core.quotas.model import QUOTA_TYPES, OveragePrices, Plan
from billing_core.store import dynamo, keys


def _table() -> str:
    return settings.get().billing_table


def to_item(plan: Plan) -> dict[str, Any]:
    return {
        **keys.plan_key(plan.slug),
        "entityType": "plan",
        "slug": plan.slug,
        "name": plan.name,
        "description": plan.description,
        "priceMonthlyCents": plan.price_monthly_cents,
        "currency": "USD",
        "limits": dict(plan.limits),
        "overage": {"tokensPer1kMicro": plan.overage.tokens_per_1k_micro, "runMicro": plan.overage.run_micro,
                    "seatMicro": plan.overage.seat_micro},
        "active": plan.active,
        "sortOrder": plan.sort_order,
    }


def from_item(item: dict[str, Any]) -> Plan:
    limits = item.get("limits") or {}
    overage = item.get("overage") or {}
    return Plan(
        slug=item["slug"],
        name=item.get("name") or item["slug"],
        price_monthly_cents=int(item.get("priceMonthlyCents", 0)),
        limits={q: int(limits.get(q, 0)) for q in QUOTA_TYPES},
        overage=OveragePrices(tokens_per_1k_micro=int(overage.get("tokensPer1kMicro", 0)),
                              run_micro=int(overage.get("runMicro", 0)), seat_micro=int(overage.get("seatMicro", 0))),
        active=bool(item.get("active", True)),
        sort_order=int(item.get("sortOrder", 0)),
        description=item.get("description") or "",
    )


def load_all() -> list[Plan]:
    """Every plan in the table, active or not (items without a slug are skipped). One Query."""
    items = dynamo.query_all(_table(), key_name="pk", key_value=keys.PLANS_PK,
                             sort=dynamo.Range("begins_with", "sk", keys.PLAN_PREFIX), consistent=True)
    return [from_item(item) for item in items if item.get("slug")]


def seed(plan: Plan) -> bool:
    """Write a seeded plan unless it exists (bootstrap never overwrites an operator's edit)."""
    return dynamo.put_item(_table(), to_item(plan), condition="attribute_not_exists(pk)")


def assignable(slug: str) -> dynamo.Action:
    """A ConditionCheck that the plan exists and is active when the transaction commits."""
    return dynamo.check(_table(), keys.plan_key(slug), "attribute_exists(pk) AND #active = :yes", tag="plan",
                        names={"#active": "active"}, values={":yes": True})
