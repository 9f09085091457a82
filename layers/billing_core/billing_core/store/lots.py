"""Lot and pool items (BillingTable): their shapes and every expression that moves money on them.

Every update to a lot moves one amount between two of its fields in a single SET, so
available + reserved + consumed cannot change; the condition on the field being decreased keeps
it >= 0. DynamoDB conditions cannot add attributes together, which is why the invariant is
structural and the reconciler re-checks it from the items.

A pool item (`BAL#<pool>#DEBT`) sits beside the pool's lots: `debt` (consumption the lots did not
cover), `unbacked` (soft holds the lots could not back) and `seq` (bumped by every new lot and
exact balance change).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from billing_core.kernel import settings
from billing_core.ledger.model import Lot, PoolSnapshot
from billing_core.store import dynamo, keys

_LOT_NAMES = {"#av": "available", "#rs": "reserved", "#cs": "consumed"}
_ZERO_OR = "attribute_not_exists({name}) OR {name} = {value}"


def _table() -> str:
    return settings.get().billing_table


def lot_key(account_id: str, lot_sk: str) -> dict[str, str]:
    return {"pk": keys.account_pk(account_id), "sk": lot_sk}


def pool_key(account_id: str, pool_id: str) -> dict[str, str]:
    return {"pk": keys.account_pk(account_id), "sk": keys.debt_sk(pool_id)}


def from_item(item: dict[str, Any]) -> Lot:
    return Lot(
        account_id=item["accountId"], pool_id=item["poolId"], lot_id=item["lotId"], sk=item["sk"],
        original=item["original"], available=item["available"], reserved=item["reserved"],
        consumed=item["consumed"], source_type=item["sourceType"], description=item["description"],
        expires_at=item.get("expiresAt"), created_at=item["createdAt"],
    )


# -- reads ----------------------------------------------------------------------------------------


def read_pool(account_id: str, pool_id: str) -> PoolSnapshot:
    """One strongly consistent Query: the pool item and its lots in draw-down order."""
    return read_account(account_id, pool_id).get(pool_id) or PoolSnapshot(lots=[])


def read_account(account_id: str, pool_id: str | None) -> dict[str, PoolSnapshot]:
    """Every pool of an account (or one), one strongly consistent Query: pool id -> snapshot."""
    items = dynamo.query_all(_table(), key_name="pk", key_value=keys.account_pk(account_id),
                             sort=dynamo.Range("begins_with", "sk", keys.balance_prefix(pool_id)), consistent=True)
    lots: dict[str, list[Lot]] = defaultdict(list)
    pools: dict[str, dict[str, Any]] = {}
    for item in items:
        if keys.is_lot_sk(item["sk"]):
            lots[item["poolId"]].append(from_item(item))
        else:
            pools[keys.parse_balance_sk(item["sk"])[0]] = item
    return {pid: PoolSnapshot(lots=lots.get(pid, []), debt=pools.get(pid, {}).get("debt", 0),
                              unbacked=pools.get(pid, {}).get("unbacked", 0), seq=pools.get(pid, {}).get("seq", 0))
            for pid in set(lots) | set(pools)}


def debt(account_id: str, pool_id: str) -> int:
    item = dynamo.get(_table(), pool_key(account_id, pool_id))
    return int(item.get("debt", 0)) if item else 0


# -- actions ----------------------------------------------------------------------------------------


def put(lot: Lot, *, created_by: str) -> dynamo.Action:
    item = {
        **lot_key(lot.account_id, lot.sk), "lotId": lot.lot_id, "accountId": lot.account_id, "poolId": lot.pool_id,
        "original": lot.original, "available": lot.available, "reserved": lot.reserved, "consumed": lot.consumed,
        "sourceType": lot.source_type, "description": lot.description, "expiresAt": lot.expires_at,
        "createdAt": lot.created_at, "createdBy": created_by,
    }
    return dynamo.put(_table(), item, tag="lot", condition="attribute_not_exists(pk)")


def reserve(account_id: str, lot_sk: str, amount: int, tag: str) -> dynamo.Action:
    """available -> reserved."""
    return dynamo.update(
        _table(), lot_key(account_id, lot_sk), "SET #av = #av - :a, #rs = #rs + :a",
        condition="attribute_exists(pk) AND #av >= :a", names={"#av": "available", "#rs": "reserved"},
        values={":a": amount}, tag=tag,
    )


def settle(account_id: str, lot_sk: str, held: int, consume: int, tag: str) -> dynamo.Action:
    """reserved -> consumed (consume) and reserved -> available (held - consume)."""
    return dynamo.update(
        _table(), lot_key(account_id, lot_sk), "SET #rs = #rs - :held, #cs = #cs + :c, #av = #av + :r",
        condition="attribute_exists(pk) AND #rs >= :held", names=_LOT_NAMES,
        values={":held": held, ":c": consume, ":r": held - consume}, tag=tag,
    )


def pin(lot: Lot, take: int, tag: str) -> dynamo.Action:
    """The lot still holds the `available` that was read; with take > 0, available -> consumed."""
    key = lot_key(lot.account_id, lot.sk)
    names = {"#av": "available"}
    values: dict[str, Any] = {":seen": lot.available}
    if take == 0:
        return dynamo.check(_table(), key, "#av = :seen", names=names, values=values, tag=tag)
    names["#cs"] = "consumed"
    values[":t"] = take
    return dynamo.update(_table(), key, "SET #av = #av - :t, #cs = #cs + :t", condition="#av = :seen",
                         names=names, values=values, tag=tag)


def shortfall(account_id: str, pool_id: str, *, debt: int = 0, unbacked: int = 0) -> dynamo.Action:
    """Soft mode: `debt` only grows here (a new lot settles it); `unbacked` moves by the signed
    amount and its condition keeps it >= 0."""
    values: dict[str, Any] = {":zero": 0, ":d": debt, ":u": unbacked, ":pool": pool_id, ":acct": account_id}
    condition = None
    if unbacked < 0:
        condition, values[":need"] = "#unb >= :need", -unbacked
    return dynamo.update(
        _table(), pool_key(account_id, pool_id),
        "SET #debt = if_not_exists(#debt, :zero) + :d, #unb = if_not_exists(#unb, :zero) + :u, "
        "poolId = :pool, accountId = :acct",
        condition=condition, names={"#debt": "debt", "#unb": "unbacked"}, values=values, tag="debt",
    )


def new_lot_on_pool(account_id: str, pool_id: str, *, seen_debt: int, settle: int) -> dynamo.Action:
    """A new lot joins the pool: bump seq, and settle `settle` of the debt that was read. With
    nothing to settle, the condition makes sure no debt appeared since the read (this lot would
    skip settling it); with something, that the debt is still what was read."""
    values: dict[str, Any] = {":zero": 0, ":one": 1, ":pool": pool_id, ":acct": account_id}
    if settle:
        values.update({":s": settle, ":d": seen_debt})
        return dynamo.update(
            _table(), pool_key(account_id, pool_id),
            "SET #debt = #debt - :s, #seq = if_not_exists(#seq, :zero) + :one, poolId = :pool, accountId = :acct",
            condition="#debt = :d", names={"#debt": "debt", "#seq": "seq"}, values=values, tag="debt")
    return dynamo.update(
        _table(), pool_key(account_id, pool_id),
        "SET #seq = if_not_exists(#seq, :zero) + :one, poolId = :pool, accountId = :acct",
        condition=_ZERO_OR.format(name="#debt", value=":zero"), names={"#debt": "debt", "#seq": "seq"},
        values=values, tag="debt")


def pin_pool(account_id: str, pool_id: str, seen: PoolSnapshot, *, debt_change: int = 0) -> dynamo.Action:
    """The pool item still holds what was read (debt, unbacked, seq: no lot created since), and
    moves debt by `debt_change`; always written, bumping seq, so two exact changes never commit
    from one read."""
    parts, values = [], {":zero": 0, ":one": 1, ":pool": pool_id, ":acct": account_id}
    for name, value in (("#debt", seen.debt), ("#unb", seen.unbacked), ("#seq", seen.seq)):
        placeholder = f":seen{name[1:]}"
        values[placeholder] = value
        parts.append(_ZERO_OR.format(name=name, value=placeholder) if value == 0 else f"{name} = {placeholder}")
    sets = ["#seq = if_not_exists(#seq, :zero) + :one", "poolId = :pool", "accountId = :acct"]
    if debt_change:
        sets.insert(0, "#debt = if_not_exists(#debt, :zero) + :dd")
        values[":dd"] = debt_change
    return dynamo.update(_table(), pool_key(account_id, pool_id), "SET " + ", ".join(sets),
                         condition=" AND ".join(f"({p})" if " OR " in p else p for p in parts),
                         names={"#debt": "debt", "#unb": "unbacked", "#seq": "seq"}, values=values, tag="pool")
