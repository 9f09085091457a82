"""Org billing state: which plan an org is on, its billing status, its trial, per-org limit
overrides and its seats (current member count). One item per org (`keys.org_state_key`).

An org is seeded the first time any quota route sees it: the default plan
(BILLING_DEFAULT_PLAN_SLUG) on a 30-day trial, with a `PutItem` conditioned on
`attribute_not_exists(pk)`, so two concurrent first requests agree on one state (the loser of
the put reads the winner's item).

Billing status is stored as set (`trial`, `active`, `past_due`, `canceled`); a `trial` whose
`trialEndsAt` has passed is *reported and enforced* as `past_due` (grace: limits still apply)
until an operator sets another status. `canceled` refuses all new usage (see quotas.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from billing_core.kernel import clock, retry, settings
from billing_core.kernel.context import Context
from billing_core.kernel.errors import Contention
from billing_core.quotas import plans
from billing_core.store import dynamo, keys, transaction

BILLING_STATUSES = ("trial", "active", "past_due", "canceled")
TRIAL_SECONDS = 30 * 86_400
SEED_ACTOR = "system:auto-seed"


@dataclass(frozen=True)
class OrgState:
    org_id: str
    plan_slug: str
    billing_status: str  # as stored
    trial_ends_at: str | None
    overrides: dict[str, int]  # tokens?, runs?, seats?: replaces the plan's included limit
    seats: int  # current members
    version: int
    created_at: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None

    @staticmethod
    def from_item(item: dict[str, Any]) -> OrgState:
        overrides = item.get("overrides") or {}
        return OrgState(
            org_id=item["orgId"],
            plan_slug=item.get("planSlug") or plans.default_plan().slug,
            billing_status=item.get("billingStatus") or "trial",
            trial_ends_at=item.get("trialEndsAt"),
            overrides={q: int(overrides[q]) for q in plans.QUOTA_TYPES if overrides.get(q) is not None},
            seats=int(item.get("seats", 0)),
            version=int(item.get("version", 0)),
            created_at=item.get("createdAt"),
            updated_at=item.get("updatedAt"),
            updated_by=item.get("updatedBy"),
        )

    def effective_status(self, now_iso: str) -> str:
        if self.billing_status == "trial" and self.trial_ends_at is not None and self.trial_ends_at <= now_iso:
            return "past_due"
        return self.billing_status

    def limits(self, plan: plans.Plan) -> dict[str, int]:
        """Included monthly limits: the plan's, with this org's overrides applied."""
        return {q: self.overrides.get(q, plan.limits[q]) for q in plans.QUOTA_TYPES}

    def to_wire(self, now_iso: str, current: plans.Catalogue | None = None) -> dict[str, Any]:
        plan = plans.for_org(self.plan_slug, current)
        return {
            "orgId": self.org_id,
            "planSlug": self.plan_slug,
            "billingStatus": self.effective_status(now_iso),
            "storedBillingStatus": self.billing_status,
            "trialEndsAt": self.trial_ends_at,
            "overrides": dict(self.overrides),
            "limits": self.limits(plan),
            "seats": self.seats,
            "updatedAt": self.updated_at,
            "updatedBy": self.updated_by,
        }


def _table() -> str:
    return settings.get().billing_table


def seed_item(org_id: str, now: float, current: plans.Catalogue | None = None) -> dict[str, Any]:
    now_iso = clock.iso(now)
    return {
        **keys.org_state_key(org_id),
        "entityType": "org",
        "orgId": org_id,
        "planSlug": plans.default_plan(current).slug,
        "billingStatus": "trial",
        "trialEndsAt": clock.iso(now + TRIAL_SECONDS),
        "overrides": {},
        "seats": 0,
        "version": 1,
        "createdAt": now_iso,
        "updatedAt": now_iso,
        "updatedBy": SEED_ACTOR,
    }


def load(org_id: str) -> OrgState | None:
    item = dynamo.get(_table(), keys.org_state_key(org_id))
    return OrgState.from_item(item) if item else None


def seed(org_id: str, current: plans.Catalogue | None = None) -> OrgState:
    """First sight of an org: a conditional put; whoever loses the race reads the winner's item."""
    item = seed_item(org_id, clock.now(), current)
    if dynamo.put_item(_table(), item, condition="attribute_not_exists(pk)"):
        return OrgState.from_item(item)
    existing = load(org_id)
    if existing is None:  # deleted between the failed put and the read: an operator's doing
        raise Contention("the org's billing state changed while it was being created; retry")
    return existing


def load_or_seed(org_id: str, current: plans.Catalogue | None = None) -> OrgState:
    return load(org_id) or seed(org_id, current)


def from_item_or_seed(org_id: str, item: dict[str, Any] | None, current: plans.Catalogue | None = None
                      ) -> OrgState:
    return OrgState.from_item(item) if item else seed(org_id, current)


def _audit_key(org_id: str, now_iso: str, actor: str) -> dict[str, str]:
    """Per-org audit trail of operator changes (BillingTable, `AUDIT#org#<org>` / `<ts>#<actor>`)."""
    return {"pk": f"AUDIT#org#{org_id}", "sk": f"{now_iso}#{actor}"}


_STATE_NAMES = {"#plan": "planSlug", "#status": "billingStatus", "#trial": "trialEndsAt", "#ovr": "overrides",
                "#seats": "seats"}


def _state_update(org_id: str, given: dict[str, Any], now: float, actor: str, *, plan_changed: bool,
                  default_slug: str) -> dynamo.Action:
    """SET what the operator gave; everything else keeps its value, or gets the seed's value when
    the org was never seen (if_not_exists), so this also creates an org in one write."""
    now_iso = clock.iso(now)
    seeded = {"#plan": default_slug, "#status": "trial", "#trial": clock.iso(now + TRIAL_SECONDS),
              "#ovr": {}, "#seats": 0}
    names = {"#org": "orgId", "#et": "entityType", "#created": "createdAt", "#at": "updatedAt", "#by": "updatedBy",
             "#v": "version", "#changed": "planChangedAt", **_STATE_NAMES}
    values: dict[str, Any] = {":org": org_id, ":et": "org", ":now": now_iso, ":by": actor, ":one": 1}
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
    if plan_changed:
        sets.append("#changed = :now")
    else:
        del names["#changed"]
    return dynamo.update(_table(), keys.org_state_key(org_id), "SET " + ", ".join(sets) + " ADD #v :one",
                         tag="state", names=names, values=values)


def set_billing(
    ctx: Context,
    org_id: str,
    *,
    plan_slug: str | None,
    billing_status: str | None,
    overrides: dict[str, int] | None,
    seats: int | None,
    trial_ends_at: str | None,
) -> dict[str, Any]:
    """An operator's change to an org: plan, status, overrides (replaced as a whole), seats
    (member count, absolute), trial end. Creates the org (trial on the default plan) when it was
    never seen. One TransactWriteItems: the state update, a ConditionCheck that the new plan
    exists and is active (when plans are in the table), an audit item and the caller's rate
    counter. Then one GetItem for the response."""
    current = plans.catalogue()
    plan = plans.require_assignable(plan_slug, current) if plan_slug else None
    table = _table()
    actor = ctx.actor

    def attempt() -> dict[str, Any]:
        nonlocal current, plan
        now = clock.now()
        now_iso = clock.iso(now)
        given = {"#plan": plan.slug if plan else None, "#status": billing_status, "#trial": trial_ends_at,
                 "#ovr": dict(overrides) if overrides is not None else None, "#seats": seats}
        state_update = _state_update(org_id, given, now, actor, plan_changed=plan is not None,
                                     default_slug=plans.default_plan(current).slug)
        changes = {k: v for k, v in {"planSlug": plan_slug, "billingStatus": billing_status, "overrides": overrides,
                                     "seats": seats, "trialEndsAt": trial_ends_at}.items() if v is not None}
        actions = [state_update, dynamo.put(table, {**_audit_key(org_id, now_iso, actor), "action": "set_billing",
                                                    "orgId": org_id, "changes": changes, "actor": actor,
                                                    "at": now_iso}, tag="audit")]
        if plan is not None and current.from_table:
            actions.insert(0, dynamo.check(table, keys.plan_key(plan.slug), "attribute_exists(pk) AND #active = :yes",
                                           tag="plan", names={"#active": "active"}, values={":yes": True}))
        try:
            transaction.commit(actions, ctx)
        except dynamo.TransactionCancelled as cancelled:
            if "plan" in cancelled.failed:
                plans.invalidate()  # retired or removed since it was cached: answer from the table
                current = plans.catalogue()
                plan = plans.require_assignable(plan.slug, current) if plan else None
                raise retry.Again("the plan changed") from cancelled
            raise
        state = load(org_id)
        if state is None:
            raise Contention("the org's billing state changed while it was being updated; retry")
        return state.to_wire(clock.iso(clock.now()), current)

    return retry.bounded(attempt, what="the org's billing state")
