"""Reservations: hold an estimate before expensive work, then finalize with the actual cost.

reserve   available -> reserved across lots in draw-down order, and a pending reservation.
finalize  reserved -> consumed (the cost) and reserved -> available (the rest), revenue shares.
release   reserved -> available for all of it.
expire    the same as release, for a pending reservation past its expiry. The expiry time is
          authoritative: finalize and release expire a stale reservation themselves, before any
          sweeper has run, and the conditions make sweeper and finalize agree on one outcome.

The reservation item is also the idempotency record of all three: it stores the request hash
and the original responses, and it is written in the same transaction as the money.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

from billing_core.kernel import clock, money, observability, settings
from billing_core.kernel.errors import Conflict as ConflictError
from billing_core.kernel.errors import Contention, Forbidden, InsufficientCredit, InvalidInput, NotFound
from billing_core.ledger import config, idempotency, lots
from billing_core.ledger.entries import Entry
from billing_core.ledger.lots import MAX_LOTS_PER_RESERVATION, OPTIMISTIC_ATTEMPTS
from billing_core.store import dynamo, keys, ratelimit
from billing_core.store.ratelimit import RateCharge

DEFAULT_TTL_SECONDS = 300
MAX_TTL_SECONDS = 86_400
COMMONS_ACCOUNT = "sys-commons"


@dataclass(frozen=True)
class Caller:
    """Who is asking: a service id (internal token sub), an admin, or the system itself."""

    kind: str
    subject: str

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.subject}"


def _table() -> str:
    return settings.billing_table()


def _load(reservation_id: str) -> dict[str, Any]:
    item = dynamo.get(_table(), keys.reservation_key(reservation_id))
    if item is None:
        raise NotFound(f"reservation {reservation_id} does not exist", code="RESERVATION_NOT_FOUND")
    return item


def _entry_type(mode: str, base: str) -> str:
    return f"shadow_{base}" if mode == "shadow" else base


# -- reserve ----------------------------------------------------------------------------------


def reserve(
    *,
    account_id: str,
    pool_id: str,
    estimate: int,
    reservation_id: str | None,
    ttl_seconds: int | None,
    caller: Caller,
    rate: RateCharge | None,
) -> dict[str, Any]:
    if keys.is_system_account(account_id):
        raise InvalidInput("system accounts cannot spend credit", code="SYSTEM_ACCOUNT")
    ttl = DEFAULT_TTL_SECONDS if ttl_seconds is None else ttl_seconds
    if not 1 <= ttl <= MAX_TTL_SECONDS:
        raise InvalidInput(f"ttlSeconds must be between 1 and {MAX_TTL_SECONDS}", code="INVALID_TTL")
    reservation_id = reservation_id or f"res_{uuid.uuid4().hex}"
    req_hash = idempotency.request_hash({
        "op": "reserve", "accountId": account_id, "poolId": pool_id, "estimate": estimate,
        "ttlSeconds": ttl, "service": caller.subject,
    })
    cfg = config.current()

    for _ in range(OPTIMISTIC_ATTEMPTS):
        now = clock.now()
        now_iso = clock.iso(now)
        pool = lots.read_pool(account_id, pool_id)
        available = pool.available(now_iso)
        mode = cfg.mode
        if mode == "shadow":
            plan: list[tuple[lots.Lot, int]] = []
        else:
            plan = lots.plan_draw(pool.lots, estimate, now_iso)
            if mode == "live" and available < estimate:
                existing = dynamo.get(_table(), keys.reservation_key(reservation_id))
                if existing is not None:  # a retry of a reservation that did succeed
                    return idempotency.original_or_conflict(existing, req_hash)
                raise InsufficientCredit(
                    "insufficient credit for this reservation",
                    details={"accountId": account_id, "poolId": pool_id,
                             "availableMicro": money.fmt(max(available, 0)),
                             "requestedMicro": money.fmt(estimate)},
                )
            if len(plan) > MAX_LOTS_PER_RESERVATION:
                raise InvalidInput("this reservation would span too many credit lots; reserve less at once",
                                   code="TOO_MANY_LOTS")
        backed = sum(take for _, take in plan)
        expires = math.ceil(now + ttl)  # whole seconds: the reported expiresAt is exactly what the conditions use
        response = {
            "reservationId": reservation_id,
            "reservedMicro": money.fmt(estimate),
            "expiresAt": clock.iso(expires),
            "billingMode": mode,
        }
        item = {
            **keys.reservation_key(reservation_id),
            "reservationId": reservation_id, "accountId": account_id, "poolId": pool_id,
            "serviceId": caller.subject, "status": "pending", "mode": mode,
            "estimateMicro": estimate, "backedMicro": backed,
            "allocations": [{"sk": lot.sk, "lotId": lot.lot_id, "amount": take} for lot, take in plan],
            "revenueShares": cfg.revenue_shares,
            "expiresAt": clock.iso(expires), "expiresAtEpoch": int(expires),
            "pendingPk": keys.pending_pk(reservation_id),
            "requestHash": req_hash, "response": response, "createdAt": now_iso,
        }
        actions = [dynamo.put(_table(), item, tag="reservation", condition="attribute_not_exists(pk)")]
        actions += [lots.reserve_action(account_id, lot.sk, take, tag=f"lot:{i}") for i, (lot, take) in
                    enumerate(plan)]
        if mode == "soft" and backed < estimate:  # held against the pool: its availability goes negative
            actions.append(lots.shortfall_action(account_id, pool_id, unbacked=estimate - backed))
        metadata: dict[str, Any] = {"backedMicro": backed, "expiresAt": clock.iso(expires)}
        if mode == "shadow":
            metadata["wouldRefuse"] = available < estimate
            metadata["availableMicro"] = max(available, 0)
        actions.append(Entry(
            account_id=account_id, pool_id=pool_id, entry_type=_entry_type(mode, "reserve"), amount=estimate,
            entry_id=f"{reservation_id}:reserve", created_at=now_iso, actor=caller.actor,
            description="reserve", reservation_id=reservation_id, metadata=metadata,
        ).action())
        try:
            ratelimit.transact(actions, rate)
            return response
        except dynamo.TransactionCancelled as cancelled:
            if "reservation" in cancelled.failed:
                return idempotency.original_or_conflict(_load(reservation_id), req_hash)
            if cancelled.failed_tags("lot:") or cancelled.conflict:
                continue  # another reserve took the credit first: read the lots again
            raise
    raise Contention("the account's lots kept changing under concurrent reserves; retry the request")


# -- expire (also used by finalize/release when they find a stale reservation) ---------------


def _status_conflict(res: dict[str, Any]) -> ConflictError:
    status = res["status"]
    code = {"finalized": "ALREADY_FINALIZED", "released": "RESERVATION_RELEASED",
            "expired": "RESERVATION_EXPIRED"}.get(status, "INVALID_STATE")
    details: dict[str, Any] = {"reservationId": res["reservationId"], "status": status}
    if status == "finalized":
        details["finalizedMicro"] = res["finalizeResponse"]["finalizedMicro"]
    return ConflictError(f"reservation is {status}", code=code, details=details)


def _unbacked(res: dict[str, Any]) -> int:
    return res["estimateMicro"] - res["backedMicro"] if res["mode"] == "soft" else 0


def _return_all_actions(res: dict[str, Any]) -> list[dynamo.Action]:
    """Everything the reservation held goes back: lots to available, the unbacked hold dropped."""
    actions = [lots.settle_action(res["accountId"], a["sk"], a["amount"], 0, tag=f"lot:{i}")
               for i, a in enumerate(res.get("allocations") or [])]
    if _unbacked(res):
        actions.append(lots.shortfall_action(res["accountId"], res["poolId"], unbacked=-_unbacked(res)))
    return actions


def expire(res: dict[str, Any], *, actor: str, rate: RateCharge | None) -> bool:
    """Release a pending reservation whose expiry has passed. True if this call expired it."""
    now = clock.now()
    if res["status"] != "pending" or res["expiresAtEpoch"] > now:
        return False
    now_iso = clock.iso(now)
    actions = [dynamo.update(
        _table(), keys.reservation_key(res["reservationId"]),
        "SET #s = :expired, expiredAt = :now REMOVE pendingPk",
        condition="#s = :pending AND expiresAtEpoch <= :epoch",
        names={"#s": "status"},
        values={":expired": "expired", ":pending": "pending", ":now": now_iso, ":epoch": int(now)},
        tag="reservation",
    )]
    actions += _return_all_actions(res)
    actions.append(Entry(
        account_id=res["accountId"], pool_id=res["poolId"], entry_type=_entry_type(res["mode"], "expire"),
        amount=res["estimateMicro"], entry_id=f"{res['reservationId']}:expire", created_at=now_iso,
        actor=actor, description="reservation expired", reservation_id=res["reservationId"],
    ).action())
    try:
        ratelimit.transact(actions, rate)
    except dynamo.TransactionCancelled as cancelled:
        if "reservation" in cancelled.failed:
            return False  # finalized, released or expired by someone else first
        raise
    observability.count("ReservationsExpired")  # by the sweeper or lazily by finalize/release
    return True


def _expired_conflict(res: dict[str, Any]) -> ConflictError:
    return ConflictError("reservation expired before it was finalized; its credit was released",
                         code="RESERVATION_EXPIRED",
                         details={"reservationId": res["reservationId"], "expiresAt": res["expiresAt"]})


# -- finalize ---------------------------------------------------------------------------------


def _settlement(res: dict[str, Any], actual: int) -> tuple[int, int, int, list[tuple[dict, int]], int]:
    """(finalized, released, overrun, [(allocation, consumed)], new debt) under the reservation's mode."""
    mode = res["mode"]
    estimate = res["estimateMicro"]
    overrun = max(0, actual - estimate)
    charged = actual if mode == "soft" else min(actual, estimate)
    released = estimate - min(actual, estimate)
    remaining = charged
    per_lot = []
    for allocation in res.get("allocations") or []:
        consume = min(allocation["amount"], remaining)
        remaining -= consume
        per_lot.append((allocation, consume))
    debt = remaining if mode == "soft" else 0  # soft: what the lots did not cover becomes debt
    return charged, released, overrun, per_lot, debt


def finalize(*, reservation_id: str, actual: int, caller: Caller, rate: RateCharge | None) -> dict[str, Any]:
    for _ in range(OPTIMISTIC_ATTEMPTS):
        res = _load(reservation_id)
        _authorize(res, caller)
        if res["status"] == "finalized":
            if res["actualCostMicro"] == actual:
                return res["finalizeResponse"]
            raise _status_conflict(res)
        if res["status"] != "pending":
            raise _status_conflict(res)
        now = clock.now()
        if res["expiresAtEpoch"] <= now:
            expire(res, actor=caller.actor, rate=rate)
            raise _expired_conflict(res)

        now_iso = clock.iso(now)
        mode = res["mode"]
        charged, released, overrun, per_lot, debt = _settlement(res, actual)
        response = {
            "reservationId": reservation_id,
            "finalizedMicro": money.fmt(charged),
            "releasedMicro": money.fmt(released),
            "overrunMicro": money.fmt(overrun),
            "billingMode": mode,
            "finalizedAt": now_iso,
        }
        actions = [dynamo.update(
            _table(), keys.reservation_key(reservation_id),
            "SET #s = :finalized, actualCostMicro = :actual, finalizeResponse = :resp, finalizedAt = :now "
            "REMOVE pendingPk",
            condition="#s = :pending AND expiresAtEpoch > :epoch",
            names={"#s": "status"},
            values={":finalized": "finalized", ":actual": actual, ":resp": response, ":now": now_iso,
                    ":pending": "pending", ":epoch": int(now)},
            tag="reservation",
        )]
        actions += [lots.settle_action(res["accountId"], a["sk"], a["amount"], consume, tag=f"lot:{i}")
                    for i, (a, consume) in enumerate(per_lot)]
        if debt or _unbacked(res):
            actions.append(lots.shortfall_action(res["accountId"], res["poolId"], debt=debt,
                                                 unbacked=-_unbacked(res)))
        actions.append(Entry(
            account_id=res["accountId"], pool_id=res["poolId"], entry_type=_entry_type(mode, "finalize"),
            amount=charged, entry_id=f"{reservation_id}:finalize", created_at=now_iso, actor=caller.actor,
            description="finalize", reservation_id=reservation_id,
            metadata={"actualCostMicro": actual, "releasedMicro": released, "overrunMicro": overrun,
                      "debtMicro": debt},
        ).action())
        if mode != "shadow":
            actions += _revenue_share_entries(res, charged, now_iso, caller)
        try:
            ratelimit.transact(actions, rate)
            observability.count("Finalizations")
            if overrun:
                observability.count("Overruns")  # overrun rate = Overruns / Finalizations (alarm > 5%)
            return response
        except dynamo.TransactionCancelled as cancelled:
            if "reservation" in cancelled.failed or cancelled.conflict:
                continue  # someone finalized, released or expired it first: read it again
            raise
    raise Contention("the reservation kept changing; retry the request")


def _revenue_share_entries(res: dict[str, Any], charged: int, now_iso: str, caller: Caller) -> list[dynamo.Action]:
    actions = []
    for account, bps in sorted((res.get("revenueShares") or {}).items()):
        amount = money.share(charged, int(bps))
        if amount <= 0:
            continue
        actions.append(Entry(
            account_id=account, pool_id="general",
            entry_type="commons_contribution" if account == COMMONS_ACCOUNT else "revenue_share",
            amount=amount, entry_id=f"{res['reservationId']}:share:{account}", created_at=now_iso,
            actor=caller.actor, description=f"{bps} bps of finalized spend",
            reservation_id=res["reservationId"],
            metadata={"fromAccountId": res["accountId"], "basisPoints": int(bps), "finalizedMicro": charged},
            shard_seed=res["reservationId"],
        ).action())
    return actions


def _authorize(res: dict[str, Any], caller: Caller) -> None:
    """Only the service that reserved may settle (admins and the system may settle anything)."""
    if caller.kind == "internal" and res.get("serviceId") != caller.subject:
        raise Forbidden("this reservation belongs to another service", code="NOT_RESERVATION_OWNER")


# -- release ----------------------------------------------------------------------------------


def release(*, reservation_id: str, caller: Caller, rate: RateCharge | None) -> dict[str, Any]:
    for _ in range(OPTIMISTIC_ATTEMPTS):
        res = _load(reservation_id)
        _authorize(res, caller)
        if res["status"] == "released":
            return res["releaseResponse"]
        if res["status"] != "pending":
            raise _status_conflict(res)
        now = clock.now()
        if res["expiresAtEpoch"] <= now:
            expire(res, actor=caller.actor, rate=rate)
            raise _expired_conflict(res)
        now_iso = clock.iso(now)
        response = {
            "reservationId": reservation_id,
            "status": "released",
            "releasedMicro": money.fmt(res["estimateMicro"]),
            "billingMode": res["mode"],
            "releasedAt": now_iso,
        }
        actions = [dynamo.update(
            _table(), keys.reservation_key(reservation_id),
            "SET #s = :released, releaseResponse = :resp, releasedAt = :now REMOVE pendingPk",
            condition="#s = :pending AND expiresAtEpoch > :epoch",
            names={"#s": "status"},
            values={":released": "released", ":resp": response, ":now": now_iso, ":pending": "pending",
                    ":epoch": int(now)},
            tag="reservation",
        )]
        actions += _return_all_actions(res)
        actions.append(Entry(
            account_id=res["accountId"], pool_id=res["poolId"], entry_type=_entry_type(res["mode"], "release"),
            amount=res["estimateMicro"], entry_id=f"{reservation_id}:release", created_at=now_iso,
            actor=caller.actor, description="release", reservation_id=reservation_id,
        ).action())
        try:
            ratelimit.transact(actions, rate)
            observability.count("Releases")
            return response
        except dynamo.TransactionCancelled as cancelled:
            if "reservation" in cancelled.failed or cancelled.conflict:
                continue
            raise
    raise Contention("the reservation kept changing; retry the request")
