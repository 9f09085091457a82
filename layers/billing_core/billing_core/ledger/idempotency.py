"""Exactly-once requests. The record that makes a request idempotent is written in the same
TransactWriteItems as the money it moves; a replay finds it and gets the original response."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from billing_core.kernel import clock, settings
from billing_core.kernel.errors import Conflict
from billing_core.store import dynamo, keys, ratelimit

RETENTION_SECONDS = 90 * 24 * 3600


def request_hash(command: dict[str, Any]) -> str:
    """Hash of the validated request (not the raw body): key order and 5 vs "5" do not matter."""
    canonical = json.dumps(command, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_action(scope: str, key: str, req_hash: str, response: dict[str, Any]) -> dynamo.Action:
    now = clock.now()
    item = {
        **keys.idempotency_key(scope, key),
        "scope": scope,
        "requestHash": req_hash,
        "response": response,
        "createdAt": clock.iso(now),
        "ttl": int(now) + RETENTION_SECONDS,
    }
    return dynamo.put(settings.billing_table(), item, tag="idempotency", condition="attribute_not_exists(pk)")


def replay(scope: str, key: str, req_hash: str) -> dict[str, Any] | None:
    """The original response for this key, 409 if the key was used for another request, None if unused."""
    record = dynamo.get(settings.billing_table(), keys.idempotency_key(scope, key))
    if record is None:
        return None
    return original_or_conflict(record, req_hash)


def original_or_conflict(record: dict[str, Any], req_hash: str) -> dict[str, Any]:
    if record.get("requestHash") != req_hash:
        raise Conflict(
            "this idempotency key was already used for a different request",
            code="IDEMPOTENCY_KEY_REUSED",
        )
    return record["response"]


def commit(actions: list[dynamo.Action], rate: ratelimit.RateCharge | None, *, scope: str, key: str | None,
           req_hash: str, response: dict[str, Any]) -> dict[str, Any]:
    """Run a money transaction with its idempotency record (when keyed) and the caller's rate
    counter. A retry that lost the race on the record gets the original response; any other
    refusal propagates as TransactionCancelled for the caller to judge by tag."""
    if key:
        actions = [*actions, record_action(scope, key, req_hash, response)]
    try:
        ratelimit.transact(actions, rate)
    except dynamo.TransactionCancelled as cancelled:
        if key and "idempotency" in cancelled.failed:
            original = replay(scope, key, req_hash)
            if original is not None:
                return original
        raise
    return response
