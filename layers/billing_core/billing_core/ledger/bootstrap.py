"""Seed what a fresh deployment needs: the config item (shadow mode, as the runbook says), the
system accounts and the plan catalogue. Idempotent: existing items are never overwritten, so
re-running a deploy cannot flip a live system back to shadow or undo an operator's plan edit."""

from __future__ import annotations

from billing_core.kernel import clock, ids
from billing_core.ledger import config
from billing_core.quotas import plans
from billing_core.store import accounts as account_store


def seed() -> dict[str, list[str]]:
    now_iso = clock.iso(clock.now())
    made = {"config": config.seed()}
    for account_id in ids.SYSTEM_ACCOUNTS:
        made[account_id] = account_store.seed_system_account(account_id, now_iso)
    for plan in plans.DEFAULT_PLANS:
        made[f"plan:{plan.slug}"] = plans.seed(plan)
    config.invalidate()
    plans.invalidate()
    return {"created": [name for name, new in made.items() if new],
            "kept": [name for name, new in made.items() if not new]}
