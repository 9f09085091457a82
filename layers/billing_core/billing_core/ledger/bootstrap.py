"""Seed what a fresh deployment needs: the config item (shadow mode, as the runbook says), the
system accounts and the plan catalogue. Idempotent: existing items are never overwritten, so
re-running a deploy cannot flip a live system back to shadow or undo an operator's plan edit."""

from __future__ import annotations

from billing_core.kernel import clock, settings
from billing_core.ledger import config
from billing_core.quotas import plans
from billing_core.store import dynamo, keys


def seed() -> dict[str, list[str]]:
    table = settings.billing_table()
    created, kept = [], []
    now_iso = clock.iso(clock.now())
    items = [("config", config.seed_item())]
    for account_id in keys.SYSTEM_ACCOUNTS:
        items.append((account_id, {
            **keys.system_account_key(account_id), "accountId": account_id,
            "entityType": "system", "createdAt": now_iso,
        }))
    for plan_item in plans.seed_items():
        items.append((f"plan:{plan_item['slug']}", plan_item))
    for name, item in items:
        (created if dynamo.put_item(table, item, condition="attribute_not_exists(pk)") else kept).append(name)
    config.invalidate()
    plans.invalidate()
    return {"created": created, "kept": kept}
