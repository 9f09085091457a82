"""The one bounded retry of the core.

Optimistic writes read, decide and write under conditions that pin what they read. When a
condition says the state moved (another writer got there first), or the table refused the write
for a reason that passes (a transaction conflict, throttling), the attempt raises `Again` and
`bounded` runs it again after a short jittered pause, at most ATTEMPTS times in all. Then it
gives up with 503 CONTENTION: nothing was applied and the same request is safe to retry.

Retries never multiply: a `bounded` called inside another one's attempt (a deposit's mint inside
a payment event, a refund's debit) runs its attempt once and lets `Again` reach the outermost
loop, which reads everything again. So a request makes at most ATTEMPTS attempts, each with the
calls its docstring counts, and botocore sends each call at most store.dynamo.SDK_ATTEMPTS times
(throttling and connection errors). docs/architecture.md states the bound per route;
tests/unit/test_retry_bound.py holds the helper to it.
"""

from __future__ import annotations

import contextvars
import random
import time
from collections.abc import Callable
from typing import TypeVar

from billing_core.kernel.errors import Contention

ATTEMPTS = 6
BASE_PAUSE_SECONDS = 0.01

T = TypeVar("T")

_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("inside_bounded_retry", default=False)


class Again(Exception):
    """This attempt lost a race or was refused for a passing reason: read again and retry."""


def pause(attempt: int) -> float:
    """Full jitter: uniform in [0, base * 2^attempt)."""
    return random.uniform(0, BASE_PAUSE_SECONDS * 2**attempt)  # noqa: S311 - jitter, not crypto


def bounded(attempt: Callable[[], T], *, what: str, attempts: int = ATTEMPTS) -> T:
    """Run `attempt` until it returns, at most `attempts` times; `Again` means try once more."""
    if _inside.get():
        return attempt()  # the outermost loop retries the whole request
    token = _inside.set(True)
    try:
        for n in range(attempts):
            try:
                return attempt()
            except Again as again:
                if n + 1 == attempts:
                    raise Contention(f"{what} kept changing; retry the request") from again
                time.sleep(pause(n))
        raise AssertionError("unreachable: attempts >= 1")
    finally:
        _inside.reset(token)
