"""The DynamoDB adapter: the client, marshalling, actions, transactions, reads, and the mapping
of DynamoDB's errors to the core's. Nothing here knows a domain rule.

The low-level client keeps numbers exact: they travel as strings and come back as ints (never
floats, never Decimal arithmetic). Errors leave this module as one of three things:
- `TransactionCancelled` / `ConditionFailed`: a condition refused the write (by tag);
- `retry.Again` (`Refused`): the table refused for a reason that passes (a transaction conflict,
  throttling): the caller's one bounded retry runs the attempt again;
- anything else propagates unchanged (a bug or an outage: the edge answers 500).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from billing_core.kernel import retry
from billing_core.kernel.retry import Again

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

Item = dict[str, Any]

# botocore's own retries of one call (standard mode: throttling, 5xx, connection errors, with
# the same ClientRequestToken for TransactWriteItems, so a retried commit is not applied twice).
SDK_ATTEMPTS = 3
# Refusals that say "not now" rather than "no": the attempt is run again by retry.bounded.
CONDITION_FAILED = "ConditionalCheckFailed"
PASSING = frozenset({
    "TransactionConflict", "TransactionConflictException", "TransactionInProgressException",
    "ThrottlingError", "ThrottlingException", "Throttling", "ProvisionedThroughputExceeded",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded",
})

_client: Any = None

# What must happen before a request's first write outside a transaction: the caller's rate
# charge (a money transaction carries it as one of its actions instead). Run once, before the
# write, so a request over its limit writes nothing and an answer is never turned into a 429
# after something was written.
_before_single_write: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "before_single_write", default=None)


@contextlib.contextmanager
def before_single_writes(hook: Callable[[], None] | None) -> Iterator[None]:
    token = _before_single_write.set(hook)
    try:
        yield
    finally:
        _before_single_write.reset(token)


def _single_write() -> None:
    hook = _before_single_write.get()
    if hook is not None:
        _before_single_write.set(None)  # once; the hook's own write must not run it again
        hook()


def client() -> Any:
    """One client per execution environment, created on first use."""
    global _client
    if _client is None:
        import boto3
        from botocore.config import Config

        _client = boto3.client("dynamodb", config=Config(
            retries={"mode": "standard", "max_attempts": SDK_ATTEMPTS}, tcp_keepalive=True,
            connect_timeout=2, read_timeout=5))
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
    ((kind, raw),) = av.items()
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


def from_item(item: Mapping[str, Any]) -> Item:
    return {k: from_av(v) for k, v in item.items()}


def _values(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return {k: to_av(v) for k, v in values.items()} if values else None


# -- errors ------------------------------------------------------------------------------------


class ConditionFailed(Exception):
    """A single write's condition was false."""

    def __init__(self) -> None:
        super().__init__("condition failed")


class Refused(Again):
    """The table refused for a passing reason (conflict, throttling): nothing was written."""

    def __init__(self, code: str) -> None:
        super().__init__(f"refused by DynamoDB: {code}")
        self.code = code


class TransactionCancelled(Exception):
    """A transaction did not apply because a condition failed. `failed` maps the tag of each
    action whose condition failed to its reason code (conflicts beside them are not listed:
    the conditions decide)."""

    def __init__(self, failed: dict[str, str]) -> None:
        super().__init__(f"transaction cancelled: {failed}")
        self.failed = failed

    def failed_tags(self, prefix: str) -> list[str]:
        return [t for t in self.failed if t.startswith(prefix)]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _send(call: str, **kwargs: Any) -> dict[str, Any]:
    """One call, retried (through the one bounded retry) while DynamoDB refuses it for a passing
    reason: nothing was applied, so sending it again is safe. Inside an operation's own retry
    loop this runs once and the operation reads again instead. Other errors propagate."""
    from botocore.exceptions import ClientError

    def attempt() -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(client(), call)(**kwargs)
        except ClientError as exc:
            if _code(exc) in PASSING:
                raise Refused(_code(exc)) from exc
            raise
        return response

    return retry.bounded(attempt, what="DynamoDB's answer")


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


def _expr(body: dict[str, Any], condition: str | None, names: Mapping[str, str] | None,
          values: Mapping[str, Any] | None) -> dict[str, Any]:
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


def transact(actions: Sequence[Action]) -> None:
    """Apply all actions atomically, or none: TransactionCancelled when a condition failed,
    Refused when the only reasons were conflicts or throttling (sent again by the one bounded
    retry, or, inside an operation's retry loop, read again by it)."""
    from botocore.exceptions import ClientError

    if not actions:
        return
    if len(actions) > 100:
        raise ValueError("a transaction holds at most 100 actions")
    request = [a.wire() for a in actions]

    def attempt() -> None:
        try:
            client().transact_write_items(TransactItems=request)
        except ClientError as exc:
            code = _code(exc)
            if code in PASSING:
                raise Refused(code) from exc
            if code != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            failed = {action.tag: str(reason.get("Code", "Unknown"))
                      for action, reason in zip(actions, reasons, strict=False)
                      if reason.get("Code") not in (None, "None")}
            refused = {tag: reason for tag, reason in failed.items() if reason == CONDITION_FAILED}
            if refused:  # a condition said no: that decides, whatever conflicted beside it
                raise TransactionCancelled(refused) from exc
            if failed and all(reason in PASSING for reason in failed.values()):
                raise Refused(next(iter(failed.values()))) from exc
            raise  # a malformed transaction or an item collection too large: a bug, not a refusal

    retry.bounded(attempt, what="DynamoDB's answer")


# -- single writes -----------------------------------------------------------------------------


def update_item(table: str, key: Mapping[str, Any], expression: str, *, condition: str | None = None,
                names: Mapping[str, str] | None = None, values: Mapping[str, Any] | None = None,
                return_new: bool = False) -> Item | None:
    """A single conditional UpdateItem; ConditionFailed when the condition is false, Refused
    when the table said "not now"."""
    from botocore.exceptions import ClientError

    kwargs = _expr({"TableName": table, "Key": to_item(key), "UpdateExpression": expression},
                   condition, names, values)
    if return_new:
        kwargs["ReturnValues"] = "ALL_NEW"
    _single_write()
    try:
        response = _send("update_item", **kwargs)
    except ClientError as exc:
        if _code(exc) == "ConditionalCheckFailedException":
            raise ConditionFailed() from exc
        raise
    attributes = response.get("Attributes")
    return from_item(attributes) if attributes else None


def put_item(table: str, item: Mapping[str, Any], *, condition: str | None = None) -> bool:
    """A single PutItem; False (instead of raising) when the condition is false."""
    return _conditional("put_item", {"TableName": table, "Item": to_item(item)}, condition)


def delete_item(table: str, key: Mapping[str, Any], *, condition: str | None = None) -> bool:
    """A single DeleteItem; False (instead of raising) when the condition is false."""
    return _conditional("delete_item", {"TableName": table, "Key": to_item(key)}, condition)


def _conditional(call: str, body: dict[str, Any], condition: str | None) -> bool:
    from botocore.exceptions import ClientError

    _single_write()
    try:
        _send(call, **_expr(body, condition, None, None))
    except ClientError as exc:
        if _code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


# -- reads ------------------------------------------------------------------------------------


def _read(call: str, **kwargs: Any) -> dict[str, Any]:
    return _send(call, **kwargs)


def get(table: str, key: Mapping[str, Any], *, consistent: bool = True) -> Item | None:
    item = _read("get_item", TableName=table, Key=to_item(key), ConsistentRead=consistent).get("Item")
    return from_item(item) if item else None


def batch_get(table: str, keys: Sequence[Mapping[str, Any]]) -> tuple[dict[tuple[str, str], Item], bool]:
    """One strongly consistent BatchGetItem of up to 100 keys: (items by (pk, sk), complete).
    complete is False when DynamoDB left keys unprocessed (throttling): the caller retries."""
    response = _read("batch_get_item", RequestItems={
        table: {"Keys": [to_item(k) for k in keys], "ConsistentRead": True}})
    found = {}
    for raw in response.get("Responses", {}).get(table, []):
        item = from_item(raw)
        found[(item["pk"], item["sk"])] = item
    return found, not response.get("UnprocessedKeys")


@dataclass(frozen=True)
class Page:
    items: list[Item]
    last_key: Item | None  # None: the last page


@dataclass(frozen=True)
class Range:
    """The sort-key part of a Query: `begins_with`, `<=` or `>=` on `name`."""

    op: str
    name: str
    value: str

    def expression(self) -> str:
        if self.op == "begins_with":
            return "begins_with(#r, :r)"
        return f"#r {self.op} :r"


def query(table: str, *, key_name: str, key_value: str, sort: Range | None = None, index: str | None = None,
          limit: int | None = None, start: Mapping[str, Any] | None = None, newest_first: bool = False,
          filter_expression: str | None = None, filter_values: Mapping[str, Any] | None = None,
          consistent: bool = False, raw: bool = False) -> Page:
    """One Query call (one page). raw=True keeps DynamoDB's attribute-value form (the reconciler
    converts what it reads itself, so one malformed item is reported instead of ending a run)."""
    names = {"#k": key_name}
    values: dict[str, Any] = {":k": {"S": key_value}}
    condition = "#k = :k"
    if sort is not None:
        names["#r"] = sort.name
        values[":r"] = {"S": sort.value}
        condition += f" AND {sort.expression()}"
    kwargs: dict[str, Any] = {"TableName": table, "KeyConditionExpression": condition,
                              "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
                              "ScanIndexForward": not newest_first}
    if index:
        kwargs["IndexName"] = index
    elif consistent:
        kwargs["ConsistentRead"] = True
    if limit is not None:
        kwargs["Limit"] = limit
    if start:
        kwargs["ExclusiveStartKey"] = to_item(start)
    if filter_expression:
        kwargs["FilterExpression"] = filter_expression
        values.update(_values(filter_values) or {})
    response = _read("query", **kwargs)
    last = response.get("LastEvaluatedKey")
    items = response.get("Items", [])
    return Page(items if raw else [from_item(i) for i in items], from_item(last) if last else None)


def query_pages(table: str, **kwargs: Any) -> Iterator[Page]:
    """Every page of a Query, in order: the one way this core reads past a page."""
    start = kwargs.pop("start", None)
    while True:
        page = query(table, start=start, **kwargs)
        yield page
        if page.last_key is None:
            return
        start = page.last_key


def query_all(table: str, **kwargs: Any) -> list[Item]:
    return [item for page in query_pages(table, **kwargs) for item in page.items]


def scan_pages(table: str, *, page_size: int = 500, raw: bool = False) -> Iterator[list[Item]]:
    """Every item of a table, page by page: for the nightly reconciler only, never on a request
    path. raw=True yields DynamoDB's attribute-value form (the reconciler converts what it reads)."""
    kwargs: dict[str, Any] = {"TableName": table, "Limit": page_size, "ConsistentRead": True}
    while True:
        response = _read("scan", **kwargs)
        items = response.get("Items", [])
        yield items if raw else [from_item(i) for i in items]
        if "LastEvaluatedKey" not in response:
            return
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
