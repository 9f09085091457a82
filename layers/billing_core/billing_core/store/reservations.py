"""Reservation items (BillingTable `RES#<id>` / `RES`) and their status transitions.

A reservation is created pending, with `pendingPk` set (the sparse `pending-by-expiry` index the
sweeper reads), and leaves pending exactly once: finalize and release are conditioned on still
pending and not yet expired, expire on still pending and expired. The expiry time is the
authority; whichever transition commits first wins and the others' conditions fail.

The item is also the idempotency record of all three operations: it keeps the request hash and
the settled figures, from which a retry gets the original answer back.
"""

from __future__ import annotations

from typing import Any

from billing_core.kernel import settings
from billing_core.ledger.model import Allocation, Reservation
from billing_core.store import dynamo, keys

INDEX = "pending-by-expiry"
_SETTLED_AT = {"finalized": "finalizedAt", "released": "releasedAt", "expired": "expiredAt"}


def _table() -> str:
    return settings.get().billing_table


def from_item(item: dict[str, Any]) -> Reservation:
    status = item["status"]
    return Reservation(
        reservation_id=item["reservationId"], account_id=item["accountId"], pool_id=item["poolId"],
        service_id=item["serviceId"], status=status, mode=item["mode"], estimate=item["estimateMicro"],
        backed=item["backedMicro"],
        allocations=tuple(Allocation(a["sk"], a["lotId"], a["amount"]) for a in item.get("allocations") or ()),
        revenue_shares={k: int(v) for k, v in (item.get("revenueShares") or {}).items()},
        expires_at=item["expiresAt"], expires_at_epoch=item["expiresAtEpoch"], request_hash=item["requestHash"],
        created_at=item["createdAt"], actual=item.get("actualCostMicro"), finalized=item.get("finalizedMicro"),
        released=item.get("releasedMicro"), overrun=item.get("overrunMicro"),
        settled_at=item.get(_SETTLED_AT.get(status, "")),
    )


def get(reservation_id: str) -> Reservation | None:
    item = dynamo.get(_table(), keys.reservation_key(reservation_id))
    return from_item(item) if item else None


def put_pending(res: Reservation) -> dynamo.Action:
    item = {
        **keys.reservation_key(res.reservation_id),
        "reservationId": res.reservation_id, "accountId": res.account_id, "poolId": res.pool_id,
        "serviceId": res.service_id, "status": "pending", "mode": res.mode,
        "estimateMicro": res.estimate, "backedMicro": res.backed,
        "allocations": [{"sk": a.sk, "lotId": a.lot_id, "amount": a.amount} for a in res.allocations],
        "revenueShares": res.revenue_shares,
        "expiresAt": res.expires_at, "expiresAtEpoch": res.expires_at_epoch,
        "pendingPk": keys.pending_pk(res.reservation_id),
        "requestHash": res.request_hash, "createdAt": res.created_at,
    }
    return dynamo.put(_table(), item, tag="reservation", condition="attribute_not_exists(pk)")


def _leave_pending(reservation_id: str, status: str, now_epoch: int, fields: dict[str, Any]) -> dynamo.Action:
    """pending -> status, once. Expiring needs the expiry passed; the others need it ahead."""
    names = {"#s": "status", **{f"#f{i}": name for i, name in enumerate(fields)}}
    values = {":to": status, ":pending": "pending", ":epoch": now_epoch,
              **{f":v{i}": value for i, value in enumerate(fields.values())}}
    sets = ", ".join(["#s = :to", *(f"#f{i} = :v{i}" for i in range(len(fields)))])
    expiry = "expiresAtEpoch <= :epoch" if status == "expired" else "expiresAtEpoch > :epoch"
    return dynamo.update(_table(), keys.reservation_key(reservation_id), f"SET {sets} REMOVE pendingPk",
                         condition=f"#s = :pending AND {expiry}", names=names, values=values, tag="reservation")


def finalize(reservation_id: str, *, actual: int, finalized: int, released: int, overrun: int, at: str,
             now_epoch: int) -> dynamo.Action:
    return _leave_pending(reservation_id, "finalized", now_epoch, {
        "actualCostMicro": actual, "finalizedMicro": finalized, "releasedMicro": released, "overrunMicro": overrun,
        "finalizedAt": at})


def release(reservation_id: str, *, at: str, now_epoch: int) -> dynamo.Action:
    return _leave_pending(reservation_id, "released", now_epoch, {"releasedAt": at})


def expire(reservation_id: str, *, at: str, now_epoch: int) -> dynamo.Action:
    return _leave_pending(reservation_id, "expired", now_epoch, {"expiredAt": at})


def due(shard: int, upper: str, *, limit: int,
        start: dict[str, Any] | None) -> tuple[list[str], dict[str, Any] | None]:
    """One page of the sparse index: the ids of a shard's pending reservations expiring at or
    before `upper`, and where the next page starts (None: this was the last)."""
    page = dynamo.query(_table(), index=INDEX, key_name="pendingPk", key_value=keys.pending_shard_pk(shard),
                        sort=dynamo.Range("<=", "expiresAt", upper), limit=limit, start=start)
    return [keys.reservation_id_of(item["pk"]) for item in page.items], page.last_key
