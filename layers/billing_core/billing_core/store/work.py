"""Work items (BillingTable `WORK#<itemId>` / `WORK`), listed by status through the sparse
`work-by-status` index (`statusPk` = `WORKSTATUS#<status>`, `statusAt`)."""

from __future__ import annotations

from typing import Any

from billing_core.kernel import settings
from billing_core.kernel.errors import BadRequest
from billing_core.store import dynamo, keys
from billing_core.work.model import WorkItem

INDEX = "work-by-status"


def _table() -> str:
    return settings.get().billing_table


def from_item(item: dict[str, Any]) -> WorkItem:
    return WorkItem(
        item_id=item["itemId"], operation=item["operation"], status=item["status"], attempts=item["attempts"],
        payload=item.get("payload") or {}, reference=item.get("reference"), last_error=item.get("lastError"),
        next_retry_at=item.get("nextRetryAt"), created_at=item["createdAt"], updated_at=item["updatedAt"],
        result=item.get("result"), dismissed_by=item.get("dismissedBy"), dismiss_reason=item.get("dismissReason"),
    )


def status_fields(status: str, at: str) -> dict[str, Any]:
    return {"status": status, "statusPk": keys.work_status_pk(status), "statusAt": at, "updatedAt": at}


def create(item: WorkItem, at: str) -> bool:
    """False when the item exists (the same failure recorded twice)."""
    return dynamo.put_item(_table(), {
        **keys.work_key(item.item_id), "itemId": item.item_id, "operation": item.operation, "payload": item.payload,
        "reference": item.reference, "attempts": item.attempts, "lastError": item.last_error,
        "nextRetryAt": item.next_retry_at, "createdAt": item.created_at, **status_fields(item.status, at),
    }, condition="attribute_not_exists(pk)")


def get(item_id: str) -> WorkItem | None:
    item = dynamo.get(_table(), keys.work_key(item_id))
    return from_item(item) if item else None


def _update(item_id: str, fields: dict[str, Any], *, condition: str, values: dict[str, Any]) -> WorkItem:
    """SET the fields when the condition (on `#s`, the status) holds; ConditionFailed otherwise."""
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    names["#s"] = "status"
    vals = {f":v{i}": value for i, value in enumerate(fields.values())}
    expression = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
    new = dynamo.update_item(_table(), keys.work_key(item_id), expression, condition=condition, names=names,
                             values={**vals, **values}, return_new=True)
    assert new is not None
    return from_item(new)


_PENDING = ("#s = :pending", {":pending": "pending"})
_NOT_SUCCEEDED = ("#s <> :succeeded", {":succeeded": "succeeded"})


def succeed(item_id: str, *, result: dict[str, Any], attempts: int, by: str, at: str) -> WorkItem:
    """Done, once: whoever finished first keeps the outcome (ConditionFailed for the others)."""
    condition, values = _NOT_SUCCEEDED
    return _update(item_id, {**status_fields("succeeded", at), "result": result, "attempts": attempts,
                             "succeededBy": by}, condition=condition, values=values)


def fail_attempt(item_id: str, *, attempts: int, error: str, next_retry_at: str, at: str) -> WorkItem:
    """An automatic attempt failed; still pending (ConditionFailed if an operator settled it)."""
    condition, values = _PENDING
    return _update(item_id, {"attempts": attempts, "lastError": error, "nextRetryAt": next_retry_at,
                             "updatedAt": at}, condition=condition, values=values)


def park(item_id: str, *, attempts: int, error: str, at: str) -> WorkItem:
    """pending -> manual_review (ConditionFailed if an operator settled it meanwhile)."""
    condition, values = _PENDING
    return _update(item_id, {**status_fields("manual_review", at), "attempts": attempts, "lastError": error,
                             "nextRetryAt": None}, condition=condition, values=values)


def fail_replay(item_id: str, *, attempts: int, error: str, by: str, at: str) -> WorkItem:
    """An operator's replay failed: counted on the item, whatever its status but succeeded."""
    condition, values = _NOT_SUCCEEDED
    return _update(item_id, {"attempts": attempts, "lastError": error, "updatedAt": at, "lastReplayBy": by},
                   condition=condition, values=values)


def dismiss(item_id: str, *, by: str, reason: str, at: str) -> WorkItem:
    """pending or manual_review -> dismissed (ConditionFailed otherwise, or for no such item)."""
    return _update(item_id, {**status_fields("dismissed", at), "dismissedBy": by, "dismissReason": reason,
                             "nextRetryAt": None}, condition="attribute_exists(pk) AND #s IN (:pending, :review)",
                   values={":pending": "pending", ":review": "manual_review"})


def _check_start(start: dict[str, Any] | None, status: str) -> None:
    if start is not None and (set(start) != {"pk", "sk", "statusPk", "statusAt"}
                              or start["statusPk"] != keys.work_status_pk(status)
                              or not start["pk"].startswith("WORK#")):
        raise BadRequest("cursor does not belong to this listing", code="INVALID_CURSOR")


def by_status(status: str, *, limit: int, start: dict[str, Any] | None) -> tuple[list[WorkItem], dict[str, Any] | None]:
    """One page, most recently changed first."""
    _check_start(start, status)
    page = dynamo.query(_table(), index=INDEX, key_name="statusPk", key_value=keys.work_status_pk(status),
                        limit=limit, start=start, newest_first=True)
    return [from_item(i) for i in page.items], page.last_key


def count(status: str) -> int:
    return sum(len(page.items) for page in dynamo.query_pages(
        _table(), index=INDEX, key_name="statusPk", key_value=keys.work_status_pk(status), limit=500))
