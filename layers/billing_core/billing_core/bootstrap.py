"""Seed what a fresh deployment needs: the config item (shadow mode, as the runbook says) and
the system accounts. Idempotent: existing items are never overwritten, so re-running a deploy
cannot flip a live system back to shadow."""

from __future__ import annotations

from billing_core import clock, config, dynamo, keys, settings


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
    for name, item in items:
        (created if dynamo.put_item(table, item, condition="attribute_not_exists(pk)") else kept).append(name)
    config.invalidate()
    return {"created": created, "kept": kept}
