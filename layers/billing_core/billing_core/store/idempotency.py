"""Idempotency records (BillingTable `IDEM#<scope>#sha256(key)` / `IDEM`): written in the same
transaction as the money they guard, kept 90 days (a request's own record, when the caller gave
no key, one day: ledger.idempotency.request_key)."""

from __future__ import annotations

from typing import Any

from billing_core.kernel import clock, settings
from billing_core.store import dynamo, keys

RETENTION_SECONDS = 90 * 24 * 3600
REQUEST_RETENTION_SECONDS = 24 * 3600


def record(scope: str, key: str, request_hash: str, result: dict[str, Any], *,
           retention_seconds: int = RETENTION_SECONDS) -> dynamo.Action:
    now = clock.now()
    item = {**keys.idempotency_key(scope, key), "scope": scope, "requestHash": request_hash, "result": result,
            "createdAt": clock.iso(now), "ttl": int(now) + retention_seconds}
    return dynamo.put(settings.get().billing_table, item, tag="idempotency", condition="attribute_not_exists(pk)")


def get(scope: str, key: str) -> tuple[str, dict[str, Any]] | None:
    """(request hash, stored result) of a key already used, or None."""
    item = dynamo.get(settings.get().billing_table, keys.idempotency_key(scope, key))
    return (item["requestHash"], item["result"]) if item else None
