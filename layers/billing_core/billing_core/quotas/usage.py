"""Monthly quotas: usage counters per org per UTC calendar month, checked and recorded against
the org's limits (its plan's included amounts, with per-org overrides).

Counters (store/usage.py, store/orgs.py):
  usage  tokens and runs on the org's item for the month: a new month is a new item, so the
         rollover at 00:00:00 UTC on the 1st needs no job and no reset.
  seats  the `seats` attribute of the org's state item: the current member count, not a
         monthly figure.

Recording is enforcement: one conditional write whose condition is on the counters themselves
(store.usage.counter_condition), so concurrent callers can never overshoot together; nothing
reads a counter and then decides. A request is one `TransactWriteItems` (its counters, the
caller's rate counter, and the idempotency record when it has a `requestId`), so the whole
request is refused when any counter would cross, and a re-send after a lost answer counts once.

Hard limits (ENABLE_BILLING_HARD_LIMITS, on by default) refuse with 402 QUOTA_EXCEEDED. Soft
limits make the same conditional write; when it is refused they log the would-be refusal and
record the usage with an unconditional write, answering 200 with `overLimit: true`.

A `canceled` org is refused any new usage with 402 BILLING_CANCELED (limit 0), same details.
A record with `enforce: false` (usage that has already happened) is handled like soft limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from billing_core.kernel import clock, retry, settings
from billing_core.kernel.context import Context
from billing_core.kernel.errors import QuotaExceeded
from billing_core.kernel.observability import logger
from billing_core.ledger import idempotency
from billing_core.quotas import orgs, plans
from billing_core.quotas.model import (
    MONTHLY_COUNTERS,
    QUOTA_TYPES,
    Catalogue,
    Checked,
    OrgState,
    Overage,
    OveragePrices,
    Period,
    Plan,
    Recorded,
    Summary,
)
from billing_core.store import dynamo, keys
from billing_core.store import orgs as org_store
from billing_core.store import usage as store

IDEMPOTENCY_SCOPE = "usage"


# -- pure rules ---------------------------------------------------------------------------------


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


def percent_used(used: int, limit: int) -> int | None:
    """Whole percent, rounded down; above 100 when over (soft limits). None when the limit is 0."""
    return used * 100 // limit if limit > 0 else None


def overage_micro(usage: Mapping[str, int], limits: Mapping[str, int], prices: OveragePrices) -> Overage:
    """Overage owed so far this period, in micro-units. Tokens are priced per 1,000 and rounded
    up to the whole micro-unit; runs and seats per unit. No proration of plan changes: the
    current plan's included limits and prices apply to the whole period."""
    over = {q: max(0, usage.get(q, 0) - limits[q]) for q in QUOTA_TYPES}
    tokens = -(-over["tokens"] * prices.tokens_per_1k_micro // 1000)
    runs = over["runs"] * prices.run_micro
    seats = over["seats"] * prices.seat_micro
    return Overage(tokens_micro=tokens, runs_micro=runs, seats_micro=seats, total_micro=tokens + runs + seats)


# -- what one org looks like right now ------------------------------------------------------------


@dataclass(frozen=True)
class OrgView:
    state: OrgState
    plan: Plan
    period: Period
    status: str  # effective billing status
    limits: dict[str, int]
    usage: dict[str, int]

    def remaining(self) -> dict[str, int]:
        return {q: max(0, self.limits[q] - self.usage[q]) for q in QUOTA_TYPES}


def _enforcement() -> str:
    return "hard" if settings.get().hard_limits else "soft"


def _view(state: OrgState, counters: Mapping[str, int], period: Period, now: float, current: Catalogue) -> OrgView:
    plan = plans.for_org(state.plan_slug, current)
    usage = {q: int(counters.get(q, 0)) for q in MONTHLY_COUNTERS}
    usage["seats"] = state.seats
    return OrgView(state, plan, period, state.effective_status(clock.iso(now)), state.limits(plan), usage)


def _read(org_id: str, period: Period) -> dict[str, int]:
    """This period's counters and the seats, as stored now: one BatchGetItem."""
    state, counters = org_store.read_with_usage(org_id, period.key)
    return {**counters, "seats": state.seats if state else 0}


def load_view(org_id: str) -> OrgView:
    """State (seeded on first sight) and this month's usage: one BatchGetItem (+ the seed put)."""
    current = plans.catalogue()
    now = clock.now()
    period = period_at(now)
    state, counters = org_store.read_with_usage(org_id, period.key)
    return _view(orgs.found_or_seed(org_id, state, current), counters, period, now, current)


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
    upgrade = settings.get().upgrade_url
    if upgrade:
        details["upgradeUrl"] = upgrade
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


def summary(org_id: str) -> Summary:
    """Plan, status, period, limits, usage, percent used and overage owed so far.
    One BatchGetItem (+ the plans Query when not cached, + the seed put on first sight)."""
    view = load_view(org_id)
    return Summary(
        org_id=view.state.org_id, plan_slug=view.plan.slug, billing_status=view.status, period=view.period.key,
        period_start=view.period.start, period_end=view.period.end,
        plan_name=view.plan.name,
        trial_ends_at=view.state.trial_ends_at,
        limits=dict(view.limits),
        usage=dict(view.usage),
        remaining=view.remaining(),
        percent_used={q: percent_used(view.usage[q], view.limits[q]) for q in QUOTA_TYPES},
        overage=overage_micro(view.usage, view.limits, view.plan.overage),
        overrides=dict(view.state.overrides),
        enforcement=_enforcement(),
    )


def check(org_id: str, requested: Mapping[str, int | None]) -> Checked:
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
    return Checked(
        org_id=view.state.org_id, plan_slug=view.plan.slug, billing_status=view.status, period=view.period.key,
        period_start=view.period.start, period_end=view.period.end,
        allowed=True, over_limit=over, enforcement=_enforcement(), requested=amounts, usage=dict(view.usage),
        limits=dict(view.limits), remaining=view.remaining(),
    )


def _writes(org_id: str, period: Period, amounts: Mapping[str, int], limits: Mapping[str, int] | None,
            now_iso: str) -> list[dynamo.Action]:
    """The counters' writes; with limits, conditioned on staying within them."""
    writes = []
    if any(amounts[q] > 0 for q in MONTHLY_COUNTERS):
        writes.append(store.add(org_id, period, amounts, limits, now_iso))
    if amounts["seats"] > 0:
        writes.append(org_store.add_seats(org_id, amounts, limits))
    return writes


def record(ctx: Context, org_id: str, requested: Mapping[str, int | None], *, request_id: str | None,
           enforce: bool = True) -> Recorded:
    """Record usage atomically against the limits (see the module docstring).

    Calls: GetItem state (+ seed put on first sight) and then one TransactWriteItems carrying
    the rate counter (and the idempotency record when a requestId is given); a refusal reads
    the counters once more. A requestId makes a retry return the original result without
    counting twice (the idempotency record is written in the same transaction); without one, a
    re-send of a lost answer is caught by the transaction's ClientRequestToken.
    enforce=False records usage that has already happened whatever the limits: it is answered
    like soft limits (logged, `overLimit`), never refused."""
    amounts = normalize(requested)
    hard = enforce and settings.get().hard_limits
    enforcement = ("hard" if hard else "soft") if enforce else "off"
    now = clock.now()
    period = period_at(now)
    current = plans.catalogue()
    view = _view(orgs.load_or_seed(org_id, current), {}, period, now, current)
    idem_key = keys.scoped(org_id, request_id) if request_id else None
    req_hash = idempotency.request_hash({"op": "usage", "orgId": org_id, **amounts})

    over = False
    # Refused whatever the counters say: a canceled org, or one request larger than a whole limit.
    early = (next(q for q in QUOTA_TYPES if amounts[q] > 0) if view.status == "canceled"
             else oversized(amounts, view.limits))
    if early is not None:
        original = idempotency.replay(IDEMPOTENCY_SCOPE, idem_key, req_hash, Recorded)
        if original is not None:
            return original
        refusal = _refusal(view, early, amounts, _read(org_id, period))
        if hard:
            raise refusal
        _soft(refusal, org_id, "usage", enforcement)
        over = True

    def commit(writes: list[dynamo.Action], result: Recorded) -> Recorded:
        """The writes (with the idempotency record when keyed); store.WriteRefused when refused."""
        if idem_key is None:
            store.commit(writes, ctx)
            return result
        try:
            return idempotency.commit(writes, ctx, scope=IDEMPOTENCY_SCOPE, key=idem_key, req_hash=req_hash,
                                      result=result)  # a lost race on the record answers the original
        except dynamo.TransactionCancelled as cancelled:
            if "idempotency" in cancelled.failed:
                raise retry.Again("the idempotency record vanished") from None
            raise store.WriteRefused(set(cancelled.failed)) from None

    def attempt() -> Recorded:
        nonlocal over
        result = Recorded(
            org_id=view.state.org_id, plan_slug=view.plan.slug, billing_status=view.status, period=period.key,
            period_start=period.start, period_end=period.end,
            allowed=True, recorded=True, over_limit=over, enforcement=enforcement, requested=amounts,
            request_id=request_id, recorded_at=clock.iso(clock.now()),
        )
        try:
            return commit(_writes(org_id, period, amounts, None if over else view.limits, result.recorded_at), result)
        except store.WriteRefused:
            usage = _read(org_id, view.period)  # the counters that refused it: one BatchGetItem
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
