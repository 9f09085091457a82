"""Exactly-once requests. The record that makes a request idempotent is written in the same
TransactWriteItems as the money it moves; a replay finds it and gets the original result (the
typed value, which the edge serializes exactly as it did the first time).

Same key and same request: the original result. Same key, another request: 409."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import TypeAdapter

from billing_core.kernel.context import Context
from billing_core.kernel.errors import Conflict
from billing_core.store import dynamo, transaction
from billing_core.store import idempotency as records

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def request_hash(command: dict[str, Any]) -> str:
    """Hash of the validated request (not the raw body): key order and 5 vs "5" do not matter."""
    canonical = json.dumps(command, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def reused() -> Conflict:
    return Conflict("this idempotency key was already used for a different request", code="IDEMPOTENCY_KEY_REUSED")


_adapters: dict[type[Any], TypeAdapter[Any]] = {}


def _rebuild(kind: type[T], stored: dict[str, Any]) -> T:
    """The stored result as the typed value it was (pydantic validates nested dataclasses)."""
    adapter = _adapters.get(kind) or _adapters.setdefault(kind, TypeAdapter(kind))
    result: T = adapter.validate_python(stored)
    return result


def replay(scope: str, key: str | None, req_hash: str, kind: type[T]) -> T | None:
    """The original result of this key, 409 if it was used for another request, None if unused."""
    if key is None:
        return None
    found = records.get(scope, key)
    if found is None:
        return None
    stored_hash, stored = found
    if stored_hash != req_hash:
        raise reused()
    return _rebuild(kind, stored)


def request_key(scope: str, key: str | None) -> tuple[str, str, int]:
    """(scope, key, retention) of the record that makes this request exactly-once. Without the
    caller's key the request gets one of its own, made once per request (not per attempt) and
    kept a day: when botocore re-sends a transaction whose answer was lost after it committed (an
    engine that ignores ClientRequestToken applies it again), the re-send is refused on that
    record and the request answers what it committed, instead of moving the money twice."""
    if key:
        return scope, key, records.RETENTION_SECONDS
    return f"{scope}-request", uuid.uuid4().hex, records.REQUEST_RETENTION_SECONDS


def commit(actions: Sequence[dynamo.Action], ctx: Context, *, scope: str, key: str | None, req_hash: str,
           result: T, retention_seconds: int = records.RETENTION_SECONDS) -> T:
    """Commit a money move with its idempotency record (when keyed) and the caller's rate counter.
    A retry that lost the race on the record gets the original result; any other refusal
    propagates as TransactionCancelled for the caller to judge by tag."""
    if key:
        actions = [*actions, records.record(scope, key, req_hash, dataclasses.asdict(result),
                                            retention_seconds=retention_seconds)]
    try:
        transaction.commit(actions, ctx)
    except dynamo.TransactionCancelled as cancelled:
        if key and "idempotency" in cancelled.failed:
            original = replay(scope, key, req_hash, type(result))
            if original is not None:
                return original
        raise
    return result
