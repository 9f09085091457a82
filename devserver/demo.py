"""Demo data for the billing page: `python -m devserver --demo` (`make demo`). Development only.

Gives `acct-demo` (account and org) something to show at `/billing`: credit, two weeks of
charges (so the daily spend chart has days to draw and the history has pages), and usage at
three levels (tokens green, runs yellow, seats at the limit, so the quota alert shows). It
switches the stack to `live` mode. It is not part of `make run`, whose acct-demo starts empty
as the README's walk-through expects.

The charges are back-dated through the core's clock (`billing_core.kernel.clock`, this worker
process only, reset before returning), so they are real ledger entries, reservations and lots
made by the same code as any other, only at earlier times. Runs in a Lambda worker
(`WorkerPoolRunner.call`), like the bootstrap seed.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

ACCOUNT = "acct-demo"
DAYS = 14
USAGE = {"tokens": 1_240_000, "runs": 870, "seats": 5}  # of the starter plan's 2,000,000 / 1,000 / 5


def _moments(now: datetime, rng: random.Random) -> list[tuple[datetime, str]]:
    """(when, what) in time order: a welcome deposit, charges on each day up to now, one top-up."""
    period_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    first_day = max(period_start, (now - timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0))
    moments = [(first_day + timedelta(hours=8), "deposit")]
    day = first_day
    while day <= now:
        hours = sorted(rng.sample(range(9, 21), rng.randint(1, 3)))
        moments += [(day + timedelta(hours=h, minutes=rng.randint(0, 59)), "charge") for h in hours]
        day += timedelta(days=1)
    if len(moments) > 6:
        middle = moments[len(moments) // 2][0]
        moments.append((middle + timedelta(minutes=5), "topup"))
    cutoff = now - timedelta(minutes=1)
    return sorted(m for m in moments if m[0] <= cutoff or m[1] == "deposit")


def seed() -> dict[str, Any]:
    from billing_core.kernel import clock
    from billing_core.kernel.context import Caller, Context
    from billing_core.ledger import config, lots, reservations
    from billing_core.quotas import usage

    admin = Context(Caller("admin", "demo-seed"))
    service = Context(Caller("internal", "svc-demo"))
    config.set_mode(admin, "live")
    rng = random.Random(2026)  # noqa: S311 - made-up demo amounts, the same every run
    now = datetime.now(UTC)
    charged = deposited = charges = 0
    try:
        for n, (when, what) in enumerate(_moments(now, rng)):
            clock.reset()
            clock.advance(min(when.timestamp(), clock.now() - 60) - clock.now())
            if what == "charge":
                actual = rng.randint(40_000, 950_000)
                rid = f"demo-run-{n}"
                reservations.reserve(service, account_id=ACCOUNT, pool_id="general",
                                     estimate=actual + rng.randint(0, 250_000), reservation_id=rid, ttl_seconds=300)
                clock.advance(rng.randint(2, 40))
                reservations.finalize(service, reservation_id=rid, actual=actual)
                charged += actual
                charges += 1
            else:
                amount = 50_000_000 if what == "deposit" else 25_000_000
                lots.mint(admin, account_id=ACCOUNT, pool_id="general", amount=amount, source_type="deposit",
                          description="Welcome credit" if what == "deposit" else "Top-up by card (demo)",
                          expires_at=None, idempotency_key=f"demo-{what}-{n}")
                deposited += amount
    finally:
        clock.reset()
    usage.record(service, ACCOUNT, USAGE, request_id="demo-usage")
    return {"account": ACCOUNT, "mode": "live", "charges": charges, "chargedMicro": str(charged),
            "depositedMicro": str(deposited), "usage": USAGE}
