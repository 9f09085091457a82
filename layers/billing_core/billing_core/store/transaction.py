"""The one way a money move is committed: its actions, plus the caller's rate counter, in one
TransactWriteItems."""

from __future__ import annotations

from collections.abc import Sequence

from billing_core.kernel.context import Context
from billing_core.store import dynamo


def commit(actions: Sequence[dynamo.Action], ctx: Context) -> None:
    """All or nothing. RateLimited when only the counter refused (nothing moved);
    TransactionCancelled with the refusing tags when another condition failed; dynamo.Refused (a
    retry.Again) on conflicts."""
    rate = ctx.rate
    counted = rate is not None and not rate.charged
    try:
        dynamo.transact([*actions, rate.action()] if rate is not None and counted else list(actions))
    except dynamo.TransactionCancelled as cancelled:
        if rate is None or "rate" not in cancelled.failed:
            raise
        others = {tag: reason for tag, reason in cancelled.failed.items() if tag != "rate"}
        if not others:
            raise rate.exceeded() from None
        # Another condition failed too: that one decides (a re-sent commit that already
        # applied is answered from its guard, not refused as over the limit).
        raise dynamo.TransactionCancelled(others) from None
    if rate is not None:
        rate.charged = True
