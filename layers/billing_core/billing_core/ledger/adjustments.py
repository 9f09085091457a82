"""Operator balance changes: set or adjust a balance, and the debit mechanics refunds reuse.
Audited, exactly-once, negative allowed.

A change is computed against one read of the pool and written in one transaction whose
conditions pin that read: every live lot's `available` and the pool item's debt, unbacked holds
and seq must still be what was read, so `previousBalanceMicro` is the balance the change really
replaced and `newBalanceMicro` the one it really left (a concurrent reserve makes it read again).

- Credit (delta > 0): a new lot (sourceType `adjustment`), settling the pool's debt first.
- Debit (delta < 0): live lots in draw-down order, available -> consumed; what they cannot
  cover becomes debt (a negative balance), settled first by the next deposit.
Lifetime paid totals are never touched here: only payments add to them.

Calls: GetItem (idempotency, when keyed) + GetItem (lifetime totals) + per attempt Query (the
pool) + TransactWriteItems.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from billing_core.kernel import clock, ids, retry, settings
from billing_core.kernel.context import Context
from billing_core.kernel.errors import InvalidInput
from billing_core.ledger import idempotency
from billing_core.ledger.lots import new_lot, plan_draw
from billing_core.ledger.model import BalanceChanged, Entry
from billing_core.store import accounts as account_store
from billing_core.store import dynamo
from billing_core.store import entries as entry_store
from billing_core.store import lots as lot_store

MAX_LIVE_LOTS = 90  # one transaction holds at most 100 actions


def _request_hash(entry_type: str, account_id: str, pool_id: str, request: dict[str, Any]) -> str:
    return idempotency.request_hash({"op": entry_type, "accountId": account_id, "poolId": pool_id, **request})


def replay(entry_type: str, *, account_id: str, pool_id: str, idempotency_key: str | None,
           request: dict[str, Any]) -> BalanceChanged | None:
    """The answer a keyed change already got, for callers that check more before changing
    (a refund's top-up): a retry after a lost answer must get it, not a refusal."""
    return idempotency.replay(entry_type, idempotency_key, _request_hash(entry_type, account_id, pool_id, request),
                              BalanceChanged)


def change_balance(
    ctx: Context,
    *,
    account_id: str,
    pool_id: str,
    target: int | None,
    delta: int | None,
    entry_type: str,
    reason: str,
    idempotency_key: str | None,
    request: dict[str, Any],
    extra_actions: Sequence[dynamo.Action] = (),
    refunded: int | None = None,
    order_id: str | None = None,
) -> BalanceChanged:
    """Set the pool's balance to `target`, or move it by `delta` (signed). One transaction."""
    if ids.is_system_account(account_id):
        raise InvalidInput("system account balances are revenue shares; they cannot be adjusted",
                           code="SYSTEM_ACCOUNT")
    if (target is None) == (delta is None):
        raise InvalidInput("give exactly one of balanceMicro and deltaMicro", code="INVALID_ADJUSTMENT")
    scope = entry_type
    req_hash = _request_hash(entry_type, account_id, pool_id, request)
    original = idempotency.replay(scope, idempotency_key, req_hash, BalanceChanged)
    if original is not None:
        return original
    lifetime_paid, _ = account_store.lifetime_totals(account_id)  # informational; never moved here
    scope, key, retention = idempotency.request_key(scope, idempotency_key)
    ceiling = settings.get().ceiling_micro

    def attempt() -> BalanceChanged:
        now_iso = clock.iso(clock.now())
        pool = lot_store.read_pool(account_id, pool_id)
        live = [lot for lot in pool.lots if lot.live(now_iso) and (lot.available or lot.reserved)]
        if len(live) > MAX_LIVE_LOTS:
            raise InvalidInput("this pool has too many live lots to adjust in one transaction", code="TOO_MANY_LOTS")
        previous = pool.available(now_iso)
        change = target - previous if target is not None else delta
        assert change is not None
        new = previous + change
        if abs(new) > ceiling or abs(change) > ceiling:
            raise InvalidInput("the resulting balance would exceed the ceiling", code="CEILING_EXCEEDED")
        entry_id = f"{entry_type}_{uuid.uuid4().hex}"
        metadata: dict[str, Any] = {"reason": reason, "previousBalanceMicro": previous, "newBalanceMicro": new}
        actions: list[dynamo.Action] = []
        lot_id = None
        if change > 0:
            settle = min(pool.debt, change)
            created = new_lot(account_id, pool_id, change, settle=settle, source_type="adjustment",
                              description=reason, expires_at=None, now_iso=now_iso)
            lot_id = created.lot_id
            actions.append(lot_store.put(created, created_by=ctx.actor))
            actions += [lot_store.pin(lot, 0, f"lot:{i}") for i, lot in enumerate(live)]
            actions.append(lot_store.pin_pool(account_id, pool_id, pool, debt_change=-settle))
            metadata.update(direction="credit", settledDebtMicro=settle)
        else:
            remaining = -change
            takes = {}
            for lot, take in plan_draw(live, remaining, now_iso):
                takes[lot.sk] = take
                remaining -= take
            actions += [lot_store.pin(lot, takes.get(lot.sk, 0), f"lot:{i}") for i, lot in enumerate(live)]
            actions.append(lot_store.pin_pool(account_id, pool_id, pool, debt_change=remaining))
            metadata.update(direction="debit" if change else "none", fromLotsMicro=-change - remaining,
                            toDebtMicro=remaining)
        result = BalanceChanged(
            account_id=account_id, pool_id=pool_id, previous_balance_micro=previous, new_balance_micro=new,
            delta_micro=change, reason=reason, entry_id=entry_id, entry_type=entry_type,
            lifetime_paid_micro=lifetime_paid, created_at=now_iso, refunded_micro=refunded, order_id=order_id)
        actions.append(entry_store.put(Entry(
            account_id=account_id, pool_id=pool_id, entry_type=entry_type, amount=abs(change), entry_id=entry_id,
            created_at=now_iso, actor=ctx.actor, description=reason, lot_id=lot_id, metadata=metadata)))
        actions += list(extra_actions)
        try:
            return idempotency.commit(actions, ctx, scope=scope, key=key, req_hash=req_hash, result=result,
                                      retention_seconds=retention)
        except dynamo.TransactionCancelled as cancelled:
            if cancelled.failed_tags("lot") or "pool" in cancelled.failed:
                raise retry.Again("the pool moved under us") from cancelled
            raise

    return retry.bounded(attempt, what="the account's balance")


def adjust(ctx: Context, *, account_id: str, pool_id: str, balance: int | None, delta: int | None, reason: str,
           idempotency_key: str | None) -> BalanceChanged:
    if delta == 0:
        raise InvalidInput("deltaMicro must not be zero", code="INVALID_ADJUSTMENT")
    return change_balance(
        ctx, account_id=account_id, pool_id=pool_id, target=balance, delta=delta, entry_type="adjustment",
        reason=reason, idempotency_key=idempotency_key, request={"balance": balance, "delta": delta, "reason": reason})
