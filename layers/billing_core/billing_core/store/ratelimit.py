"""Per-caller request counters that hold across every Lambda instance: one item per caller per
minute (BillingTable `RATE#<kind>#sha256(subject)` / `W#<minute>`), never process memory.

A money-moving request counts itself inside its own transaction (one more action, no extra
call), so a request over the limit moves no money. A request that ends without a transaction
(a read, a 402, a 409, an idempotent replay) counts itself with one conditional UpdateItem.
That single write may meet one of the caller's transactions on the same item: DynamoDB then
refuses it with TransactionConflict, and the one bounded retry sends it again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from billing_core.kernel import clock, retry
from billing_core.kernel.errors import RateLimited
from billing_core.store import dynamo, keys

WINDOW_SECONDS = 60
_EXPRESSION = "ADD #n :one SET #ttl = :ttl"
_CONDITION = "attribute_not_exists(#n) OR #n < :limit"
_NAMES = {"#n": "count", "#ttl": "ttl"}


@dataclass
class RateCharge:
    table: str
    kind: str
    subject: str
    limit: int
    window: int
    charged: bool = False

    @classmethod
    def for_caller(cls, table: str, kind: str, subject: str, limit: int) -> RateCharge:
        return cls(table=table, kind=kind, subject=subject, limit=limit, window=int(clock.now() // WINDOW_SECONDS))

    def _key(self) -> dict[str, str]:
        return keys.rate_key(self.kind, self.subject, self.window)

    def _values(self) -> dict[str, int]:
        return {":one": 1, ":limit": self.limit, ":ttl": (self.window + 2) * WINDOW_SECONDS}

    def action(self) -> dynamo.Action:
        return dynamo.update(self.table, self._key(), _EXPRESSION, tag="rate", condition=_CONDITION, names=_NAMES,
                             values=self._values())

    def retry_after(self) -> int:
        return max(1, math.ceil((self.window + 1) * WINDOW_SECONDS - clock.now()))

    def exceeded(self) -> RateLimited:
        return RateLimited(f"rate limit of {self.limit} requests per minute reached",
                           retry_after=self.retry_after(), details={"limitPerMinute": self.limit})

    def charge_standalone(self) -> None:
        """Count a request that wrote nothing; RateLimited when over the limit."""
        if self.charged:
            return

        def attempt() -> None:
            dynamo.update_item(self.table, self._key(), _EXPRESSION, condition=_CONDITION, names=_NAMES,
                               values=self._values())

        try:
            retry.bounded(attempt, what="the rate counter")
        except dynamo.ConditionFailed:
            raise self.exceeded() from None
        self.charged = True
