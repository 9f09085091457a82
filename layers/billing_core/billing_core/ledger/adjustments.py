"""Operator balance changes: set or adjust a balance, refunds. Audited, exactly-once, negative allowed.

A change is computed against one read of the pool and written in one transaction whose
conditions pin that read: every live lot's `available` and the pool's debt/unbacked holds must
still be what was read, so `previousBalanceMicro` is the balance the change really replaced and
`newBalanceMicro` the one it really left (a concurrent reserve makes the write retry instead).

- Credit (delta > 0): a new lot (sourceType `adjustment`), settling the pool's debt first.
- Debit (delta < 0): live lots in draw-down order, available -> consumed; what they cannot
  cover becomes debt (a negative balance), settled first by the next deposit.
Lifetime paid totals are never touched here: only payments add to them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from billing_core.kernel import clock, money, settings
from billing_core.kernel.errors import Contention, InvalidInput
from billing_core.ledger import idempotency, lots
from billing_core.ledger.entries import Entry
from billing_core.store import dynamo, keys
from billing_core.store.ratelimit import RateCharge

MAX_LIVE_LOTS = 90  # one transaction holds at most 100 actions
ATTEMPTS = 6


def lifetime_totals(account_id: str) -> dict[str, int]:
    item = dynamo.get(settings.billing_table(), keys.account_totals_key(account_id)) or {}
    return {"paid": item.get("lifetimePaid", 0), "refunded": item.get("lifetimeRefunded", 0)}


def _pool_condition(account_id: str, pool_id: str, pool: lots.PoolSnapshot, update: str | None,
                    values: dict[str, Any]) -> dynamo.Action:
    """The pool's item must hold what was read (debt, unbacked holds, and seq: no lot created
    since); it is always written, bumping seq, so two exact changes never commit from one read."""
    parts, vals = [], {**values, ":zero": 0, ":one": 1}
    for name, seen in (("#debt", pool.debt), ("#unb", pool.unbacked), ("#seq", pool.seq)):
        placeholder = f":seen{name[1:]}"
        vals[placeholder] = seen
        if seen == 0:
            parts.append(f"(attribute_not_exists({name}) OR {name} = {placeholder})")
        else:
            parts.append(f"{name} = {placeholder}")
    condition = " AND ".join(parts)
    names = {"#debt": "debt", "#unb": "unbacked", "#seq": "seq"}
    vals[":pool"], vals[":acct"] = pool_id, account_id
    bump = "#seq = if_not_exists(#seq, :zero) + :one, poolId = :pool, accountId = :acct"
    expression = f"{update}, {bump}" if update else f"SET {bump}"
    return dynamo.update(settings.billing_table(), lots.debt_key(account_id, pool_id), expression,
                         condition=condition, names=names, values=vals, tag="pool")


def _lot_pin(account_id: str, lot: lots.Lot, take: int, tag: str) -> dynamo.Action:
    """Pin a live lot at the `available` that was read; with take > 0 also move available -> consumed."""
    key = lots.lot_key(account_id, lot.sk)
    names = {"#av": "available"}
    values: dict[str, Any] = {":seen": lot.available}
    if take == 0:
        return dynamo.check(settings.billing_table(), key, "#av = :seen", names=names, values=values, tag=tag)
    names["#cs"] = "consumed"
    values[":t"] = take
    return dynamo.update(settings.billing_table(), key, "SET #av = #av - :t, #cs = #cs + :t",
                         condition="#av = :seen", names=names, values=values, tag=tag)


def change_balance(
    *,
    account_id: str,
    pool_id: str,
    target: int | None,
    delta: int | None,
    entry_type: str,
    reason: str,
    actor: str,
    rate: RateCharge | None,
    idempotency_key: str | None,
    request: dict[str, Any],
    extra_actions: Sequence[dynamo.Action] = (),
    response_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Set the pool's balance to `target`, or move it by `delta` (signed). One transaction."""
    if keys.is_system_account(account_id):
        raise InvalidInput("system account balances are revenue shares; they cannot be adjusted",
                           code="SYSTEM_ACCOUNT")
    if (target is None) == (delta is None):
        raise InvalidInput("give exactly one of balanceMicro and deltaMicro", code="INVALID_ADJUSTMENT")
    scope = entry_type
    req_hash = idempotency.request_hash({"op": entry_type, "accountId": account_id, "poolId": pool_id, **request})
    if idempotency_key:
        original = idempotency.replay(scope, idempotency_key, req_hash)
        if original is not None:
            return original
    table = settings.billing_table()
    lifetime_paid = lifetime_totals(account_id)["paid"]  # informational; balance changes never move it
    for _ in range(ATTEMPTS):
        now_iso = clock.iso(clock.now())
        pool = lots.read_pool(account_id, pool_id)
        live = [lot for lot in pool.lots
                if (lot.expires_at is None or lot.expires_at > now_iso) and (lot.available or lot.reserved)]
        if len(live) > MAX_LIVE_LOTS:
            raise InvalidInput("this pool has too many live lots to adjust in one transaction",
                               code="TOO_MANY_LOTS")
        previous = pool.available(now_iso)
        change = target - previous if target is not None else delta
        assert change is not None
        new = previous + change
        if abs(new) > settings.ceiling_micro() or abs(change) > settings.ceiling_micro():
            raise InvalidInput("the resulting balance would exceed the ceiling", code="CEILING_EXCEEDED")
        entry_id = f"{entry_type}_{uuid.uuid4().hex}"
        metadata: dict[str, Any] = {"reason": reason, "previousBalanceMicro": previous, "newBalanceMicro": new}
        actions: list[dynamo.Action] = []
        lot_id = None
        if change > 0:
            settle = min(pool.debt, change)
            lot_id = f"lot_{uuid.uuid4().hex}"
            actions.append(dynamo.put(table, {
                "pk": keys.account_pk(account_id),
                "sk": keys.lot_sk(pool_id, None, now_iso, lot_id),
                "lotId": lot_id, "accountId": account_id, "poolId": pool_id,
                "original": change, "available": change - settle, "reserved": 0, "consumed": settle,
                "sourceType": "adjustment", "description": reason, "expiresAt": None,
                "createdAt": now_iso, "createdBy": actor,
            }, tag="lot", condition="attribute_not_exists(pk)"))
            actions += [_lot_pin(account_id, lot, 0, f"lot:{i}") for i, lot in enumerate(live)]
            update = "SET #debt = #debt - :s" if settle else None
            actions.append(_pool_condition(account_id, pool_id, pool, update, {":s": settle} if settle else {}))
            metadata.update(direction="credit", settledDebtMicro=settle)
        else:
            remaining = -change
            takes = {}
            for lot, take in lots.plan_draw(live, remaining, now_iso):
                takes[lot.sk] = take
                remaining -= take
            actions += [_lot_pin(account_id, lot, takes.get(lot.sk, 0), f"lot:{i}") for i, lot in enumerate(live)]
            update = "SET #debt = if_not_exists(#debt, :zero) + :rest" if remaining else None
            values = {":rest": remaining} if remaining else {}
            actions.append(_pool_condition(account_id, pool_id, pool, update, values))
            metadata.update(direction="debit" if change else "none", fromLotsMicro=-change - remaining,
                            toDebtMicro=remaining)
        response = {
            "accountId": account_id, "poolId": pool_id,
            "previousBalanceMicro": money.fmt(previous), "newBalanceMicro": money.fmt(new),
            "deltaMicro": money.fmt(change), "reason": reason, "entryId": entry_id, "entryType": entry_type,
            "lifetimePaidMicro": money.fmt(lifetime_paid),
            "createdAt": now_iso, **(response_extra or {}),
        }
        actions.append(Entry(
            account_id=account_id, pool_id=pool_id, entry_type=entry_type, amount=abs(change), entry_id=entry_id,
            created_at=now_iso, actor=actor, description=reason, lot_id=lot_id, metadata=metadata,
        ).action())
        actions += list(extra_actions)
        try:
            return idempotency.commit(actions, rate, scope=scope, key=idempotency_key, req_hash=req_hash,
                                      response=response)
        except dynamo.TransactionCancelled as cancelled:
            if cancelled.failed_tags("lot") or "pool" in cancelled.failed or cancelled.conflict:
                continue  # the pool moved under us: read it again
            raise
    raise Contention("the account's balance kept changing; retry the request")


def adjust(*, account_id: str, pool_id: str, balance: int | None, delta: int | None, reason: str, actor: str,
           rate: RateCharge | None, idempotency_key: str | None) -> dict[str, Any]:
    if delta == 0:
        raise InvalidInput("deltaMicro must not be zero", code="INVALID_ADJUSTMENT")
    return change_balance(
        account_id=account_id, pool_id=pool_id, target=balance, delta=delta, entry_type="adjustment",
        reason=reason, actor=actor, rate=rate, idempotency_key=idempotency_key,
        request={"balance": balance, "delta": delta, "reason": reason},
    )
