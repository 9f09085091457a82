"""The sweeper: releases reservations whose expiry has passed, found through the sparse
`pending-by-expiry` index (only pending reservations carry `pendingPk`), never a table scan.

Each expiry is reservations.expire(): a transaction conditioned on the reservation still being
pending and past its expiry, so a finalize racing the sweeper leaves exactly one final state.
The sweeper is a convenience, not the authority: finalize/release already treat an expired
reservation as expired whether or not the sweeper got to it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from billing_core.kernel import clock
from billing_core.kernel.context import Context
from billing_core.ledger import reservations
from billing_core.store import keys
from billing_core.store import reservations as store

PAGE_SIZE = 100
SWEEPER = Context.system("sweeper")


@dataclass
class SweepResult:
    expired: int = 0
    lost_races: int = 0  # finalized/released/expired by someone else between the index read and the write
    scanned: int = 0
    errors: list[str] = field(default_factory=list)
    complete: bool = True


def sweep(*, time_budget_seconds: float = 50.0, ctx: Context = SWEEPER) -> SweepResult:
    """Expire every pending reservation due by now, shard by shard, within the time budget.
    Calls: one index Query page per shard (and per 100 due), then per due reservation one GetItem
    and one TransactWriteItems."""
    started = time.monotonic()
    result = SweepResult()
    now_iso = clock.iso(clock.now())
    for shard in range(keys.PENDING_SHARDS):
        start = None
        while True:
            if time.monotonic() - started > time_budget_seconds:
                result.complete = False  # the next run (a minute later) carries on
                return result
            due, start = store.due(shard, now_iso, limit=PAGE_SIZE, start=start)
            for reservation_id in due:
                result.scanned += 1
                try:
                    res = store.get(reservation_id)
                    if res is None or res.status != "pending" or not reservations.expire(ctx, res):
                        result.lost_races += 1
                    else:
                        result.expired += 1
                except Exception as exc:  # one bad item must not stop the sweep
                    result.errors.append(f"{reservation_id}: {type(exc).__name__}")
            if start is None:
                break
    return result
