"""Ledger entry items (LedgerTable): append-only, newest first per account.

Entries are only ever Put with attribute_not_exists, never updated or deleted. The by-pool index
serves every pool filter. The by-type index serves type filters for the types that are rare in
an account's history (deposits, adjustments, releases, ...); the two written on every
reserve/finalize pair (reserve, finalize and their shadow forms) stay out of it, one index write
each fewer, and a filter on one of them reads the account's partition with a filter (they make
up most of it, so a page fills in one or two reads). System accounts' revenue shares written by
earlier deployments live in shard partitions, in neither index; a finalize now carries its
shares itself (`revenueShares`, ledger.revenue).
"""

from __future__ import annotations

from typing import Any

from billing_core.kernel import settings
from billing_core.kernel.errors import BadRequest
from billing_core.ledger.model import Entry, HistoryPage
from billing_core.store import dynamo, keys

BY_POOL = "by-pool"
BY_TYPE = "by-type"
# Not in by-type: the entries of every reserve/finalize pair (filtered from the account's partition).
UNINDEXED_TYPES = frozenset({"reserve", "finalize", "shadow_reserve", "shadow_finalize"})


def _table() -> str:
    return settings.get().ledger_table


def put(entry: Entry) -> dynamo.Action:
    item = {
        "pk": keys.entry_pk(entry.account_id),
        "sk": keys.entry_sk(entry.created_at, entry.entry_id),
        "poolPk": keys.pool_pk(entry.account_id, entry.pool_id),
        "typePk": keys.type_pk(entry.account_id, entry.entry_type) if entry.entry_type not in UNINDEXED_TYPES else None,
        "entryId": entry.entry_id, "accountId": entry.account_id, "poolId": entry.pool_id,
        "entryType": entry.entry_type, "amountMicro": entry.amount, "actor": entry.actor,
        "description": entry.description, "reservationId": entry.reservation_id, "lotId": entry.lot_id,
        "metadata": entry.metadata or None, "createdAt": entry.created_at,
        "revenueShares": entry.revenue_shares or None,
    }
    return dynamo.put(_table(), item, tag=f"entry:{entry.entry_id}", condition="attribute_not_exists(sk)")


def from_item(item: dict[str, Any]) -> Entry:
    return Entry(
        account_id=item["accountId"], pool_id=item["poolId"], entry_type=item["entryType"],
        amount=item["amountMicro"], entry_id=item["entryId"], created_at=item["createdAt"],
        actor=item.get("actor") or "", description=item.get("description") or "",
        reservation_id=item.get("reservationId"), lot_id=item.get("lotId"), metadata=item.get("metadata") or {},
    )


def history(account_id: str, *, pool_id: str | None, entry_type: str | None, limit: int,
            start: dict[str, Any] | None) -> HistoryPage:
    """One page of entries, newest first. A pool filter uses by-pool, a type filter by-type (the
    unindexed types: the account's partition), both by-pool, each with a filter expression when
    needed (read on until the page is full). `start` must be a key of
    the same partition (a cursor this API issued for this account and filter)."""
    filter_expression = filter_values = None
    index: str | None
    if pool_id:
        index, key_name, key_value = BY_POOL, "poolPk", keys.pool_pk(account_id, pool_id)
        if entry_type:
            filter_expression, filter_values = "entryType = :t", {":t": entry_type}
    elif entry_type and entry_type not in UNINDEXED_TYPES:
        index, key_name, key_value = BY_TYPE, "typePk", keys.type_pk(account_id, entry_type)
    else:
        index, key_name, key_value = None, "pk", keys.account_pk(account_id)
        if entry_type:
            filter_expression, filter_values = "entryType = :t", {":t": entry_type}
    key_names = ("pk", "sk") if index is None else ("pk", "sk", key_name)
    if start is not None and (set(start) != set(key_names) or not all(isinstance(v, str) for v in start.values())
                              or start.get("pk") != keys.account_pk(account_id) or start.get(key_name) != key_value):
        raise BadRequest("cursor does not belong to this account and filter", code="INVALID_CURSOR")

    matches: list[dict[str, Any]] = []
    while True:
        if filter_expression is None:
            batch = limit + 1 - len(matches)
        else:  # the whole partition (index None) holds every type: read more per call
            batch = max(limit + 1, 50) if index is not None else max(3 * (limit + 1), 150)
        page = dynamo.query(_table(), index=index, key_name=key_name, key_value=key_value, limit=batch, start=start,
                            newest_first=True, filter_expression=filter_expression, filter_values=filter_values)
        matches.extend(page.items)
        if len(matches) > limit:
            shown = matches[:limit]
            return HistoryPage([from_item(i) for i in shown], {n: shown[-1][n] for n in key_names})
        if page.last_key is None:
            return HistoryPage([from_item(i) for i in matches], None)
        start = page.last_key
