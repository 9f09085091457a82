"""Monthly quotas: usage counters per org per UTC calendar month, checked and recorded against
the org's limits (its plan's included amounts, with per-org overrides).

Items (BillingTable):
  usage  `ORG#<org>` / `USAGE#<YYYY-MM>`  tokens, runs (N): a new month is a new item, so the
         rollover at 00:00:00 UTC on the 1st needs no job and no reset.
  seats  the `seats` attribute of the org's state item (`ORG#<org>` / `STATE`): the current
         member count, not a monthly figure.

Recording is enforcement: one conditional write whose condition is on the counters themselves,

    (attribute_not_exists(#tokens) OR #tokens <= :tokensMax) AND (attribute_not_exists(#runs) OR #runs <= :runsMax)

with `:tokensMax = limit - requested`, only for the quotas the request increments. DynamoDB
evaluates the condition and applies the `ADD` atomically, so concurrent callers can never
overshoot together; nothing reads a counter and then decides. A request touching one item is
one `UpdateItem`; with seats (a second item) or a `requestId` (an idempotency record) it is one
`TransactWriteItems`, so the whole request is refused when any counter would cross.

Hard limits (ENABLE_BILLING_HARD_LIMITS, on by default) refuse with 402 QUOTA_EXCEEDED. Soft
limits make the same conditional write; when it is refused they log the would-be refusal and
record the usage with an unconditional write, answering 200 with `overLimit: true`.

A `canceled` org is refused any new usage with 402 BILLING_CANCELED (limit 0), same details.
A record with `enforce: false` (usage that has already happened) is handled like soft limits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from billing_core.kernel import clock, money, retry, settings
from billing_core.kernel.context import Context
from billing_core.kernel.errors import QuotaExceeded
from billing_core.kernel.observability import logger
from billing_core.ledger import idempotency
from billing_core.quotas import orgs, plans
from billing_core.store import dynamo, keys, transaction
from billing_core.store import idempotency as idempotency_records

QUOTA_TYPES = plans.QUOTA_TYPES
MONTHLY_COUNTERS = ("tokens", "runs")  # on the usage item; seats live on the state item
IDEMPOTENCY_SCOPE = "usage"


# -- pure rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    key: str  # YYYY-MM
    start: str  # ISO UTC, inclusive: 00:00:00 on the 1st
    end: str  # ISO UTC, exclusive: 00:00:00 on the 1st of the next month


def period_at(ts: float) -> Period:
    """The UTC calendar month containing `ts`."""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    end = datetime(moment.year + (moment.month == 12), moment.month % 12 + 1, 1, tzinfo=UTC)
    return Period(f"{moment.year:04d}-{moment.month:02d}", clock.iso(start.timestamp()), clock.iso(end.timestamp()))


def normalize(requested: Mapping[str, int | None]) -> dict[str, int]:
    return {q: int(requested.get(q) or 0) for q in QUOTA_TYPES}


def first_exceeded(requested: Mapping[str, int], usage: Mapping[str, int], limits: Mapping[str, int]) -> str | None:
    """The first quota (tokens, runs, seats) this request would take over its limit, or None.
    Only quotas the request increments count: a runs-only request is not refused because an
    earlier (soft) month already went over on tokens."""
    for quota in QUOTA_TYPES:
        amount = requested.get(quota, 0)
        if amount > 0 and usage.get(quota, 0) + amount > limits[quota]:
            return quota
    return None


def oversized(requested: Mapping[str, int], limits: Mapping[str, int]) -> str | None:
    """A quota whose limit this one request exceeds on its own (refused whatever the usage)."""
    return next((q for q in QUOTA_TYPES if requested.get(q, 0) > limits[q]), None)


def counter_condition(requested: Mapping[str, int], limits: Mapping[str, int], quotas: Sequence[str]
                      ) -> tuple[str | None, dict[str, str], dict[str, int]]:
    """The condition that lets a write through only if no incremented counter crosses its
    limit: `(attribute_not_exists(#q) OR #q <= :qMax)` per incremented quota, ANDed.
    Requires requested <= limit (see `oversized`): attribute_not_exists alone would let an
    oversized first request through."""
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


def percent_used(used: int, limit: int) -> int | None:
    """Whole percent, rounded down; above 100 when over (soft limits). None when the limit is 0."""
    return used * 100 // limit if limit > 0 else None


def overage_micro(usage: Mapping[str, int], limits: Mapping[str, int], prices: Mapping[str, int]) -> dict[str, int]:
    """Overage owed so far this period, in micro-units. Tokens are priced per 1,000 and rounded
    up to the whole micro-unit; runs and seats per unit. No proration of plan changes: the
    current plan's included limits and prices apply to the whole period."""
    over = {q: max(0, usage.get(q, 0) - limits[q]) for q in QUOTA_TYPES}
    owed = {
        "tokensMicro": -(-over["tokens"] * prices["tokensPer1kMicro"] // 1000),
        "runsMicro": over["runs"] * prices["runMicro"],
        "seatsMicro": over["seats"] * prices["seatMicro"],
    }
    owed["totalMicro"] = sum(owed.values())
    return owed


# -- what one org looks like right now ------------------------------------------------------------


@dataclass(frozen=True)
class OrgView:
    state: orgs.OrgState
    plan: plans.Plan
    period: Period
    status: str  # effective billing status
    limits: dict[str, int]
    usage: dict[str, int]

    def base(self) -> dict[str, Any]:
        return {
            "orgId": self.state.org_id,
            "planSlug": self.plan.slug,
            "billingStatus": self.status,
            "period": self.period.key,
            "periodStart": self.period.start,
            "periodEnd": self.period.end,
        }


def _usage_of(state_item: Mapping[str, Any] | None, usage_item: Mapping[str, Any] | None) -> dict[str, int]:
    usage = {q: int((usage_item or {}).get(q, 0)) for q in MONTHLY_COUNTERS}
    usage["seats"] = int((state_item or {}).get("seats", 0))
    return usage


def _view(state: orgs.OrgState, usage_item: Mapping[str, Any] | None, period: Period, now: float,
          current: plans.Catalogue) -> OrgView:
    plan = plans.for_org(state.plan_slug, current)
    usage = {q: int((usage_item or {}).get(q, 0)) for q in MONTHLY_COUNTERS}
    usage["seats"] = state.seats
    return OrgView(state, plan, period, state.effective_status(clock.iso(now)), state.limits(plan), usage)


def _read(org_id: str, period: Period) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The state item and this period's usage item in one strongly consistent BatchGetItem
    (keys DynamoDB left unprocessed are asked for again, within the one bounded retry)."""
    table = settings.get().billing_table
    state_key, usage_key = keys.org_state_key(org_id), keys.org_usage_key(org_id, period.key)
    found: dict[tuple[str, str], dict[str, Any]] = {}

    def attempt() -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        missing = [k for k in (state_key, usage_key) if (k["pk"], k["sk"]) not in found]
        got, complete = dynamo.batch_get(table, missing)
        found.update(got)
        if not complete:
            raise retry.Again("DynamoDB left keys unprocessed")
        return found.get((state_key["pk"], state_key["sk"])), found.get((usage_key["pk"], usage_key["sk"]))

    return retry.bounded(attempt, what="the org's quota items")


def load_view(org_id: str) -> OrgView:
    """State (seeded on first sight) and this month's usage: one BatchGetItem (+ the seed put)."""
    current = plans.catalogue()
    now = clock.now()
    period = period_at(now)
    state_item, usage_item = _read(org_id, period)
    return _view(orgs.from_item_or_seed(org_id, state_item, current), usage_item, period, now, current)


def _refusal(view: OrgView, quota: str, requested: Mapping[str, int], usage: Mapping[str, int]) -> QuotaExceeded:
    canceled = view.status == "canceled"
    limit = 0 if canceled else view.limits[quota]
    details = {
        "quotaType": quota,
        "currentUsage": int(usage.get(quota, 0)),
        "limit": limit,
        "requested": int(requested[quota]),
        "billingStatus": view.status,
        "planSlug": view.plan.slug,
        "periodStart": view.period.start,
        "periodEnd": view.period.end,
    }
    if canceled:
        return QuotaExceeded(f"billing for org {view.state.org_id} is canceled; no new usage is accepted",
                             code="BILLING_CANCELED", details=details)
    return QuotaExceeded(f"the {quota} quota of org {view.state.org_id} would be exceeded", details=details)


def _refused_quota(view: OrgView, requested: Mapping[str, int], usage: Mapping[str, int]) -> str | None:
    if view.status == "canceled":
        return next(q for q in QUOTA_TYPES if requested.get(q, 0) > 0)
    return first_exceeded(requested, usage, view.limits)


def _soft(refusal: QuotaExceeded, org_id: str, operation: str, enforcement: str) -> None:
    """Limits not enforced (soft limits, or a record of usage that already happened): the refusal
    that hard limits would have made, logged (no secrets in it)."""
    logger.warning("quota limit crossed; allowed because limits are not enforced",
                   extra={"orgId": org_id, "operation": operation, "enforcement": enforcement, "code": refusal.code,
                          **refusal.details})


# -- routes' operations ------------------------------------------------------------------------------


def summary(org_id: str) -> dict[str, Any]:
    """Plan, status, period, limits, usage, percent used and overage owed so far.
    One BatchGetItem (+ the plans Query when not cached, + the seed put on first sight)."""
    view = load_view(org_id)
    owed = overage_micro(view.usage, view.limits, view.plan.overage)
    return {
        **view.base(),
        "planName": view.plan.name,
        "trialEndsAt": view.state.trial_ends_at,
        "limits": dict(view.limits),
        "usage": dict(view.usage),
        "remaining": {q: max(0, view.limits[q] - view.usage[q]) for q in QUOTA_TYPES},
        "percentUsed": {q: percent_used(view.usage[q], view.limits[q]) for q in QUOTA_TYPES},
        "overage": {k: money.fmt(v) for k, v in owed.items()},
        "overrides": dict(view.state.overrides),
        "enforcement": "hard" if settings.get().hard_limits else "soft",
    }


def check(org_id: str, requested: Mapping[str, int | None]) -> dict[str, Any]:
    """Would this usage be accepted now? Advisory (nothing is held): 200 or the 402 that
    /usage would give. One BatchGetItem."""
    amounts = normalize(requested)
    view = load_view(org_id)
    over = False
    quota = _refused_quota(view, amounts, view.usage)
    if quota is not None:
        refusal = _refusal(view, quota, amounts, view.usage)
        if settings.get().hard_limits:
            raise refusal
        _soft(refusal, org_id, "check", "soft")
        over = True
    return {
        **view.base(),
        "allowed": True,
        "overLimit": over,
        "enforcement": "hard" if settings.get().hard_limits else "soft",
        "requested": amounts,
        "usage": dict(view.usage),
        "limits": dict(view.limits),
        "remaining": {q: max(0, view.limits[q] - view.usage[q]) for q in QUOTA_TYPES},
    }


class _Refused(Exception):
    """A write was not applied: which tagged items' conditions failed (empty: a write conflict),
    and, for a single UpdateItem, the item as it was when the condition failed."""

    def __init__(self, tags: set[str], old: dict[str, Any] | None = None) -> None:
        super().__init__(f"refused: {sorted(tags)}")
        self.tags = tags
        self.old = old


def _apply(writes: list[dynamo.Action], ctx: Context) -> None:
    """One UpdateItem when the request touches one item, else one TransactWriteItems.

    The single write cannot carry the caller's rate counter, so that is counted first (a request
    over the rate limit records nothing); a transaction carries it as one more action."""
    if len(writes) == 1 and writes[0].kind == "Update":
        if ctx.rate is not None:
            ctx.rate.charge_standalone()
        (write,) = writes
        try:
            dynamo.update_action(write, old_on_failure=True)
        except dynamo.ConditionFailed as failed:
            # The item as the condition saw it (absent only if the item itself was): no re-read.
            raise _Refused({write.tag}, failed.item) from None
        return
    try:
        transaction.commit(writes, ctx)
    except dynamo.TransactionCancelled as cancelled:
        raise _Refused(set(cancelled.failed)) from None


def _writes(org_id: str, period: Period, amounts: Mapping[str, int], limits: Mapping[str, int], *, enforce: bool,
            now_iso: str) -> list[dynamo.Action]:
    table = settings.get().billing_table
    writes = []
    if any(amounts[q] > 0 for q in MONTHLY_COUNTERS):
        condition, cond_names, cond_values = (counter_condition(amounts, limits, MONTHLY_COUNTERS) if enforce
                                              else (None, {}, {}))
        writes.append(dynamo.update(
            table, keys.org_usage_key(org_id, period.key),
            "SET #org = if_not_exists(#org, :org), #et = if_not_exists(#et, :et), #per = if_not_exists(#per, :per), "
            "#ps = if_not_exists(#ps, :ps), #pe = if_not_exists(#pe, :pe), #at = :now "
            "ADD #tokens :tokens, #runs :runs",
            tag="usage", condition=condition,
            names={"#org": "orgId", "#et": "entityType", "#per": "period", "#ps": "periodStart", "#pe": "periodEnd",
                   "#at": "updatedAt", "#tokens": "tokens", "#runs": "runs", **cond_names},
            values={":org": org_id, ":et": "org_usage", ":per": period.key, ":ps": period.start, ":pe": period.end,
                    ":now": now_iso, ":tokens": amounts["tokens"], ":runs": amounts["runs"], **cond_values},
        ))
    if amounts["seats"] > 0:
        condition, cond_names, cond_values = (counter_condition(amounts, limits, ("seats",)) if enforce
                                              else (None, {}, {}))
        writes.append(dynamo.update(
            table, keys.org_state_key(org_id), "ADD #seats :seats",
            tag="seats", condition="attribute_exists(pk)" + (f" AND {condition}" if condition else ""),
            names={"#seats": "seats", **cond_names}, values={":seats": amounts["seats"], **cond_values},
        ))
    return writes


def _usage_now(org_id: str, view: OrgView, refused: _Refused) -> dict[str, int]:
    """Counters as they were when the write was refused: from the failed UpdateItem's ALL_OLD
    image, or (after a transaction) one BatchGetItem."""
    if refused.old is not None:
        usage = dict(view.usage)
        if "usage" in refused.tags:
            usage.update({q: int(refused.old.get(q, 0)) for q in MONTHLY_COUNTERS})
        if "seats" in refused.tags:
            usage["seats"] = int(refused.old.get("seats", 0))
        return usage
    return _usage_of(*_read(org_id, view.period))


def record(ctx: Context, org_id: str, requested: Mapping[str, int | None], *, request_id: str | None,
           enforce: bool = True) -> dict[str, Any]:
    """Record usage atomically against the limits (see the module docstring).

    Calls: GetItem state (+ seed put on first sight) and then one UpdateItem (plus the rate
    counter's UpdateItem before it), or one TransactWriteItems carrying the rate counter when
    seats or a requestId are given. A requestId makes a retry return the original response
    without counting twice (the idempotency record is written in the same transaction).
    enforce=False records usage that has already happened whatever the limits: it is answered
    like soft limits (logged, `overLimit`), never refused."""
    amounts = normalize(requested)
    hard = enforce and settings.get().hard_limits
    enforcement = ("hard" if hard else "soft") if enforce else "off"
    now = clock.now()
    period = period_at(now)
    current = plans.catalogue()
    view = _view(orgs.load_or_seed(org_id, current), None, period, now, current)
    idem_key = f"{org_id}#{request_id}" if request_id else None
    req_hash = idempotency.request_hash({"op": "usage", "orgId": org_id, **amounts})

    def replay() -> dict[str, Any] | None:
        if idem_key is None:
            return None
        found = idempotency_records.get(IDEMPOTENCY_SCOPE, idem_key)
        if found is None:
            return None
        if found[0] != req_hash:
            raise idempotency.reused()
        return found[1]

    over = False
    # Refused whatever the counters say: a canceled org, or one request larger than a whole limit.
    early = (next(q for q in QUOTA_TYPES if amounts[q] > 0) if view.status == "canceled"
             else oversized(amounts, view.limits))
    if early is not None:
        original = replay()
        if original is not None:
            return original
        usage = _usage_of(*_read(org_id, period))
        refusal = _refusal(view, early, amounts, usage)
        if hard:
            raise refusal
        _soft(refusal, org_id, "usage", enforcement)
        over = True

    def attempt() -> dict[str, Any]:
        nonlocal over
        now_iso = clock.iso(clock.now())
        response = {
            **view.base(),
            "allowed": True,
            "recorded": True,
            "overLimit": over,
            "enforcement": enforcement,
            "requested": amounts,
            "requestId": request_id,
            "recordedAt": now_iso,
        }
        writes = _writes(org_id, period, amounts, view.limits, enforce=not over, now_iso=now_iso)
        if idem_key:
            writes.append(idempotency_records.record(IDEMPOTENCY_SCOPE, idem_key, req_hash, response))
        try:
            _apply(writes, ctx)
            return response
        except _Refused as refused:
            if "idempotency" in refused.tags:
                original = replay()  # raises 409 IDEMPOTENCY_KEY_REUSED for another request
                if original is not None:
                    return original
                raise retry.Again("the idempotency record vanished") from None
            usage = _usage_now(org_id, view, refused)
            quota = first_exceeded(amounts, usage, view.limits)
            if quota is None:
                raise retry.Again("a counter went down meanwhile (an operator set seats)") from None
            refusal = _refusal(view, quota, amounts, usage)
            if hard:
                raise refusal from None
            _soft(refusal, org_id, "usage", enforcement)
            over = True
            raise retry.Again("record it over the limit") from None

    return retry.bounded(attempt, what="the org's usage counters")
