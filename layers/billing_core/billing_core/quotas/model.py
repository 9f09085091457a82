"""Plans and quotas, as values: plans, an org's billing state, a calendar period, and the results
of the quota operations. Pure data; store/plans.py, store/orgs.py and store/usage.py map items to
and from these, the edge serializes the results (counts stay integers, amounts become strings).

Counts per quota (limits, usage, requested, remaining) are maps keyed by QUOTA_TYPES, always in
that order, so the wire keeps its key order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

QUOTA_TYPES = ("tokens", "runs", "seats")
MONTHLY_COUNTERS = ("tokens", "runs")  # on the usage item; seats live on the org's state item
BillingStatus = Literal["trial", "active", "past_due", "canceled"]
BILLING_STATUSES: tuple[str, ...] = get_args(BillingStatus)
CENTS_MICRO = 10_000


@dataclass(frozen=True)
class OveragePrices:
    """What usage beyond the included limits costs, in micro-units."""

    tokens_per_1k_micro: int
    run_micro: int
    seat_micro: int


@dataclass(frozen=True)
class Plan:
    slug: str
    name: str
    price_monthly_cents: int
    limits: dict[str, int]  # tokens, runs, seats included per calendar month (seats: members)
    overage: OveragePrices
    active: bool = True
    sort_order: int = 0
    description: str = ""

    @property
    def price_monthly_micro(self) -> int:
        return self.price_monthly_cents * CENTS_MICRO


@dataclass(frozen=True)
class Catalogue:
    plans: tuple[Plan, ...]  # every plan, active or not, in display order
    from_table: bool  # False: the table holds no plans yet and these are the seeded defaults

    def get(self, slug: str) -> Plan | None:
        return next((p for p in self.plans if p.slug == slug), None)

    def active(self) -> list[Plan]:
        return [p for p in self.plans if p.active]


@dataclass(frozen=True)
class OrgState:
    org_id: str
    plan_slug: str  # "" when the item names none (edited by hand): the default plan applies
    billing_status: str  # as stored
    trial_ends_at: str | None
    overrides: dict[str, int]  # tokens?, runs?, seats?: replaces the plan's included limit
    seats: int  # current members
    version: int
    created_at: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None

    def effective_status(self, now_iso: str) -> str:
        """A trial whose end has passed is past_due (limits still apply) until an operator says otherwise."""
        if self.billing_status == "trial" and self.trial_ends_at is not None and self.trial_ends_at <= now_iso:
            return "past_due"
        return self.billing_status

    def limits(self, plan: Plan) -> dict[str, int]:
        """Included monthly limits: the plan's, with this org's overrides applied."""
        return {q: self.overrides.get(q, plan.limits[q]) for q in QUOTA_TYPES}


@dataclass(frozen=True)
class OrgChange:
    """An operator's change: None leaves a field as it is (or seeds it on a new org)."""

    plan_slug: str | None = None
    billing_status: str | None = None
    overrides: dict[str, int] | None = None  # replaces the stored map as a whole
    seats: int | None = None
    trial_ends_at: str | None = None


@dataclass(frozen=True)
class Period:
    key: str  # YYYY-MM
    start: str  # ISO UTC, inclusive: 00:00:00 on the 1st
    end: str  # ISO UTC, exclusive: 00:00:00 on the 1st of the next month


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanList:
    plans: list[Plan]  # the active ones, in display order
    source: str  # table | defaults
    degraded: bool | None = None  # True: the table could not be read


@dataclass(frozen=True)
class OrgBilling:
    """An org's billing state as an operator's change left it."""

    org_id: str
    plan_slug: str
    billing_status: str  # effective
    stored_billing_status: str
    trial_ends_at: str | None
    overrides: dict[str, int]
    limits: dict[str, int]
    seats: int
    updated_at: str | None
    updated_by: str | None


@dataclass(frozen=True)
class Overage:
    """Overage owed so far this period, in micro-units."""

    tokens_micro: int
    runs_micro: int
    seats_micro: int
    total_micro: int


@dataclass(frozen=True)
class OrgPeriod:
    """Which org, plan, status and period an answer is about (every quota answer starts so)."""

    org_id: str
    plan_slug: str
    billing_status: str  # effective
    period: str
    period_start: str
    period_end: str


@dataclass(frozen=True)
class Summary(OrgPeriod):
    plan_name: str
    trial_ends_at: str | None
    limits: dict[str, int]
    usage: dict[str, int]
    remaining: dict[str, int]
    percent_used: dict[str, int | None]
    overage: Overage
    overrides: dict[str, int]
    enforcement: str  # hard | soft


@dataclass(frozen=True)
class Checked(OrgPeriod):
    allowed: bool
    over_limit: bool
    enforcement: str
    requested: dict[str, int]
    usage: dict[str, int]
    limits: dict[str, int]
    remaining: dict[str, int]


@dataclass(frozen=True)
class Recorded(OrgPeriod):
    """Also the idempotency record's result: a retry with the same requestId gets exactly this."""

    allowed: bool
    recorded: bool
    over_limit: bool
    enforcement: str  # hard | soft | off
    requested: dict[str, int]
    request_id: str | None
    recorded_at: str
