"""Background work that failed once: a record per item, retried with exponential backoff through
the work queue, then its dead-letter queue, and parked as `manual_review` after N attempts.

The record (BillingTable `WORK#<id>`) is the truth about an item; SQS messages only carry its
id, so a duplicate delivery, a replay by an operator and a redrive all run the same idempotent
operation and agree on one outcome. Item ids are derived from what failed (e.g. the provider
event), so the same failure delivered twice is one item.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import traceback
from collections.abc import Callable
from typing import Any

from billing_core.kernel import clock, settings
from billing_core.kernel.errors import BillingError, Conflict, NotFound
from billing_core.store import dynamo, keys, queues

STATUSES = ("pending", "succeeded", "manual_review", "dismissed")
INDEX = "work-by-status"

Operation = Callable[[dict[str, Any]], dict[str, Any]]
_operations: dict[str, Operation] = {}


def operation(name: str) -> Callable[[Operation], Operation]:
    """Register the function that (re)runs one kind of work. It must be idempotent."""
    def register(fn: Operation) -> Operation:
        _operations[name] = fn
        return fn
    return register


class NeedsReview(BillingError):
    """A failure no retry can fix (e.g. a paid amount that differs from the order): park it at once."""

    status = 409
    code = "NEEDS_MANUAL_REVIEW"


class RetryLater(Exception):
    """The attempt failed; the message should come back after `delay` seconds."""

    def __init__(self, item_id: str, attempts: int, delay: int, error: str):
        super().__init__(f"{item_id}: attempt {attempts} failed ({error}); next in {delay}s")
        self.item_id, self.attempts, self.delay, self.error = item_id, attempts, delay, error


def item_id_for(operation_name: str, reference: str) -> str:
    return "wk_" + hashlib.sha256(f"{operation_name}\x00{reference}".encode()).hexdigest()[:32]


def backoff_seconds(attempts: int) -> int:
    """base * 2^(attempts-1), capped at SQS's 900 s."""
    return min(queues.MAX_DELAY_SECONDS, settings.retry_base_seconds() * 2 ** max(0, attempts - 1))


def describe(exc: BaseException) -> str:
    """What an operator sees: the error's type and message (never a payload or a secret)."""
    if isinstance(exc, BillingError):
        return f"{exc.code}: {exc.message}"[:500]
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {frame.name}" if frame else ""
    return f"{type(exc).__name__}{where}: {exc}"[:500]


def _status_fields(status: str, now_iso: str) -> dict[str, Any]:
    return {"status": status, "statusPk": keys.work_status_pk(status), "statusAt": now_iso, "updatedAt": now_iso}


def enqueue(operation_name: str, payload: dict[str, Any], *, reference: str, error: str) -> dict[str, Any]:
    """Record a failed operation and schedule its first retry. Safe to call twice for one failure."""
    if operation_name not in _operations:
        raise ValueError(f"unknown operation {operation_name}")
    item_id = item_id_for(operation_name, reference)
    now_iso = clock.iso(clock.now())
    delay = backoff_seconds(1)
    item = {
        **keys.work_key(item_id), "itemId": item_id, "operation": operation_name, "payload": payload,
        "reference": reference, "attempts": 1, "lastError": error,
        "nextRetryAt": clock.iso(clock.now() + delay), "createdAt": now_iso, **_status_fields("pending", now_iso),
    }
    created = dynamo.put_item(settings.billing_table(), item, condition="attribute_not_exists(pk)")
    current = item if created else load(item_id)
    if current["status"] == "pending":
        # Also when the item existed: its first message may never have been sent (a failure
        # between the put and the send). A duplicate message costs one idempotent attempt.
        queues.send(settings.work_queue_url(), {"itemId": item_id}, delay_seconds=delay)
    return current


def load(item_id: str) -> dict[str, Any]:
    item = dynamo.get(settings.billing_table(), keys.work_key(item_id))
    if item is None:
        raise NotFound("no such work item", code="WORK_ITEM_NOT_FOUND", details={"itemId": item_id})
    return item


def _record_success(item: dict[str, Any], result: dict[str, Any], attempts: int, actor: str) -> dict[str, Any]:
    now_iso = clock.iso(clock.now())
    fields = {**_status_fields("succeeded", now_iso), "result": result, "attempts": attempts,
              "succeededBy": actor}
    try:
        return _update(item["itemId"], fields, condition="#s <> :succeeded", values={":succeeded": "succeeded"})
    except dynamo.ConditionFailed:
        return load(item["itemId"])  # someone else finished it first: theirs is the outcome


def _update(item_id: str, fields: dict[str, Any], *, condition: str, values: dict[str, Any]) -> dict[str, Any]:
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    names["#s"] = "status"
    vals = {f":v{i}": value for i, value in enumerate(fields.values())}
    expression = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
    new = dynamo.update_item(settings.billing_table(), keys.work_key(item_id), expression, condition=condition,
                             names=names, values={**vals, **values}, return_new=True)
    assert new is not None
    return new


def _run(item: dict[str, Any]) -> dict[str, Any]:
    return _operations[item["operation"]](item["payload"])


def attempt(item_id: str, *, actor: str) -> dict[str, Any]:
    """One automatic attempt (work queue or DLQ processor). Returns the item when it is done
    (succeeded, or parked for manual review); raises RetryLater when it should come back."""
    item = load(item_id)
    if item["status"] in ("succeeded", "manual_review", "dismissed"):
        return item
    attempts = item["attempts"] + 1
    try:
        result = _run(item)
    except Exception as exc:  # every failure is recorded; the operator sees the reason
        error = describe(exc)
        now = clock.now()
        pending = {":pending": "pending"}
        try:
            if attempts >= settings.max_work_attempts() or isinstance(exc, NeedsReview):
                return _update(item_id, {**_status_fields("manual_review", clock.iso(now)), "attempts": attempts,
                                         "lastError": error, "nextRetryAt": None},
                               condition="#s = :pending", values=pending)
            delay = backoff_seconds(attempts)
            _update(item_id, {"attempts": attempts, "lastError": error, "nextRetryAt": clock.iso(now + delay),
                              "updatedAt": clock.iso(now)}, condition="#s = :pending", values=pending)
        except dynamo.ConditionFailed:
            return load(item_id)  # an operator's replay settled it meanwhile
        raise RetryLater(item_id, attempts, delay, error) from exc
    return _record_success(item, result, attempts, actor)


def replay(item_id: str, *, actor: str) -> dict[str, Any]:
    """An operator's replay: run the operation now, whatever the item's status. Idempotent: a
    succeeded item returns its stored result, and the operation itself applies at most once."""
    item = load(item_id)
    if item["status"] == "succeeded":
        return {**to_wire(item), "replayed": False}
    attempts = item["attempts"] + 1
    try:
        result = _run(item)
    except Exception as exc:
        now_iso = clock.iso(clock.now())
        updated = _update(item_id, {"attempts": attempts, "lastError": describe(exc), "updatedAt": now_iso,
                                    "lastReplayBy": actor},
                          condition="#s <> :succeeded", values={":succeeded": "succeeded"})
        return {**to_wire(updated), "replayed": True}
    return {**to_wire(_record_success(item, result, attempts, actor)), "replayed": True}


def dismiss(item_id: str, *, actor: str, reason: str) -> dict[str, Any]:
    """An operator closes an item that will not be replayed (resolved by hand, e.g. a refund
    made in the provider's dashboard). Audited on the item; a succeeded item cannot be dismissed."""
    now_iso = clock.iso(clock.now())
    try:
        return to_wire(_update(item_id, {**_status_fields("dismissed", now_iso), "dismissedBy": actor,
                                         "dismissReason": reason, "nextRetryAt": None},
                               condition="attribute_exists(pk) AND #s IN (:pending, :review)",
                               values={":pending": "pending", ":review": "manual_review"}))
    except dynamo.ConditionFailed:
        item = load(item_id)
        if item["status"] == "dismissed":
            return to_wire(item)
        raise Conflict(f"a {item['status']} item cannot be dismissed", code="WORK_ITEM_SETTLED") from None


def to_wire(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "itemId": item["itemId"], "operation": item["operation"], "status": item["status"],
        "attempts": item["attempts"], "lastError": item.get("lastError"), "nextRetryAt": item.get("nextRetryAt"),
        "reference": item.get("reference"), "createdAt": item["createdAt"], "updatedAt": item["updatedAt"],
        "result": item.get("result"), "dismissedBy": item.get("dismissedBy"),
        "dismissReason": item.get("dismissReason"),
    }


class InvalidCursor(BillingError):
    code = "INVALID_CURSOR"


def _encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str, status: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error):
        raise InvalidCursor("cursor is not valid") from None
    if (not isinstance(key, dict) or set(key) != {"pk", "sk", "statusPk", "statusAt"}
            or not all(isinstance(v, str) for v in key.values()) or key["statusPk"] != keys.work_status_pk(status)
            or not key["pk"].startswith("WORK#")):
        raise InvalidCursor("cursor does not belong to this listing")
    return key


def list_items(status: str, *, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    """Work items in one status, most recently changed first."""
    start_key = _decode_cursor(cursor, status) if cursor else None
    items, last = dynamo.query_page(settings.billing_table(), index=INDEX, key_name="statusPk",
                                    key_value=keys.work_status_pk(status), limit=limit, start_key=start_key)
    return [to_wire(i) for i in items], _encode_cursor(last) if last else None


def count(status: str) -> int:
    """Items in one status (the reconciler's manual_review gauge)."""
    total, start = 0, None
    while True:
        items, start = dynamo.query_page(settings.billing_table(), index=INDEX, key_name="statusPk",
                                         key_value=keys.work_status_pk(status), limit=500, start_key=start)
        total += len(items)
        if start is None:
            return total
