"""Lots: every credit is a lot with original = available + reserved + consumed, each >= 0.

Every update to a lot moves one amount between two of its fields in a single SET expression,
so the sum cannot change; the ConditionExpression on the field being decreased keeps it >= 0.
DynamoDB conditions cannot add attributes together, which is why the invariant is structural
(every update expression is balanced) and the reconciler re-checks it from the items.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from billing_core.kernel import clock, money, settings
from billing_core.kernel.errors import Contention, InvalidInput
from billing_core.ledger import idempotency
from billing_core.ledger.entries import Entry
from billing_core.store import dynamo, keys
from billing_core.store.ratelimit import RateCharge

SOURCE_TYPES = ("deposit", "grant", "campaign", "admin_mint")
# Lots created by the system rather than by the admin mint route.
INTERNAL_SOURCE_TYPES = ("adjustment",)
MAX_LOTS_PER_RESERVATION = 80  # keeps every finalize under DynamoDB's 100-action transaction cap
OPTIMISTIC_ATTEMPTS = 6


@dataclass(frozen=True)
class Lot:
    sk: str
    lot_id: str
    pool_id: str
    original: int
    available: int
    reserved: int
    consumed: int
    expires_at: str | None
    created_at: str

    @staticmethod
    def from_item(item: dict[str, Any]) -> Lot:
        return Lot(
            sk=item["sk"], lot_id=item["lotId"], pool_id=item["poolId"], original=item["original"],
            available=item["available"], reserved=item["reserved"], consumed=item["consumed"],
            expires_at=item.get("expiresAt"), created_at=item["createdAt"],
        )

    def drawable(self, now_iso: str) -> int:
        """Credit that can still be reserved: none once the lot has expired."""
        if self.expires_at is not None and self.expires_at <= now_iso:
            return 0
        return self.available


@dataclass(frozen=True)
class PoolSnapshot:
    """What one strongly consistent Query of an account's pool returns: its lots in draw order,
    its debt (soft-mode consumption the lots did not cover) and its unbacked holds (the part of
    pending soft-mode reservations the lots could not back)."""

    lots: list[Lot]
    debt: int
    unbacked: int
    seq: int = 0  # bumped by every deposit and adjustment: pins "no new lot" for exact balance changes

    def drawable(self, now_iso: str) -> int:
        return sum(lot.drawable(now_iso) for lot in self.lots)

    def available(self, now_iso: str) -> int:
        """What the account can still spend: negative when it owes or holds more than it has."""
        return self.drawable(now_iso) - self.debt - self.unbacked


def read_pool(account_id: str, pool_id: str) -> PoolSnapshot:
    items = dynamo.query_prefix(settings.billing_table(), keys.account_pk(account_id), keys.balance_prefix(pool_id))
    lots = [Lot.from_item(i) for i in items if i["sk"].startswith(f"BAL#{pool_id}#LOT#")]
    shortfall = next((i for i in items if i["sk"] == keys.debt_sk(pool_id)), {})
    return PoolSnapshot(lots=lots, debt=shortfall.get("debt", 0), unbacked=shortfall.get("unbacked", 0),
                        seq=shortfall.get("seq", 0))


def plan_draw(lots: list[Lot], amount: int, now_iso: str) -> list[tuple[Lot, int]]:
    """Take `amount` (or as much as there is) from lots in draw-down order. Pure; lots are
    already sorted by their sort key: earliest expiry first, then oldest, non-expiring last."""
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


_LOT_NAMES = {"#av": "available", "#rs": "reserved", "#cs": "consumed"}


def lot_key(account_id: str, lot_sk: str) -> dict[str, str]:
    return {"pk": keys.account_pk(account_id), "sk": lot_sk}


def reserve_action(account_id: str, lot_sk: str, amount: int, tag: str) -> dynamo.Action:
    """available -> reserved."""
    return dynamo.update(
        settings.billing_table(), lot_key(account_id, lot_sk),
        "SET #av = #av - :a, #rs = #rs + :a",
        condition="attribute_exists(pk) AND #av >= :a", names={"#av": "available", "#rs": "reserved"},
        values={":a": amount}, tag=tag,
    )


def settle_action(account_id: str, lot_sk: str, held: int, consume: int, tag: str) -> dynamo.Action:
    """reserved -> consumed (consume) and reserved -> available (held - consume)."""
    return dynamo.update(
        settings.billing_table(), lot_key(account_id, lot_sk),
        "SET #rs = #rs - :held, #cs = #cs + :c, #av = #av + :r",
        condition="attribute_exists(pk) AND #rs >= :held", names=_LOT_NAMES,
        values={":held": held, ":c": consume, ":r": held - consume}, tag=tag,
    )


def debt_key(account_id: str, pool_id: str) -> dict[str, str]:
    return {"pk": keys.account_pk(account_id), "sk": keys.debt_sk(pool_id)}


def shortfall_action(account_id: str, pool_id: str, *, debt: int = 0, unbacked: int = 0) -> dynamo.Action:
    """Soft mode's pool item: `debt` only grows here (mint settles it); `unbacked` moves by the
    signed amount and its condition keeps it >= 0."""
    values: dict[str, Any] = {":zero": 0, ":d": debt, ":u": unbacked, ":pool": pool_id, ":acct": account_id}
    condition = None
    if unbacked < 0:
        condition, values[":need"] = "#unb >= :need", -unbacked
    return dynamo.update(
        settings.billing_table(), debt_key(account_id, pool_id),
        "SET #debt = if_not_exists(#debt, :zero) + :d, #unb = if_not_exists(#unb, :zero) + :u, "
        "poolId = :pool, accountId = :acct",
        condition=condition, names={"#debt": "debt", "#unb": "unbacked"}, values=values, tag="debt",
    )


def lot_to_wire(item: dict[str, Any], settled_debt: int = 0) -> dict[str, Any]:
    return {
        "lotId": item["lotId"],
        "accountId": item["accountId"],
        "poolId": item["poolId"],
        "originalMicro": money.fmt(item["original"]),
        "availableMicro": money.fmt(item["available"]),
        "reservedMicro": money.fmt(item["reserved"]),
        "consumedMicro": money.fmt(item["consumed"]),
        "sourceType": item["sourceType"],
        "description": item["description"],
        "expiresAt": item.get("expiresAt"),
        "createdAt": item["createdAt"],
        "settledDebtMicro": money.fmt(settled_debt),
    }


def mint(
    *,
    account_id: str,
    pool_id: str,
    amount: int,
    source_type: str,
    description: str,
    expires_at: str | None,
    idempotency_key: str | None,
    actor: str,
    rate: RateCharge | None,
    entry_type: str = "deposit",
    entry_metadata: dict[str, Any] | None = None,
    extra_actions: Sequence[dynamo.Action] = (),
    idempotency_scope: str = "mint",
    lot_id: str | None = None,
) -> dict[str, Any]:
    """Create a lot. Outstanding debt in the pool is settled first, in the same transaction.

    `extra_actions` join the same transaction (a payment's state change, a campaign's budget):
    when one of them is refused, TransactionCancelled propagates with its tag in `failed`.
    """
    if keys.is_system_account(account_id):
        raise InvalidInput("system accounts receive revenue shares; credit cannot be minted to them",
                           code="SYSTEM_ACCOUNT")
    now = clock.now()
    now_iso = clock.iso(now)
    req_hash = idempotency.request_hash({
        "op": "mint", "accountId": account_id, "poolId": pool_id, "amount": amount,
        "sourceType": source_type, "description": description, "expiresAt": expires_at,
    })
    scope = idempotency_scope
    if expires_at is not None and expires_at <= now_iso:
        # A retry of a mint that succeeded before its lot expired still gets the original lot.
        original = idempotency.replay(scope, idempotency_key, req_hash) if idempotency_key else None
        if original is not None:
            return original
        raise InvalidInput("expiresAt must be in the future", code="EXPIRY_IN_PAST")
    for _ in range(OPTIMISTIC_ATTEMPTS):
        debt_item = dynamo.get(settings.billing_table(), debt_key(account_id, pool_id))
        debt = debt_item.get("debt", 0) if debt_item else 0
        settle = min(debt, amount)
        lot_id = lot_id or f"lot_{uuid.uuid4().hex}"
        item = {
            "pk": keys.account_pk(account_id),
            "sk": keys.lot_sk(pool_id, expires_at, now_iso, lot_id),
            "lotId": lot_id, "accountId": account_id, "poolId": pool_id,
            "original": amount, "available": amount - settle, "reserved": 0, "consumed": settle,
            "sourceType": source_type, "description": description, "expiresAt": expires_at,
            "createdAt": now_iso, "createdBy": actor,
        }
        response = lot_to_wire(item, settle)
        actions = [dynamo.put(settings.billing_table(), item, tag="lot", condition="attribute_not_exists(pk)")]
        if settle:
            actions.append(dynamo.update(
                settings.billing_table(), debt_key(account_id, pool_id),
                "SET #debt = #debt - :s, #seq = if_not_exists(#seq, :zero) + :one",
                condition="#debt = :d", names={"#debt": "debt", "#seq": "seq"},
                values={":s": settle, ":d": debt, ":zero": 0, ":one": 1}, tag="debt",
            ))
        else:
            # No debt seen: make sure none appeared since, or this deposit would skip settling it.
            # The pool's seq moves with every new lot, so an exact set-balance computed before
            # this deposit cannot commit after it (adjustments.py).
            actions.append(dynamo.update(
                settings.billing_table(), debt_key(account_id, pool_id),
                "SET #seq = if_not_exists(#seq, :zero) + :one, poolId = :pool, accountId = :acct",
                condition="attribute_not_exists(#debt) OR #debt = :zero", names={"#debt": "debt", "#seq": "seq"},
                values={":zero": 0, ":one": 1, ":pool": pool_id, ":acct": account_id}, tag="debt",
            ))
        actions.append(Entry(
            account_id=account_id, pool_id=pool_id, entry_type=entry_type, amount=amount,
            entry_id=f"{lot_id}:{entry_type}", created_at=now_iso, actor=actor, description=description,
            lot_id=lot_id, metadata={"sourceType": source_type, "settledDebtMicro": settle, **(entry_metadata or {})},
        ).action())
        actions.extend(extra_actions)
        try:
            return idempotency.commit(actions, rate, scope=scope, key=idempotency_key, req_hash=req_hash,
                                      response=response)
        except dynamo.TransactionCancelled as cancelled:
            if "debt" in cancelled.failed or cancelled.conflict:
                continue
            raise
    raise Contention("the account's debt kept changing; retry the request")
