"""The append-only ledger: one entry per change, who/what/why, newest first per account.

Entries are only ever Put with attribute_not_exists, never updated or deleted. The by-pool and
by-type indexes let a filtered page be one Query instead of a filtered scan.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from billing_core.kernel import money, settings
from billing_core.kernel.errors import BillingError
from billing_core.store import dynamo, keys

ENTRY_TYPES = (
    "deposit", "reserve", "finalize", "release", "expire", "refund", "adjustment",
    "revenue_share", "commons_contribution",
    "shadow_reserve", "shadow_finalize", "shadow_release", "shadow_expire",
)


@dataclass(frozen=True)
class Entry:
    account_id: str
    pool_id: str
    entry_type: str
    amount: int
    entry_id: str
    created_at: str
    actor: str
    description: str
    reservation_id: str | None = None
    lot_id: str | None = None
    metadata: dict[str, Any] | None = None
    shard_seed: str | None = None

    def action(self) -> dynamo.Action:
        # System-account shares live in shard partitions and are read by summing shards, not
        # by pool or type: leaving them out of both indexes saves two writes per share.
        indexed = self.shard_seed is None
        item = {
            "pk": keys.entry_pk(self.account_id, self.shard_seed),
            "sk": keys.entry_sk(self.created_at, self.entry_id),
            "poolPk": keys.pool_pk(self.account_id, self.pool_id) if indexed else None,
            "typePk": keys.type_pk(self.account_id, self.entry_type) if indexed else None,
            "entryId": self.entry_id,
            "accountId": self.account_id,
            "poolId": self.pool_id,
            "entryType": self.entry_type,
            "amountMicro": self.amount,
            "actor": self.actor,
            "description": self.description,
            "reservationId": self.reservation_id,
            "lotId": self.lot_id,
            "metadata": self.metadata or None,
            "createdAt": self.created_at,
        }
        return dynamo.put(settings.ledger_table(), item, tag=f"entry:{self.entry_id}",
                          condition="attribute_not_exists(sk)")


def to_wire(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "entryId": item["entryId"],
        "accountId": item["accountId"],
        "poolId": item["poolId"],
        "entryType": item["entryType"],
        "amountMicro": money.fmt(item["amountMicro"]),
        "actor": item.get("actor"),
        "description": item.get("description"),
        "createdAt": item["createdAt"],
    }
    for name in ("reservationId", "lotId"):
        if item.get(name):
            out[name] = item[name]
    if item.get("metadata"):
        out["metadata"] = {k: (money.fmt(v) if isinstance(v, int) and not isinstance(v, bool) else v)
                           for k, v in item["metadata"].items()}
    return out


class InvalidCursor(BillingError):
    status = 400
    code = "INVALID_CURSOR"


def _encode_cursor(key: dict[str, Any], filters: list[str | None]) -> str:
    raw = json.dumps({"k": key, "f": filters}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, account_id: str, filters: list[str | None], index_key: tuple[str, str] | None) -> dict:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor("cursor is not one this API issued") from None
    key = data.get("k") if isinstance(data, dict) else None
    key_names = {"pk", "sk"} | ({index_key[0]} if index_key else set())
    if (
        not isinstance(key, dict)
        or data.get("f") != filters
        or set(key) != key_names
        or not all(isinstance(v, str) for v in key.values())
        or key.get("pk") != keys.account_pk(account_id)
        or (index_key is not None and key.get(index_key[0]) != index_key[1])
    ):
        # A cursor is bound to the caller's account and the filters it was issued for.
        raise InvalidCursor("cursor does not belong to this account and filter")
    return key


def history(account_id: str, *, pool_id: str | None, entry_type: str | None, limit: int,
            cursor: str | None) -> tuple[list[dict[str, Any]], str | None, bool]:
    """One page of entries, newest first: (entries, nextCursor, hasMore)."""
    filters = [pool_id, entry_type]
    filter_expression = filter_values = None
    if pool_id:
        index, key_name, key_value = "by-pool", "poolPk", keys.pool_pk(account_id, pool_id)
        if entry_type:
            filter_expression, filter_values = "entryType = :t", {":t": entry_type}
    elif entry_type:
        index, key_name, key_value = "by-type", "typePk", keys.type_pk(account_id, entry_type)
    else:
        index, key_name, key_value = None, "pk", keys.account_pk(account_id)
    key_names = ("pk", "sk") if index is None else ("pk", "sk", key_name)
    index_key = (key_name, key_value) if index else None
    start = _decode_cursor(cursor, account_id, filters, index_key) if cursor else None

    matches: list[dict[str, Any]] = []
    while True:
        batch = limit + 1 - len(matches) if filter_expression is None else max(limit + 1, 50)
        items, last_key = dynamo.query_page(
            settings.ledger_table(), index=index, key_name=key_name, key_value=key_value,
            limit=batch, start_key=start, filter_expression=filter_expression, filter_values=filter_values,
        )
        matches.extend(items)
        if len(matches) > limit:
            page = matches[:limit]
            return [to_wire(i) for i in page], _encode_cursor({n: page[-1][n] for n in key_names}, filters), True
        if last_key is None:
            return [to_wire(i) for i in matches], None, False
        start = last_key
