"""Org state items (BillingTable `ORG#<org>` / `STATE`: plan, billing status, trial, overrides,
seats, version) and the per-org audit trail of operator changes (`AUDIT#org#<org>` / `<ts>#<actor>`).

Seats (the current member count) live on the state item, not on a monthly usage item, so adding
members is an `ADD` on it, guarded like the monthly counters (store/usage.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billing_core.kernel import retry, settings
from billing_core.quotas.model import QUOTA_TYPES, OrgChange, OrgState
from billing_core.store import dynamo, keys
from billing_core.store.usage import counter_condition, counters_of

# Placeholder -> attribute of what an operator may set; the order is the update's SET order.
_STATE_NAMES = {"#plan": "planSlug", "#status": "billingStatus", "#trial": "trialEndsAt", "#ovr": "overrides",
                "#seats": "seats"}


def _table() -> str:
    return settings.get().billing_table


def from_item(item: dict[str, Any]) -> OrgState:
    overrides = item.get("overrides") or {}
    return OrgState(
        org_id=item["orgId"],
        plan_slug=item.get("planSlug") or "",
        billing_status=item.get("billingStatus") or "trial",
        trial_ends_at=item.get("trialEndsAt"),
        overrides={q: int(overrides[q]) for q in QUOTA_TYPES if overrides.get(q) is not None},
        seats=int(item.get("seats", 0)),
        version=int(item.get("version", 0)),
        created_at=item.get("createdAt"),
        updated_at=item.get("updatedAt"),
        updated_by=item.get("updatedBy"),
    )


def get(org_id: str) -> OrgState | None:
    item = dynamo.get(_table(), keys.org_state_key(org_id))
    return from_item(item) if item else None


def read_with_usage(org_id: str, period: str) -> tuple[OrgState | None, dict[str, int]]:
    """The state item and one period's monthly counters in one strongly consistent BatchGetItem
    (keys DynamoDB left unprocessed are asked for again, within the one bounded retry)."""
    state_key, usage_key = keys.org_state_key(org_id), keys.org_usage_key(org_id, period)
    found: dict[tuple[str, str], dict[str, Any]] = {}

    def attempt() -> tuple[OrgState | None, dict[str, int]]:
        missing = [k for k in (state_key, usage_key) if (k["pk"], k["sk"]) not in found]
        got, complete = dynamo.batch_get(_table(), missing)
        found.update(got)
        if not complete:
            raise retry.Again("DynamoDB left keys unprocessed")
        state = found.get((state_key["pk"], state_key["sk"]))
        return (from_item(state) if state else None), counters_of(found.get((usage_key["pk"], usage_key["sk"])))

    return retry.bounded(attempt, what="the org's quota items")


def create(state: OrgState) -> bool:
    """First sight of an org: a conditional put; False when another request created it first."""
    item = {
        **keys.org_state_key(state.org_id),
        "entityType": "org",
        "orgId": state.org_id,
        "planSlug": state.plan_slug,
        "billingStatus": state.billing_status,
        "trialEndsAt": state.trial_ends_at,
        "overrides": dict(state.overrides),
        "seats": state.seats,
        "version": state.version,
        "createdAt": state.created_at,
        "updatedAt": state.updated_at,
        "updatedBy": state.updated_by,
    }
    return dynamo.put_item(_table(), item, condition="attribute_not_exists(pk)")


def add_seats(org_id: str, requested: Mapping[str, int], limits: Mapping[str, int] | None) -> dynamo.Action:
    """Members added; with limits, only if the seat count stays within its limit. The org must exist."""
    condition, names, values = (None, {}, {}) if limits is None else counter_condition(requested, limits, ("seats",))
    return dynamo.update(
        _table(), keys.org_state_key(org_id), "ADD #seats :seats",
        tag="seats", condition="attribute_exists(pk)" + (f" AND {condition}" if condition else ""),
        names={"#seats": "seats", **names}, values={":seats": requested["seats"], **values},
    )


def update(org_id: str, change: OrgChange, *, seed: OrgState, at: str, actor: str) -> dynamo.Action:
    """SET what the operator gave; everything else keeps its value, or gets the seed's value when
    the org was never seen (if_not_exists), so this also creates an org in one write."""
    given = {"#plan": change.plan_slug, "#status": change.billing_status, "#trial": change.trial_ends_at,
             "#ovr": dict(change.overrides) if change.overrides is not None else None, "#seats": change.seats}
    seeded = {"#plan": seed.plan_slug, "#status": seed.billing_status, "#trial": seed.trial_ends_at,
              "#ovr": dict(seed.overrides), "#seats": seed.seats}
    names = {"#org": "orgId", "#et": "entityType", "#created": "createdAt", "#at": "updatedAt", "#by": "updatedBy",
             "#v": "version", "#changed": "planChangedAt", **_STATE_NAMES}
    values: dict[str, Any] = {":org": org_id, ":et": "org", ":now": at, ":by": actor, ":one": 1}
    sets = ["#org = if_not_exists(#org, :org)", "#et = if_not_exists(#et, :et)",
            "#created = if_not_exists(#created, :now)", "#at = :now", "#by = :by"]
    for name in _STATE_NAMES:
        placeholder = ":" + name[1:]
        if given.get(name) is not None:
            sets.append(f"{name} = {placeholder}")
            values[placeholder] = given[name]
        else:
            sets.append(f"{name} = if_not_exists({name}, {placeholder})")
            values[placeholder] = seeded[name]
    if change.plan_slug is not None:
        sets.append("#changed = :now")
    else:
        del names["#changed"]
    return dynamo.update(_table(), keys.org_state_key(org_id), "SET " + ", ".join(sets) + " ADD #v :one",
                         tag="state", names=names, values=values)


def audit(org_id: str, change: OrgChange, *, at: str, actor: str) -> dynamo.Action:
    changes = {k: v for k, v in {"planSlug": change.plan_slug, "billingStatus": change.billing_status,
                                 "overrides": change.overrides, "seats": change.seats,
                                 "trialEndsAt": change.trial_ends_at}.items() if v is not None}
    return dynamo.put(_table(), {**keys.org_audit_key(org_id, at, actor), "action": "set_billing", "orgId": org_id,
                                 "changes": changes, "actor": actor, "at": at}, tag="audit")
