"""Background work that failed once: a record per item, retried with exponential backoff through
the work queue, then its dead-letter queue, and parked as `manual_review` after N attempts.

The record (BillingTable `WORK#<id>`) is the truth about an item; SQS messages only carry its
id, so a duplicate delivery, a replay by an operator and a redrive all run the same idempotent
operation and agree on one outcome. Item ids are derived from what failed (e.g. the provider
event), so the same failure delivered twice is one item.
"""

from __future__ import annotations

import dataclasses
import hashlib
import traceback
from collections.abc import Callable
from typing import Any

from billing_core.kernel import clock, settings
from billing_core.kernel.context import Context
from billing_core.kernel.errors import BillingError, Conflict, NotFound
from billing_core.store import dynamo, queues
from billing_core.store import work as store
from billing_core.work.model import STATUSES, WorkItem

__all__ = ["STATUSES", "NeedsReview", "RetryLater", "WorkItem", "attempt", "dismiss", "enqueue", "operation",
           "replay", "submit"]

Operation = Callable[[dict[str, Any]], dict[str, Any]]
_operations: dict[str, Operation] = {}
_DONE = ("succeeded", "manual_review", "dismissed")


def operation(name: str) -> Callable[[Operation], Operation]:
    """Register the function that (re)runs one kind of work. It must be idempotent."""
    def register(fn: Operation) -> Operation:
        _operations[name] = fn
        return fn
    return register


class NeedsReview(Conflict):
    """A failure no retry can fix (e.g. a paid amount that differs from the order): park it at once."""

    code = "NEEDS_MANUAL_REVIEW"


class RetryLater(Exception):
    """The attempt failed; the message should come back after `delay` seconds."""

    def __init__(self, item_id: str, attempts: int, delay: int, error: str) -> None:
        super().__init__(f"{item_id}: attempt {attempts} failed ({error}); next in {delay}s")
        self.item_id, self.attempts, self.delay, self.error = item_id, attempts, delay, error


def item_id_for(operation_name: str, reference: str) -> str:
    return "wk_" + hashlib.sha256(f"{operation_name}\x00{reference}".encode()).hexdigest()[:32]


def backoff_seconds(attempts: int) -> int:
    """base * 2^(attempts-1), capped at SQS's 900 s."""
    return int(min(queues.MAX_DELAY_SECONDS, settings.get().retry_base_seconds * 2 ** max(0, attempts - 1)))


def describe(exc: BaseException) -> str:
    """What an operator sees: the error's type and message (never a payload or a secret)."""
    if isinstance(exc, BillingError):
        return f"{exc.code}: {exc.message}"[:500]
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {frame.name}" if frame else ""
    return f"{type(exc).__name__}{where}: {exc}"[:500]


def enqueue(operation_name: str, payload: dict[str, Any], *, reference: str, error: str) -> WorkItem:
    """Record a failed operation and schedule its first retry. Safe to call twice for one failure."""
    if operation_name not in _operations:
        raise ValueError(f"unknown operation {operation_name}")
    item_id = item_id_for(operation_name, reference)
    now = clock.now()
    now_iso = clock.iso(now)
    delay = backoff_seconds(1)
    item = WorkItem(item_id=item_id, operation=operation_name, status="pending", attempts=1, created_at=now_iso,
                    updated_at=now_iso, payload=payload, reference=reference, last_error=error,
                    next_retry_at=clock.iso(now + delay))
    current = item if store.create(item, now_iso) else load(item_id)
    if current.status == "pending":
        # Also when the item existed: its first message may never have been sent (a failure
        # between the put and the send). A duplicate message costs one idempotent attempt.
        queues.send(settings.get().work_queue_url, {"itemId": item_id}, delay_seconds=delay)
    return current


def submit(operation_name: str, payload: dict[str, Any], *, reference: str, queue_url: str) -> tuple[WorkItem, bool]:
    """Work to run now, not a failure to retry: a pending item with no attempt yet, and a message
    without delay. The same reference twice is one item (True: this call created it); its message
    is sent again only while it was never attempted (the first send may have been lost), so a
    duplicate costs at most one more attempt of an idempotent operation."""
    if operation_name not in _operations:
        raise ValueError(f"unknown operation {operation_name}")
    item_id = item_id_for(operation_name, reference)
    now_iso = clock.iso(clock.now())
    item = WorkItem(item_id=item_id, operation=operation_name, status="pending", attempts=0, created_at=now_iso,
                    updated_at=now_iso, payload=payload, reference=reference, next_retry_at=now_iso)
    created = store.create(item, now_iso)
    current = item if created else load(item_id)
    if current.status == "pending" and current.attempts == 0:
        queues.send(queue_url, {"itemId": item_id})
    return current, created


def load(item_id: str) -> WorkItem:
    item = store.get(item_id)
    if item is None:
        raise NotFound("no such work item", code="WORK_ITEM_NOT_FOUND", details={"itemId": item_id})
    return item


def _record_success(item: WorkItem, result: dict[str, Any], attempts: int, actor: str) -> WorkItem:
    try:
        return store.succeed(item.item_id, result=result, attempts=attempts, by=actor, at=clock.iso(clock.now()))
    except dynamo.ConditionFailed:
        return load(item.item_id)  # someone else finished it first: theirs is the outcome


def _run(item: WorkItem) -> dict[str, Any]:
    return _operations[item.operation](item.payload)


def attempt(item_id: str, *, actor: str) -> WorkItem:
    """One automatic attempt (work queue or DLQ processor). Returns the item when it is done
    (succeeded, or parked for manual review); raises RetryLater when it should come back."""
    item = load(item_id)
    if item.status in _DONE:
        return item
    attempts = item.attempts + 1
    try:
        result = _run(item)
    except Exception as exc:  # every failure is recorded; the operator sees the reason
        error = describe(exc)
        now = clock.now()
        try:
            if attempts >= settings.get().max_work_attempts or isinstance(exc, NeedsReview):
                return store.park(item_id, attempts=attempts, error=error, at=clock.iso(now))
            delay = backoff_seconds(attempts)
            store.fail_attempt(item_id, attempts=attempts, error=error, next_retry_at=clock.iso(now + delay),
                               at=clock.iso(now))
        except dynamo.ConditionFailed:
            return load(item_id)  # an operator's replay settled it meanwhile
        raise RetryLater(item_id, attempts, delay, error) from exc
    return _record_success(item, result, attempts, actor)


def replay(ctx: Context, item_id: str) -> WorkItem:
    """An operator's replay: run the operation now, whatever the item's status. Idempotent: a
    succeeded item returns its stored result, and the operation itself applies at most once."""
    item = load(item_id)
    if item.status == "succeeded":
        return dataclasses.replace(item, replayed=False)
    attempts = item.attempts + 1
    try:
        result = _run(item)
    except Exception as exc:
        updated = store.fail_replay(item_id, attempts=attempts, error=describe(exc), by=ctx.actor,
                                    at=clock.iso(clock.now()))
        return dataclasses.replace(updated, replayed=True)
    return dataclasses.replace(_record_success(item, result, attempts, ctx.actor), replayed=True)


def dismiss(ctx: Context, item_id: str, *, reason: str) -> WorkItem:
    """An operator closes an item that will not be replayed (resolved by hand, e.g. a refund
    made in the provider's dashboard). Audited on the item; a succeeded item cannot be dismissed."""
    try:
        return store.dismiss(item_id, by=ctx.actor, reason=reason, at=clock.iso(clock.now()))
    except dynamo.ConditionFailed:
        item = load(item_id)
        if item.status == "dismissed":
            return item
        raise Conflict(f"a {item.status} item cannot be dismissed", code="WORK_ITEM_SETTLED") from None


def by_status(status: str, *, limit: int, start: dict[str, Any] | None) -> tuple[list[WorkItem], dict[str, Any] | None]:
    """Work items in one status, most recently changed first (one Query page)."""
    return store.by_status(status, limit=limit, start=start)


def count(status: str) -> int:
    """Items in one status (the reconciler's manual_review gauge)."""
    return store.count(status)
