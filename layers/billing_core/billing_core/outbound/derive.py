"""Which changes are events: pure functions from an item's images (before, after) to an event.

Each event id is derived from what happened, never drawn at random, so seeing the same change
again (a redelivered stream batch) yields the same event and the same deliveries:

  topup.credited       a payment item gains creditedAt (set once, by the credit's transaction)
  reservation.expired  a reservation item goes pending -> expired
  work.parked          a work item enters manual_review (not a webhook delivery: a parked delivery
                       announced by a webhook could park again, for ever)
  quota.threshold      a usage counter (or the seat count) crosses 80 % or 100 % of its limit:
                       old < ceil(limit * pct / 100) <= new; one id per org, quota, threshold, period
  balance.low          a lot or pool item of an account changed: the pool is read and compared
                       with its threshold by dispatch.py (the images of one lot cannot tell)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from billing_core.kernel import clock, money
from billing_core.outbound.model import QUOTA_THRESHOLDS, Event
from billing_core.store import keys
from billing_core.store.streams import Change

DELIVERY_OPERATION = "webhook_delivery"


def event_id(identity: str) -> str:
    return "evt_" + hashlib.sha256(identity.encode()).hexdigest()[:32]


def _when(change: Change, value: Any) -> str:
    return value if isinstance(value, str) and value else clock.iso(change.at or clock.now())


def topup_credited(change: Change) -> Event | None:
    if not change.pk.startswith("PAY#") or change.new is None or "creditedAt" not in change.new:
        return None
    if change.old is not None and "creditedAt" in change.old:
        return None
    new = change.new
    return Event(event_id(f"topup.credited\x00{new['orderId']}"), "topup.credited", _when(change, new["creditedAt"]),
                 {"accountId": new["accountId"], "orderId": new["orderId"], "poolId": new.get("poolId", "general"),
                  "creditedMicro": money.fmt(int(new.get("creditedMicro", 0))), "provider": new.get("provider"),
                  "creditedAt": new["creditedAt"]})


def reservation_expired(change: Change) -> Event | None:
    if not keys.is_reservation_key(change.pk, change.sk) or change.new is None or change.old is None:
        return None
    if change.old.get("status") != "pending" or change.new.get("status") != "expired":
        return None
    new = change.new
    return Event(event_id(f"reservation.expired\x00{new['reservationId']}"), "reservation.expired",
                 _when(change, new.get("expiredAt")),
                 {"reservationId": new["reservationId"], "accountId": new["accountId"], "poolId": new["poolId"],
                  "serviceId": new.get("serviceId"), "releasedMicro": money.fmt(int(new.get("estimateMicro", 0))),
                  "billingMode": new.get("mode"), "expiresAt": new.get("expiresAt"), "expiredAt": new.get("expiredAt")})


def work_parked(change: Change) -> Event | None:
    if not change.pk.startswith("WORK#") or change.new is None or change.new.get("status") != "manual_review":
        return None
    if (change.old or {}).get("status") == "manual_review" or change.new.get("operation") == DELIVERY_OPERATION:
        return None
    new = change.new
    return Event(event_id(f"work.parked\x00{new['itemId']}"), "work.parked", _when(change, new.get("statusAt")),
                 {"itemId": new["itemId"], "operation": new.get("operation"),
                  "attempts": int(new.get("attempts", 0)), "lastError": new.get("lastError"),
                  "reference": new.get("reference"), "parkedAt": new.get("statusAt")})


@dataclass(frozen=True)
class CounterMove:
    """A quota counter went from `before` to `after`: tokens/runs of one period's usage item, or
    the seat count (period None: the month the change happened in)."""

    org_id: str
    quota: str
    before: int
    after: int
    period: str | None


def counter_moves(change: Change) -> list[CounterMove]:
    if not change.pk.startswith("ORG#") or change.new is None:
        return []
    old = change.old or {}
    org_id = change.pk[len("ORG#"):]
    quotas: tuple[str, ...]
    if change.sk.startswith("USAGE#"):
        period, quotas = change.sk[len("USAGE#"):], ("tokens", "runs")
    elif change.sk == "STATE":
        period, quotas = None, ("seats",)
    else:
        return []
    return [CounterMove(org_id, q, int(old.get(q, 0)), int(change.new.get(q, 0)), period)
            for q in quotas if int(change.new.get(q, 0)) > int(old.get(q, 0))]


def crossed(before: int, after: int, limit: int) -> list[int]:
    """The thresholds (percent) a move from before to after crosses: before < mark <= after."""
    if limit <= 0:
        return []
    return [pct for pct in QUOTA_THRESHOLDS if before < -(-limit * pct // 100) <= after]


def quota_event(org_id: str, quota: str, pct: int, *, usage: int, limit: int, period: str, period_start: str,
                period_end: str, plan_slug: str, at: str) -> Event:
    return Event(event_id(f"quota.threshold\x00{org_id}\x00{quota}\x00{pct}\x00{period}"), "quota.threshold", at,
                 {"orgId": org_id, "quotaType": quota, "threshold": pct, "currentUsage": usage, "limit": limit,
                  "period": period, "periodStart": period_start, "periodEnd": period_end, "planSlug": plan_slug})


def pool_touched(change: Change) -> tuple[str, str] | None:
    """(account, pool) when a lot or pool item changed what the pool can spend."""
    if not keys.is_account_pk(change.pk) or not keys.is_balance_sk(change.sk):
        return None
    watched = ("available", "debt", "unbacked", "original")
    old, new = change.old or {}, change.new or {}
    if all(old.get(name) == new.get(name) for name in watched):
        return None
    return keys.account_of(change.pk), keys.parse_balance_sk(change.sk)[0]


def balance_low_event(account_id: str, pool_id: str, crossing: int, *, available: int, limit: int,
                      at: str) -> Event:
    return Event(event_id(f"balance.low\x00{account_id}\x00{pool_id}\x00{crossing}"), "balance.low", at,
                 {"accountId": account_id, "poolId": pool_id, "availableMicro": money.fmt(available),
                  "thresholdMicro": money.fmt(limit)})


SIMPLE = (topup_credited, reservation_expired, work_parked)
