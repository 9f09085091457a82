"""Reservations: hold an estimate before expensive work, then finalize with the actual cost.

reserve   available -> reserved across lots in draw-down order, and a pending reservation.
finalize  reserved -> consumed (the cost) and reserved -> available (the rest); the finalize entry
          carries the revenue shares (ledger.revenue).
release   reserved -> available for all of it.
expire    the same as release, for a pending reservation past its expiry. The expiry time is
          authoritative: finalize and release expire a stale reservation themselves, before any
          sweeper has run, and the conditions make sweeper and finalize agree on one outcome.

Billing modes: shadow records `shadow_*` entries and moves nothing; soft lets the account go
negative (unbacked holds, then debt); live refuses what the balance cannot back (402) and caps
an overrun at the estimate. A reservation keeps the mode it was made in.

The reservation item is the idempotency record of all three: it stores the request hash and the
settled figures, written in the same transaction as the money.

Calls per attempt: reserve = Query (the pool) + TransactWriteItems; finalize and release =
GetItem + TransactWriteItems. At most retry.ATTEMPTS attempts.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from billing_core.kernel import clock, ids, money, observability, retry
from billing_core.kernel.context import Context
from billing_core.kernel.errors import Conflict, Forbidden, InsufficientCredit, InvalidInput, NotFound
from billing_core.ledger import config, idempotency, revenue
from billing_core.ledger.lots import MAX_LOTS_PER_RESERVATION, plan_draw
from billing_core.ledger.model import Allocation, Entry, Finalized, Released, Reservation, Reserved
from billing_core.store import dynamo, transaction
from billing_core.store import entries as entry_store
from billing_core.store import lots as lot_store
from billing_core.store import reservations as store

DEFAULT_TTL_SECONDS = 300
MAX_TTL_SECONDS = 86_400


def _load(reservation_id: str) -> Reservation:
    res = store.get(reservation_id)
    if res is None:
        raise NotFound(f"reservation {reservation_id} does not exist", code="RESERVATION_NOT_FOUND")
    return res


def _entry_type(mode: str, base: str) -> str:
    return f"shadow_{base}" if mode == "shadow" else base


def reserved(res: Reservation) -> Reserved:
    return Reserved(res.reservation_id, res.estimate, res.expires_at, res.mode)


def _original(res: Reservation, req_hash: str) -> Reserved:
    """A retry of a reservation that did succeed gets its answer; another request under the same
    id is a conflict."""
    if res.request_hash != req_hash:
        raise idempotency.reused()
    return reserved(res)


# -- reserve ----------------------------------------------------------------------------------


def insufficient(account_id: str, pool_id: str, *, available: int, required: int) -> InsufficientCredit:
    """The 402 a caller can act on: how much is needed, how much there is, what is missing. (The
    edge adds `topUpUrl`, where to pay: the core does not know the API's origin.)"""
    have = max(available, 0)
    return InsufficientCredit(
        "insufficient credit for this reservation",
        details={"accountId": account_id, "poolId": pool_id, "availableMicro": money.fmt(have),
                 "requestedMicro": money.fmt(required), "requiredMicro": money.fmt(required),
                 "shortfallMicro": money.fmt(required - have)})


def reserve(ctx: Context, *, account_id: str, pool_id: str, estimate: int, reservation_id: str | None,
            ttl_seconds: int | None) -> Reserved:
    if ids.is_system_account(account_id):
        raise InvalidInput("system accounts cannot spend credit", code="SYSTEM_ACCOUNT")
    ttl = DEFAULT_TTL_SECONDS if ttl_seconds is None else ttl_seconds
    if not 1 <= ttl <= MAX_TTL_SECONDS:
        raise InvalidInput(f"ttlSeconds must be between 1 and {MAX_TTL_SECONDS}", code="INVALID_TTL")
    rid = reservation_id or f"res_{uuid.uuid4().hex}"
    req_hash = idempotency.request_hash({
        "op": "reserve", "accountId": account_id, "poolId": pool_id, "estimate": estimate,
        "ttlSeconds": ttl, "service": ctx.caller.subject,
    })
    cfg = config.current()

    def attempt() -> Reserved:
        now = clock.now()
        now_iso = clock.iso(now)
        pool = lot_store.read_pool(account_id, pool_id)
        available = pool.available(now_iso)
        mode = cfg.mode
        plan = [] if mode == "shadow" else plan_draw(pool.lots, estimate, now_iso)
        if mode == "live" and available < estimate:
            existing = store.get(rid)
            if existing is not None:
                return _original(existing, req_hash)
            raise insufficient(account_id, pool_id, available=available, required=estimate)
        if len(plan) > MAX_LOTS_PER_RESERVATION:
            raise InvalidInput("this reservation would span too many credit lots; reserve less at once",
                               code="TOO_MANY_LOTS")
        backed = sum(take for _, take in plan)
        expires = math.ceil(now + ttl)  # whole seconds: the reported expiresAt is exactly what the conditions use
        res = Reservation(
            reservation_id=rid, account_id=account_id, pool_id=pool_id, service_id=ctx.caller.subject,
            status="pending", mode=mode, estimate=estimate, backed=backed,
            allocations=tuple(Allocation(lot.sk, lot.lot_id, take) for lot, take in plan),
            revenue_shares=cfg.revenue_shares, expires_at=clock.iso(expires), expires_at_epoch=expires,
            request_hash=req_hash, created_at=now_iso)
        actions = [store.put_pending(res)]
        actions += [lot_store.reserve(account_id, lot.sk, take, tag=f"lot:{i}") for i, (lot, take) in enumerate(plan)]
        if res.unbacked:  # soft: held against the pool, whose availability goes negative
            actions.append(lot_store.shortfall(account_id, pool_id, unbacked=res.unbacked))
        elif mode == "live" and (pool.debt or pool.unbacked):
            # The lots' conditions cannot see the pool's debt and soft holds, which the 402
            # decision above subtracted: pin the pool item (seq bumped), so two reserves made
            # from one read of an indebted pool cannot both commit. Debt that appears after the
            # read (a soft overrun settling) is ordered after this reserve, as if it came later.
            actions.append(lot_store.pin_pool(account_id, pool_id, pool))
        metadata: dict[str, Any] = {"backedMicro": backed, "expiresAt": res.expires_at}
        if mode == "shadow":
            metadata["wouldRefuse"] = available < estimate
            metadata["availableMicro"] = max(available, 0)
        actions.append(entry_store.put(Entry(
            account_id=account_id, pool_id=pool_id, entry_type=_entry_type(mode, "reserve"), amount=estimate,
            entry_id=f"{rid}:reserve", created_at=now_iso, actor=ctx.actor, description="reserve",
            reservation_id=rid, metadata=metadata)))
        try:
            transaction.commit(actions, ctx)
        except dynamo.TransactionCancelled as cancelled:
            if "reservation" in cancelled.failed:
                return _original(_load(rid), req_hash)
            if cancelled.failed_tags("lot:") or "pool" in cancelled.failed:
                raise retry.Again("another reserve took the credit first") from cancelled
            raise
        return reserved(res)

    return retry.bounded(attempt, what="the account's lots")


# -- expire (also used by finalize/release when they find a stale reservation) ---------------


def _status_conflict(res: Reservation) -> Conflict:
    code = {"finalized": "ALREADY_FINALIZED", "released": "RESERVATION_RELEASED",
            "expired": "RESERVATION_EXPIRED"}.get(res.status, "INVALID_STATE")
    details: dict[str, Any] = {"reservationId": res.reservation_id, "status": res.status}
    if res.status == "finalized":
        details["finalizedMicro"] = money.fmt(res.finalized or 0)
    return Conflict(f"reservation is {res.status}", code=code, details=details)


def _expired_conflict(res: Reservation) -> Conflict:
    return Conflict("reservation expired before it was finalized; its credit was released",
                    code="RESERVATION_EXPIRED",
                    details={"reservationId": res.reservation_id, "expiresAt": res.expires_at})


def _return_all(res: Reservation) -> list[dynamo.Action]:
    """Everything the reservation held goes back: lots to available, the unbacked hold dropped."""
    actions = [lot_store.settle(res.account_id, a.sk, a.amount, 0, tag=f"lot:{i}")
               for i, a in enumerate(res.allocations)]
    if res.unbacked:
        actions.append(lot_store.shortfall(res.account_id, res.pool_id, unbacked=-res.unbacked))
    return actions


def expire(ctx: Context, res: Reservation) -> bool:
    """Release a pending reservation whose expiry has passed. True if this call expired it.
    One TransactWriteItems; losing to a finalize, release or another expiry is not an error."""
    now = clock.now()
    if res.status != "pending" or res.expires_at_epoch > now:
        return False
    now_iso = clock.iso(now)
    actions = [store.expire(res.reservation_id, at=now_iso, now_epoch=int(now)), *_return_all(res),
               entry_store.put(Entry(
                   account_id=res.account_id, pool_id=res.pool_id, entry_type=_entry_type(res.mode, "expire"),
                   amount=res.estimate, entry_id=f"{res.reservation_id}:expire", created_at=now_iso, actor=ctx.actor,
                   description="reservation expired", reservation_id=res.reservation_id))]
    try:
        transaction.commit(actions, ctx)
    except dynamo.TransactionCancelled as cancelled:
        if "reservation" in cancelled.failed:
            return False  # finalized, released or expired by someone else first
        raise
    observability.count("ReservationsExpired")  # by the sweeper or lazily by finalize/release
    return True


def _authorize(res: Reservation, ctx: Context) -> None:
    """Only the service that reserved may settle (admins and the system may settle anything)."""
    if ctx.caller.kind == "internal" and res.service_id != ctx.caller.subject:
        raise Forbidden("this reservation belongs to another service", code="NOT_RESERVATION_OWNER")


def _pending(ctx: Context, res: Reservation) -> float:
    """Refuse a reservation that left pending; expire one whose time is up. Returns now."""
    if res.status != "pending":
        raise _status_conflict(res)
    now = clock.now()
    if res.expires_at_epoch <= now:
        expire(ctx, res)
        raise _expired_conflict(res)
    return now


# -- finalize ---------------------------------------------------------------------------------


def _leave_pending(actions: list[dynamo.Action], ctx: Context) -> None:
    """Commit a finalize or release; if the reservation left pending meanwhile (finalized,
    released or expired by another request), read it again."""
    try:
        transaction.commit(actions, ctx)
    except dynamo.TransactionCancelled as cancelled:
        if "reservation" in cancelled.failed:
            raise retry.Again("the reservation left pending meanwhile") from cancelled
        raise


def settlement(res: Reservation, actual: int) -> tuple[int, int, int, list[tuple[Allocation, int]], int]:
    """(charged, released, overrun, [(allocation, consumed)], new debt) under the reservation's mode.
    Pure: live and shadow cap the charge at the estimate; soft charges all, the excess as debt."""
    overrun = max(0, actual - res.estimate)
    charged = actual if res.mode == "soft" else min(actual, res.estimate)
    released = res.estimate - min(actual, res.estimate)
    remaining = charged
    per_lot = []
    for allocation in res.allocations:
        consume = min(allocation.amount, remaining)
        remaining -= consume
        per_lot.append((allocation, consume))
    debt = remaining if res.mode == "soft" else 0
    return charged, released, overrun, per_lot, debt


def finalized(res: Reservation) -> Finalized:
    assert res.finalized is not None and res.released is not None and res.overrun is not None
    return Finalized(res.reservation_id, res.finalized, res.released, res.overrun, res.mode, res.settled_at or "")


def finalize(ctx: Context, *, reservation_id: str, actual: int) -> Finalized:
    def attempt() -> Finalized:
        res = _load(reservation_id)
        _authorize(res, ctx)
        if res.status == "finalized":
            if res.actual == actual:
                return finalized(res)
            raise _status_conflict(res)
        now = _pending(ctx, res)
        now_iso = clock.iso(now)
        charged, released, overrun, per_lot, debt = settlement(res, actual)
        actions = [store.finalize(reservation_id, actual=actual, finalized=charged, released=released,
                                  overrun=overrun, at=now_iso, now_epoch=int(now))]
        actions += [lot_store.settle(res.account_id, a.sk, a.amount, consume, tag=f"lot:{i}")
                    for i, (a, consume) in enumerate(per_lot)]
        if debt or res.unbacked:
            actions.append(lot_store.shortfall(res.account_id, res.pool_id, debt=debt, unbacked=-res.unbacked))
        actions.append(entry_store.put(Entry(
            account_id=res.account_id, pool_id=res.pool_id, entry_type=_entry_type(res.mode, "finalize"),
            amount=charged, entry_id=f"{reservation_id}:finalize", created_at=now_iso, actor=ctx.actor,
            description="finalize", reservation_id=reservation_id,
            metadata={"actualCostMicro": actual, "releasedMicro": released, "overrunMicro": overrun,
                      "debtMicro": debt},
            revenue_shares=(revenue.distribution(res, charged) or None) if res.mode != "shadow" else None)))
        _leave_pending(actions, ctx)
        observability.count("Finalizations")
        if overrun:
            observability.count("Overruns")  # overrun rate = Overruns / Finalizations (alarm > 5%)
        return Finalized(reservation_id, charged, released, overrun, res.mode, now_iso)

    return retry.bounded(attempt, what="the reservation")


# -- release ----------------------------------------------------------------------------------


def released(res: Reservation) -> Released:
    return Released(res.reservation_id, res.estimate, res.mode, res.settled_at or "")


def release(ctx: Context, *, reservation_id: str) -> Released:
    def attempt() -> Released:
        res = _load(reservation_id)
        _authorize(res, ctx)
        if res.status == "released":
            return released(res)
        now = _pending(ctx, res)
        now_iso = clock.iso(now)
        actions = [store.release(reservation_id, at=now_iso, now_epoch=int(now)), *_return_all(res),
                   entry_store.put(Entry(
                       account_id=res.account_id, pool_id=res.pool_id, entry_type=_entry_type(res.mode, "release"),
                       amount=res.estimate, entry_id=f"{reservation_id}:release", created_at=now_iso,
                       actor=ctx.actor, description="release", reservation_id=reservation_id))]
        _leave_pending(actions, ctx)
        observability.count("Releases")
        return Released(reservation_id, res.estimate, res.mode, now_iso)

    return retry.bounded(attempt, what="the reservation")
