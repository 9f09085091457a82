"""The DynamoDB adapter: marshalling, reads and transactions, with no domain rules in it.

Uses the low-level client so numbers stay exact strings on the wire and come back as ints
(never floats, never Decimal arithmetic). Every money move goes through `transact`, which
turns a cancelled transaction into `TransactionCancelled` with one reason per item, in order.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_client: Any = None

Item = dict[str, Any]


def client() -> Any:
    """One client per execution environment (created lazily: import stays cheap for cold starts)."""
    global _client
    if _client is None:
        import boto3
        from botocore.config import Config

        _client = boto3.client(
            "dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 4}, tcp_keepalive=True)
        )
    return _client


def reset_client() -> None:
    """Test hook: drop the cached client (e.g. after moto's mock starts)."""
    global _client
    _client = None


# -- marshalling -----------------------------------------------------------------------------


def to_av(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_av(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_av(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} (floats are refused on purpose)")


def from_av(av: Mapping[str, Any]) -> Any:
    (kind, raw), = av.items()
    if kind == "S":
        return raw
    if kind == "N":
        if not raw.lstrip("-").isdigit():
            raise ValueError(f"non-integer number in the table: {raw!r}")
        return int(raw)
    if kind == "BOOL":
        return bool(raw)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_av(v) for k, v in raw.items()}
    if kind == "L":
        return [from_av(v) for v in raw]
    raise ValueError(f"unsupported attribute type {kind}")


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_av(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any] | None) -> Item | None:
    if item is None:
        return None
    return {k: from_av(v) for k, v in item.items()}


def _values(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return {k: to_av(v) for k, v in values.items()} if values else None


# -- transaction actions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One item of a TransactWriteItems call; `tag` names it so cancellations can be read by role."""

    kind: str  # Put | Update | ConditionCheck | Delete
    table: str
    tag: str
    body: dict[str, Any] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        return {self.kind: {"TableName": self.table, **self.body}}


def _expr(
    body: dict[str, Any], condition: str | None, names: Mapping[str, str] | None, values: Mapping[str, Any] | None
) -> dict[str, Any]:
    if condition:
        body["ConditionExpression"] = condition
    if names:
        body["ExpressionAttributeNames"] = dict(names)
    vals = _values(values)
    if vals:
        body["ExpressionAttributeValues"] = vals
    return body


def put(table: str, item: Mapping[str, Any], *, tag: str, condition: str | None = None,
        names: Mapping[str, str] | None = None, values: Mapping[str, Any] | None = None) -> Action:
    return Action("Put", table, tag, _expr({"Item": to_item(item)}, condition, names, values))


def update(table: str, key: Mapping[str, Any], expression: str, *, tag: str, condition: str | None = None,
           names: Mapping[str, str] | None = None, values: Mapping[str, Any] | None = None) -> Action:
    body = {"Key": to_item(key), "UpdateExpression": expression}
    return Action("Update", table, tag, _expr(body, condition, names, values))


def check(table: str, key: Mapping[str, Any], condition: str, *, tag: str,
          names: Mapping[str, str] | None = None, values: Mapping[str, Any] | None = None) -> Action:
    return Action("ConditionCheck", table, tag, _expr({"Key": to_item(key)}, condition, names, values))


class TransactionCancelled(Exception):
    """A transaction did not apply. `failed` maps each failing action's tag to its reason code."""

    def __init__(self, failed: dict[str, str], conflict: bool):
        super().__init__(f"transaction cancelled: {failed}")
        self.failed = failed
        self.conflict = conflict

    def failed_tags(self, prefix: str) -> list[str]:
        return [t for t in self.failed if t.startswith(prefix)]


_CONFLICT_CODES = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}


def transact(actions: Sequence[Action], *, conflict_retries: int = 4) -> None:
    """Apply all actions atomically or none. Retries only pure write conflicts (no condition failed)."""
    from botocore.exceptions import ClientError

    if not actions:
        return
    if len(actions) > 100:
        raise ValueError("a transaction holds at most 100 actions")
    request = [a.wire() for a in actions]
    for attempt in range(conflict_retries + 1):
        try:
            client().transact_write_items(TransactItems=request)
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            failed = {
                action.tag: reason.get("Code", "Unknown")
                for action, reason in zip(actions, reasons, strict=False)
                if reason.get("Code") not in (None, "None")
            }
            conflict = bool(failed) and all(code in _CONFLICT_CODES for code in failed.values())
            if conflict and attempt < conflict_retries:
                time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not crypto
                continue
            raise TransactionCancelled(failed, conflict) from exc


# -- reads ------------------------------------------------------------------------------------


def get(table: str, key: Mapping[str, Any], *, consistent: bool = True) -> Item | None:
    response = client().get_item(TableName=table, Key=to_item(key), ConsistentRead=consistent)
    return from_item(response.get("Item"))


def query_prefix(table: str, pk: str, sk_prefix: str, *, consistent: bool = True) -> list[Item]:
    """All items of one partition whose sort key starts with sk_prefix, in sort-key order."""
    items: list[Item] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": sk_prefix}},
        "ConsistentRead": consistent,
    }
    while True:
        response = client().query(**kwargs)
        items.extend(from_item(i) for i in response.get("Items", []))  # type: ignore[misc]
        if "LastEvaluatedKey" not in response:
            return items
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def query_page(
    table: str,
    *,
    index: str | None,
    key_name: str,
    key_value: str,
    limit: int,
    start_key: Mapping[str, Any] | None = None,
    newest_first: bool = True,
    filter_expression: str | None = None,
    filter_values: Mapping[str, Any] | None = None,
) -> tuple[list[Item], Item | None]:
    """One Query call: (items, last evaluated key or None)."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#k = :k",
        "ExpressionAttributeNames": {"#k": key_name},
        "ExpressionAttributeValues": {":k": {"S": key_value}},
        "Limit": limit,
        "ScanIndexForward": not newest_first,
    }
    if index:
        kwargs["IndexName"] = index
    if start_key:
        kwargs["ExclusiveStartKey"] = to_item(start_key)
    if filter_expression:
        kwargs["FilterExpression"] = filter_expression
        kwargs["ExpressionAttributeValues"].update(_values(filter_values) or {})
    response = client().query(**kwargs)
    items = [from_item(i) for i in response.get("Items", [])]
    return items, from_item(response.get("LastEvaluatedKey"))  # type: ignore[return-value]


def query_until(table: str, *, index: str, key_name: str, key_value: str, range_name: str, upper: str,
                limit: int, start_key: Mapping[str, Any] | None = None) -> tuple[list[Item], Item | None]:
    """One Query page of an index partition whose range key is <= upper, oldest first."""
    kwargs: dict[str, Any] = {
        "TableName": table, "IndexName": index,
        "KeyConditionExpression": "#k = :k AND #r <= :upper",
        "ExpressionAttributeNames": {"#k": key_name, "#r": range_name},
        "ExpressionAttributeValues": {":k": {"S": key_value}, ":upper": {"S": upper}},
        "Limit": limit,
    }
    if start_key:
        kwargs["ExclusiveStartKey"] = to_item(start_key)
    response = client().query(**kwargs)
    return [from_item(i) for i in response.get("Items", [])], from_item(response.get("LastEvaluatedKey"))  # type: ignore[misc]


def scan_pages(table: str, *, page_size: int = 500) -> Iterator[list[Item]]:
    """Every item of a table, page by page: for the nightly reconciler only, never on a request path."""
    kwargs: dict[str, Any] = {"TableName": table, "Limit": page_size, "ConsistentRead": True}
    while True:
        response = client().scan(**kwargs)
        yield [from_item(i) for i in response.get("Items", [])]  # type: ignore[misc]
        if "LastEvaluatedKey" not in response:
            return
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def update_item(table: str, key: Mapping[str, Any], expression: str, *, condition: str | None = None,
                names: Mapping[str, str] | None = None, values: Mapping[str, Any] | None = None,
                return_new: bool = False) -> Item | None:
    """A single conditional UpdateItem; raises ConditionFailed when the condition is false."""
    from botocore.exceptions import ClientError

    kwargs = _expr({"TableName": table, "Key": to_item(key), "UpdateExpression": expression},
                   condition, names, values)
    if return_new:
        kwargs["ReturnValues"] = "ALL_NEW"
    try:
        response = client().update_item(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise ConditionFailed() from exc
        raise
    return from_item(response.get("Attributes"))


def put_item(table: str, item: Mapping[str, Any], *, condition: str | None = None) -> bool:
    """A single PutItem; returns False (instead of raising) when the condition is false."""
    from botocore.exceptions import ClientError

    kwargs = _expr({"TableName": table, "Item": to_item(item)}, condition, None, None)
    try:
        client().put_item(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


class ConditionFailed(Exception):
    pass
