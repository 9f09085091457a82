"""Org billing state: which plan an org is on, its billing status, its trial, per-org limit
overrides and its seats (current member count). One item per org (store/orgs.py).

An org is seeded the first time any quota route sees it: the default plan
(BILLING_DEFAULT_PLAN_SLUG) on a 30-day trial, with a `PutItem` conditioned on
`attribute_not_exists(pk)`, so two concurrent first requests agree on one state (the loser of
the put reads the winner's item).

Billing status is stored as set (`trial`, `active`, `past_due`, `canceled`); a `trial` whose
`trialEndsAt` has passed is *reported and enforced* as `past_due` (grace: limits still apply)
until an operator sets another status. `canceled` refuses all new usage (see usage.py).
"""

from __future__ import annotations

import dataclasses

from billing_core.kernel import clock, retry
from billing_core.kernel.context import Context
from billing_core.kernel.errors import Contention
from billing_core.quotas import plans
from billing_core.quotas.model import Catalogue, OrgBilling, OrgChange, OrgState
from billing_core.store import dynamo, transaction
from billing_core.store import orgs as store
from billing_core.store import plans as plan_store

TRIAL_SECONDS = 30 * 86_400
SEED_ACTOR = "system:auto-seed"


def resolved(state: OrgState) -> OrgState:
    """An item that names no plan (edited by hand) is on the default plan."""
    return state if state.plan_slug else dataclasses.replace(state, plan_slug=plans.default_plan().slug)


def seed_state(org_id: str, now: float, current: Catalogue | None = None) -> OrgState:
    """What an org never seen before is: a trial of the default plan, no overrides, no members."""
    now_iso = clock.iso(now)
    return OrgState(org_id=org_id, plan_slug=plans.default_plan(current).slug, billing_status="trial",
                    trial_ends_at=clock.iso(now + TRIAL_SECONDS), overrides={}, seats=0, version=1,
                    created_at=now_iso, updated_at=now_iso, updated_by=SEED_ACTOR)


def load(org_id: str) -> OrgState | None:
    state = store.get(org_id)
    return resolved(state) if state else None


def seed(org_id: str, current: Catalogue | None = None) -> OrgState:
    """First sight of an org: a conditional put; whoever loses the race reads the winner's item."""
    state = seed_state(org_id, clock.now(), current)
    if store.create(state):
        return state
    existing = load(org_id)
    if existing is None:  # deleted between the failed put and the read: an operator's doing
        raise Contention("the org's billing state changed while it was being created; retry")
    return existing


def load_or_seed(org_id: str, current: Catalogue | None = None) -> OrgState:
    return load(org_id) or seed(org_id, current)


def found_or_seed(org_id: str, state: OrgState | None, current: Catalogue | None = None) -> OrgState:
    """A state already read (None: the org was never seen, so seed it)."""
    return resolved(state) if state else seed(org_id, current)


def billing_of(state: OrgState, now_iso: str, current: Catalogue | None = None) -> OrgBilling:
    plan = plans.for_org(state.plan_slug, current)
    return OrgBilling(org_id=state.org_id, plan_slug=state.plan_slug, billing_status=state.effective_status(now_iso),
                      stored_billing_status=state.billing_status, trial_ends_at=state.trial_ends_at,
                      overrides=dict(state.overrides), limits=state.limits(plan), seats=state.seats,
                      updated_at=state.updated_at, updated_by=state.updated_by)


def set_billing(
    ctx: Context,
    org_id: str,
    *,
    plan_slug: str | None,
    billing_status: str | None,
    overrides: dict[str, int] | None,
    seats: int | None,
    trial_ends_at: str | None,
) -> OrgBilling:
    """An operator's change to an org: plan, status, overrides (replaced as a whole), seats
    (member count, absolute), trial end. Creates the org (trial on the default plan) when it was
    never seen. One TransactWriteItems: the state update, a ConditionCheck that the new plan
    exists and is active (when plans are in the table), an audit item and the caller's rate
    counter. Then one GetItem for the response."""
    current = plans.catalogue()
    plan = plans.require_assignable(plan_slug, current) if plan_slug else None

    def attempt() -> OrgBilling:
        nonlocal current, plan
        now = clock.now()
        now_iso = clock.iso(now)
        change = OrgChange(plan_slug=plan.slug if plan else None, billing_status=billing_status,
                           overrides=overrides, seats=seats, trial_ends_at=trial_ends_at)
        actions = [store.update(org_id, change, seed=seed_state(org_id, now, current), at=now_iso, actor=ctx.actor),
                   store.audit(org_id, change, at=now_iso, actor=ctx.actor)]
        if plan is not None and current.from_table:
            actions.insert(0, plan_store.assignable(plan.slug))
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
        return billing_of(state, clock.iso(clock.now()), current)

    return retry.bounded(attempt, what="the org's billing state")
