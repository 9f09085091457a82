"""Per-caller request limits that hold across every Lambda instance: a DynamoDB counter per
caller per minute, never process memory.

A money-moving request is counted inside its own transaction (one more action, no extra call),
so a request over the limit moves no money. A request that ends without a transaction (402,
404, 409, an idempotent replay) is counted by one conditional UpdateItem instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from billing_core.kernel import clock, settings
from billing_core.kernel.errors import RateLimited
from billing_core.store import dynamo, keys

WINDOW_SECONDS = 60


@dataclass
class RateCharge:
    kind: str
    subject: str
    limit: int
    window: int
    charged: bool = False

    @classmethod
    def for_caller(cls, kind: str, subject: str) -> RateCharge:
        limit = settings.rate_limit_admin() if kind == "admin" else settings.rate_limit_internal()
        return cls(kind=kind, subject=subject, limit=limit, window=int(clock.now() // WINDOW_SECONDS))

    def _key(self) -> dict[str, str]:
        return keys.rate_key(self.kind, self.subject, self.window)

    def _values(self) -> dict[str, int]:
        return {":one": 1, ":limit": self.limit, ":ttl": (self.window + 2) * WINDOW_SECONDS}

    _EXPRESSION = "ADD #n :one SET #ttl = :ttl"
    _CONDITION = "attribute_not_exists(#n) OR #n < :limit"
    _NAMES = {"#n": "count", "#ttl": "ttl"}

    def action(self) -> dynamo.Action:
        return dynamo.update(
            settings.billing_table(), self._key(), self._EXPRESSION, tag="rate",
            condition=self._CONDITION, names=self._NAMES, values=self._values(),
        )

    def retry_after(self) -> int:
        return max(1, math.ceil((self.window + 1) * WINDOW_SECONDS - clock.now()))

    def exceeded(self) -> RateLimited:
        return RateLimited(
            f"rate limit of {self.limit} requests per minute reached",
            retry_after=self.retry_after(),
            details={"limitPerMinute": self.limit},
        )

    def charge_standalone(self) -> None:
        """Count a request that wrote nothing; raises RateLimited when over the limit."""
        if self.charged:
            return
        try:
            dynamo.update_item(settings.billing_table(), self._key(), self._EXPRESSION,
                               condition=self._CONDITION, names=self._NAMES, values=self._values())
        except dynamo.ConditionFailed:
            raise self.exceeded() from None
        self.charged = True


def with_rate(actions: list[dynamo.Action], rate: RateCharge | None) -> list[dynamo.Action]:
    return [*actions, rate.action()] if rate is not None and not rate.charged else list(actions)


def transact(actions: list[dynamo.Action], rate: RateCharge | None) -> None:
    """Run a money transaction with the caller's rate counter inside it."""
    try:
        dynamo.transact(with_rate(actions, rate))
    except dynamo.TransactionCancelled as cancelled:
        if rate is not None and "rate" in cancelled.failed:
            raise rate.exceeded() from None
        raise
    if rate is not None:
        rate.charged = True
