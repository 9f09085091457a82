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

from billing_core.kernel import clock, settings
from billing_core.ledger import reservations
from billing_core.store import dynamo, keys

INDEX = "pending-by-expiry"
PAGE_SIZE = 100


@dataclass
class SweepResult:
    expired: int = 0
    lost_races: int = 0  # finalized/released/expired by someone else between the index read and the write
    scanned: int = 0
    errors: list[str] = field(default_factory=list)
    complete: bool = True

    def to_wire(self) -> dict:
        return {"expired": self.expired, "lostRaces": self.lost_races, "scanned": self.scanned,
                "errors": self.errors[:20], "complete": self.complete}


def sweep(*, time_budget_seconds: float = 50.0, actor: str = "sweeper") -> SweepResult:
    """Expire every pending reservation due by now, shard by shard, within the time budget."""
    started = time.monotonic()
    result = SweepResult()
    now_iso = clock.iso(clock.now())
    for shard in range(keys.PENDING_SHARDS):
        start_key = None
        while True:
            if time.monotonic() - started > time_budget_seconds:
                result.complete = False  # the next run (a minute later) carries on
                return result
            due, start_key = dynamo.query_until(
                settings.billing_table(), index=INDEX, key_name="pendingPk", key_value=f"PENDING#{shard}",
                range_name="expiresAt", upper=now_iso, limit=PAGE_SIZE, start_key=start_key)
            for key in due:
                result.scanned += 1
                res = dynamo.get(settings.billing_table(), {"pk": key["pk"], "sk": key["sk"]})
                if res is None or res.get("status") != "pending":
                    result.lost_races += 1
                    continue
                try:
                    if reservations.expire(res, actor=actor, rate=None):
                        result.expired += 1
                    else:
                        result.lost_races += 1
                except Exception as exc:  # one bad item must not stop the sweep
                    result.errors.append(f"{res.get('reservationId')}: {type(exc).__name__}")
            if start_key is None:
                break
    return result
