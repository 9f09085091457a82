"""Monthly usage counters (BillingTable `ORG#<org>` / `USAGE#<YYYY-MM>`: tokens, runs) and the
condition that enforces a limit on the counters themselves:

    (attribute_not_exists(#tokens) OR #tokens <= :tokensMax) AND (attribute_not_exists(#runs) OR #runs <= :runsMax)

with `:tokensMax = limit - requested`, only for the quotas a request increments. DynamoDB
evaluates the condition and applies the `ADD` atomically, so concurrent callers can never
overshoot together. A new month is a new item: the rollover needs no job and no reset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from billing_core.kernel import settings
from billing_core.kernel.context import Context
from billing_core.quotas.model import MONTHLY_COUNTERS, Period
from billing_core.store import dynamo, keys, transaction


class WriteRefused(Exception):
    """A usage write was not applied: which tagged items' conditions failed (empty: a write
    conflict)."""

    def __init__(self, tags: set[str]) -> None:
        super().__init__(f"refused: {sorted(tags)}")
        self.tags = tags


def counter_condition(requested: Mapping[str, int], limits: Mapping[str, int], quotas: Sequence[str]
                      ) -> tuple[str | None, dict[str, str], dict[str, int]]:
    """The condition that lets a write through only if no incremented counter crosses its
    limit: `(attribute_not_exists(#q) OR #q <= :qMax)` per incremented quota, ANDed.
    Requires requested <= limit (see quotas.usage.oversized): attribute_not_exists alone would
    let an oversized first request through."""
    parts, names, values = [], {}, {}
    for quota in quotas:
        amount = requested.get(quota, 0)
        if amount <= 0:
            continue
        if amount > limits[quota]:
            raise ValueError(f"{quota}: requested {amount} exceeds the limit {limits[quota]}")
        parts.append(f"(attribute_not_exists(#{quota}) OR #{quota} <= :{quota}Max)")
        names[f"#{quota}"] = quota
        values[f":{quota}Max"] = limits[quota] - amount
    return (" AND ".join(parts) or None), names, values


def counters_of(item: Mapping[str, Any] | None) -> dict[str, int]:
    """The monthly counters of a usage item (0 for a month not used yet)."""
    return {q: int((item or {}).get(q, 0)) for q in MONTHLY_COUNTERS}


def add(org_id: str, period: Period, requested: Mapping[str, int], limits: Mapping[str, int] | None,
        now_iso: str) -> dynamo.Action:
    """ADD tokens and runs to the period's item (created by the first write of the month); with
    limits, only if no incremented counter crosses its limit."""
    condition, cond_names, cond_values = ((None, {}, {}) if limits is None
                                          else counter_condition(requested, limits, MONTHLY_COUNTERS))
    return dynamo.update(
        settings.get().billing_table, keys.org_usage_key(org_id, period.key),
        "SET #org = if_not_exists(#org, :org), #et = if_not_exists(#et, :et), #per = if_not_exists(#per, :per), "
        "#ps = if_not_exists(#ps, :ps), #pe = if_not_exists(#pe, :pe), #at = :now "
        "ADD #tokens :tokens, #runs :runs",
        tag="usage", condition=condition,
        names={"#org": "orgId", "#et": "entityType", "#per": "period", "#ps": "periodStart", "#pe": "periodEnd",
               "#at": "updatedAt", "#tokens": "tokens", "#runs": "runs", **cond_names},
        values={":org": org_id, ":et": "org_usage", ":per": period.key, ":ps": period.start, ":pe": period.end,
                ":now": now_iso, ":tokens": requested["tokens"], ":runs": requested["runs"], **cond_values},
    )


def commit(writes: Sequence[dynamo.Action], ctx: Context) -> None:
    """One TransactWriteItems with the caller's rate counter, even for one counter item: a
    transaction carries a ClientRequestToken, so when its answer is lost and botocore sends it
    again, DynamoDB does not count the usage twice (a single UpdateItem's ADD would)."""
    try:
        transaction.commit(writes, ctx)
    except dynamo.TransactionCancelled as cancelled:
        raise WriteRefused(set(cancelled.failed)) from None
