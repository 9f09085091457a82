"""The dispatcher: BillingTable's stream (NEW_AND_OLD_IMAGES) -> events -> one delivery per
subscribed endpoint, each a work item (delivery.py) sent to the webhook queue.

Why a stream and not an outbox: the stream is written by DynamoDB itself, for exactly the writes
that committed, so no event is lost after a commit and none exists for a write that did not
commit, and the money path (reserve, finalize, a payment's credit) writes nothing more. A stream
batch that fails is retried by Lambda from the failed record on; everything here is idempotent:
event ids come from the change (derive.py), a delivery's id from its event and endpoint, created
with a conditional put, so a record seen twice creates nothing twice.

Once-ness: quota.threshold has one id per org, quota, threshold and period (its deliveries exist
once); balance.low is claimed per crossing on the pool's low-balance item (store.alerts), which
remembers whether the pool was last seen below its threshold.

Reads: the endpoints, once per batch (none while cached, BILLING_CONFIG_CACHE_SECONDS); per
record, only when an enabled endpoint wants the type: none for topup.credited,
reservation.expired and work.parked; the org's state item (GetItem, + the plan catalogue when not
cached) for a quota counter that moved; for a lot or pool item that changed, the pool (one Query)
and its alert items (one BatchGetItem), once per pool per batch. Writes: one PutItem per delivery
(+ SendMessage), one UpdateItem per balance crossing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from billing_core.kernel import clock, ids, observability, settings
from billing_core.outbound import derive, endpoints
from billing_core.outbound.model import Endpoint, Event
from billing_core.quotas import plans
from billing_core.quotas.usage import period_at
from billing_core.store import alerts as alert_store
from billing_core.store import lots as lot_store
from billing_core.store import orgs as org_store
from billing_core.store import streams
from billing_core.work import items as work


@dataclass
class Batch:
    """One invocation: the endpoints are read once (or not at all while cached), each pool once."""

    pools: set[tuple[str, str]] = field(default_factory=set)
    events: list[str] = field(default_factory=list)
    deliveries: int = 0
    _endpoints: list[Endpoint] | None = None

    @property
    def endpoints(self) -> list[Endpoint]:
        if self._endpoints is None:
            self._endpoints = [e for e in endpoints.current() if e.status == "enabled"]
        return self._endpoints

    def wanted(self) -> set[str]:
        return {t for e in self.endpoints for t in e.events}

    def subscribed(self, event_type: str) -> list[Endpoint]:
        return [e for e in self.endpoints if e.wants(event_type)]


def fan_out(event: Event, batch: Batch) -> None:
    """One delivery work item per enabled endpoint that wants this event (created once)."""
    for endpoint in batch.subscribed(event.type):
        payload = {"endpointId": endpoint.endpoint_id, "eventId": event.event_id, "type": event.type,
                   "body": event.body()}
        reference = f"{endpoint.endpoint_id}:{event.event_id}"
        _, created = work.submit(derive.DELIVERY_OPERATION, payload, reference=reference,
                                 queue_url=settings.get().webhook_queue_url)
        batch.deliveries += int(created)
    batch.events.append(event.event_id)
    observability.count("EventsDispatched")


def _quota(move: derive.CounterMove, change: streams.Change, batch: Batch) -> None:
    state = org_store.get(move.org_id)
    if state is None:
        return
    plan = plans.for_org(state.plan_slug, plans.catalogue())
    limit = state.limits(plan)[move.quota]
    marks = derive.crossed(move.before, move.after, limit)
    if not marks:
        return
    period = period_at(change.at or clock.now())
    image = change.new or {}
    key = move.period or period.key
    start = image.get("periodStart", period.start) if move.period else period.start
    end = image.get("periodEnd", period.end) if move.period else period.end
    for pct in marks:
        fan_out(derive.quota_event(move.org_id, move.quota, pct, usage=move.after, limit=limit, period=key,
                                   period_start=start, period_end=end, plan_slug=plan.slug,
                                   at=clock.iso(change.at or clock.now())), batch)


def _balance(account_id: str, pool_id: str, batch: Batch) -> None:
    """Compare the pool's available credit with its threshold; claim a crossing once."""
    own, state = alert_store.read(account_id, pool_id)
    limit = settings.get().low_balance_micro if own is None else own
    low, crossings = bool(state.get("low")), int(state.get("crossings", 0))
    if limit <= 0 and not low:
        return
    now_iso = clock.iso(clock.now())
    available = lot_store.read_pool(account_id, pool_id).available(now_iso)
    below = limit > 0 and available < limit
    if below and not low:
        # Deliveries first, then the claim: a run that dies between them is retried, finds the same
        # crossing number, and its deliveries already exist.
        fan_out(derive.balance_low_event(account_id, pool_id, crossings + 1, available=available, limit=limit,
                                         at=now_iso), batch)
        alert_store.claim(account_id, pool_id, low=True, seen_crossings=crossings, available=available, limit=limit,
                          at=now_iso)
    elif low and not below:
        alert_store.claim(account_id, pool_id, low=False, seen_crossings=crossings, available=available, limit=limit,
                          at=now_iso)


def handle(record: Mapping[str, Any], batch: Batch) -> None:
    """One stream record. Raises on a failure: Lambda retries the batch from this record on."""
    wanted = batch.wanted()
    if not wanted:
        return
    change = streams.change(record)
    if change is None:
        return
    for derive_event in derive.SIMPLE:
        event = derive_event(change)
        if event is not None and event.type in wanted:
            fan_out(event, batch)
    if "quota.threshold" in wanted:
        for move in derive.counter_moves(change):
            _quota(move, change, batch)
    if "balance.low" in wanted:
        pool = derive.pool_touched(change)
        if pool is not None and pool not in batch.pools and not ids.is_system_account(pool[0]):
            batch.pools.add(pool)
            _balance(*pool, batch)
