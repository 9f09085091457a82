"""Lots: every credit is a lot (deposit, grant, campaign, admin mint, adjustment), spent in
draw-down order: earliest expiry first, then oldest, non-expiring last (the lot's sort key).

A new lot settles the pool's debt first, in the same transaction (store.lots.new_lot_on_pool).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from billing_core.kernel import clock, ids, retry
from billing_core.kernel.context import Context
from billing_core.kernel.errors import InvalidInput
from billing_core.ledger import idempotency
from billing_core.ledger.model import Entry, Lot, Minted
from billing_core.store import dynamo, keys
from billing_core.store import entries as entry_store
from billing_core.store import lots as lot_store

MAX_LOTS_PER_RESERVATION = 80  # keeps every finalize under DynamoDB's 100-action transaction cap


def plan_draw(lots: Sequence[Lot], amount: int, now_iso: str) -> list[tuple[Lot, int]]:
    """Take `amount` (or as much as there is) from lots in draw-down order. Pure; lots are
    already sorted by their sort key."""
    plan: list[tuple[Lot, int]] = []
    remaining = amount
    for lot in lots:
        if remaining == 0:
            break
        take = min(lot.drawable(now_iso), remaining)
        if take > 0:
            plan.append((lot, take))
            remaining -= take
    return plan


def new_lot(account_id: str, pool_id: str, amount: int, *, settle: int, source_type: str, description: str,
            expires_at: str | None, now_iso: str, lot_id: str | None = None) -> Lot:
    """A lot of `amount`, of which `settle` pays off the pool's debt at once (consumed)."""
    lot_id = lot_id or f"lot_{uuid.uuid4().hex}"
    return Lot(account_id=account_id, pool_id=pool_id, lot_id=lot_id,
               sk=keys.lot_sk(pool_id, expires_at, now_iso, lot_id), original=amount, available=amount - settle,
               reserved=0, consumed=settle, source_type=source_type, description=description,
               expires_at=expires_at, created_at=now_iso)


def minted(lot: Lot) -> Minted:
    return Minted(lot_id=lot.lot_id, account_id=lot.account_id, pool_id=lot.pool_id, original_micro=lot.original,
                  available_micro=lot.available, reserved_micro=lot.reserved, consumed_micro=lot.consumed,
                  source_type=lot.source_type, description=lot.description, expires_at=lot.expires_at,
                  created_at=lot.created_at, settled_debt_micro=lot.consumed)


def mint(
    ctx: Context,
    *,
    account_id: str,
    pool_id: str,
    amount: int,
    source_type: str,
    description: str,
    expires_at: str | None,
    idempotency_key: str | None,
    entry_type: str = "deposit",
    entry_metadata: dict[str, Any] | None = None,
    extra_actions: Sequence[dynamo.Action] = (),
    idempotency_scope: str = "mint",
    lot_id: str | None = None,
) -> Minted:
    """Create a lot; outstanding debt in the pool is settled first, in the same transaction.

    `extra_actions` join the same transaction (a payment's state change, a campaign's budget):
    when one of them is refused, TransactionCancelled propagates with its tag in `failed`.
    Calls: GetItem (the pool's debt) + TransactWriteItems; a lost race on the debt reads again.
    """
    if ids.is_system_account(account_id):
        raise InvalidInput("system accounts receive revenue shares; credit cannot be minted to them",
                           code="SYSTEM_ACCOUNT")
    now_iso = clock.iso(clock.now())
    req_hash = idempotency.request_hash({
        "op": "mint", "accountId": account_id, "poolId": pool_id, "amount": amount,
        "sourceType": source_type, "description": description, "expiresAt": expires_at,
    })
    if expires_at is not None and expires_at <= now_iso:
        # A retry of a mint that succeeded before its lot expired still gets the original lot.
        original = idempotency.replay(idempotency_scope, idempotency_key, req_hash, Minted)
        if original is not None:
            return original
        raise InvalidInput("expiresAt must be in the future", code="EXPIRY_IN_PAST")
    lot_id = lot_id or f"lot_{uuid.uuid4().hex}"
    scope, key, retention = idempotency.request_key(idempotency_scope, idempotency_key)

    def attempt() -> Minted:
        debt = lot_store.debt(account_id, pool_id)
        settle = min(debt, amount)
        lot = new_lot(account_id, pool_id, amount, settle=settle, source_type=source_type, description=description,
                      expires_at=expires_at, now_iso=now_iso, lot_id=lot_id)
        actions = [
            lot_store.put(lot, created_by=ctx.actor),
            lot_store.new_lot_on_pool(account_id, pool_id, seen_debt=debt, settle=settle),
            entry_store.put(Entry(
                account_id=account_id, pool_id=pool_id, entry_type=entry_type, amount=amount,
                entry_id=f"{lot_id}:{entry_type}", created_at=now_iso, actor=ctx.actor, description=description,
                lot_id=lot_id, metadata={"sourceType": source_type, "settledDebtMicro": settle,
                                         **(entry_metadata or {})})),
            *extra_actions,
        ]
        try:
            return idempotency.commit(actions, ctx, scope=scope, key=key, req_hash=req_hash, result=minted(lot),
                                      retention_seconds=retention)
        except dynamo.TransactionCancelled as cancelled:
            if "debt" in cancelled.failed:
                raise retry.Again("the pool's debt changed") from cancelled
            raise

    return retry.bounded(attempt, what="the account's debt")
