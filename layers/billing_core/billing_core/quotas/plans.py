"""Plans: a monthly price, what the price includes (tokens, runs, seats per calendar month) and
what usage beyond that costs.

Every plan lives in one partition (`keys.PLANS_PK`, sort key `PLAN#<slug>`), so the whole
catalogue is one strongly consistent Query. The catalogue is cached per execution environment
for BILLING_CONFIG_CACHE_SECONDS (like the config item). A table with no plans yet (bootstrap
has not run) answers the seeded defaults below, so the public listing and quota checks never
fail for want of a seed.

Money is integers: `priceMonthlyCents` (the contract's name, cents) and overage prices in
micro-units (1 USD = 1,000,000), carried in JSON as decimal strings. No floats anywhere.
"""

from __future__ import annotations

from billing_core.kernel import settings
from billing_core.kernel.errors import InvalidInput, NotFound
from billing_core.quotas.model import Catalogue, OveragePrices, Plan, PlanList
from billing_core.store import plans as store
from billing_core.store.cached import Cached

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
FALLBACK_PLAN_SLUG = "starter"


def _plan(slug: str, name: str, cents: int, tokens: int, runs: int, seats: int, per_1k: int, run: int, seat: int,
          order: int, description: str) -> Plan:
    return Plan(slug, name, cents, {"tokens": tokens, "runs": runs, "seats": seats}, OveragePrices(per_1k, run, seat),
                True, order, description)


# The seeded catalogue (bootstrap writes these once and never overwrites an existing plan).
DEFAULT_PLANS: tuple[Plan, ...] = (
    _plan("internal-dev", "Internal development", 0, 1_000_000_000, 1_000_000, 1_000, 0, 0, 0, 0,
          "For the operator's own development and testing; free, generous limits."),
    _plan("starter", "Starter", 4_900, 2_000_000, 1_000, 5, 2_000, 20_000, 10_000_000, 1,
          "Small teams: 2M tokens, 1,000 runs and 5 seats a month."),
    _plan("growth", "Growth", 19_900, 10_000_000, 10_000, 20, 1_500, 15_000, 8_000_000, 2,
          "Growing teams: 10M tokens, 10,000 runs and 20 seats a month."),
    _plan("enterprise", "Enterprise", 59_900, 50_000_000, 50_000, 100, 1_000, 10_000, 6_000_000, 3,
          "Organisations: 50M tokens, 50,000 runs and 100 seats a month."),
)


def seed(plan: Plan) -> bool:
    """Write a seeded plan unless it exists (bootstrap never overwrites an operator's edit)."""
    return store.seed(plan)


def _load() -> Catalogue:
    found = store.load_all()
    return (Catalogue(tuple(sorted(found, key=lambda p: (p.sort_order, p.slug))), True) if found
            else Catalogue(DEFAULT_PLANS, False))


_cache: Cached[Catalogue] = Cached(_load)


def invalidate() -> None:
    _cache.invalidate()


def catalogue() -> Catalogue:
    """All plans: one Query of the PLANS partition (cached per execution environment)."""
    return _cache.get()


def catalogue_or_defaults() -> tuple[Catalogue, bool]:
    """For the public listing, which must answer even when the table is unreadable."""
    try:
        return catalogue(), False
    except Exception:
        return Catalogue(DEFAULT_PLANS, False), True


def listing() -> PlanList:
    """The public listing: the active plans; the seeded defaults (degraded) when the table is unreadable."""
    current, unreadable = catalogue_or_defaults()
    return PlanList(current.active(), "table" if current.from_table else "defaults", True if unreadable else None)


def get(slug: str, current: Catalogue | None = None) -> Plan | None:
    return (current or catalogue()).get(slug)


def require_assignable(slug: str, current: Catalogue | None = None) -> Plan:
    """A plan an org may be moved to: it exists (404 PLAN_NOT_FOUND) and is active (422 PLAN_INACTIVE)."""
    plan = get(slug, current)
    if plan is None:
        raise NotFound(f"plan {slug} does not exist", code="PLAN_NOT_FOUND", details={"planSlug": slug})
    if not plan.active:
        raise InvalidInput(f"plan {slug} is no longer offered", code="PLAN_INACTIVE", details={"planSlug": slug})
    return plan


def default_plan(current: Catalogue | None = None) -> Plan:
    """The plan a new org starts its trial on (BILLING_DEFAULT_PLAN_SLUG, else starter)."""
    current = current or catalogue()
    plan = current.get(settings.get().default_plan_slug)
    if plan is None or not plan.active:
        plan = current.get(FALLBACK_PLAN_SLUG) or next(iter(current.active()), None) or DEFAULT_PLANS[1]
    return plan


def for_org(slug: str, current: Catalogue | None = None) -> Plan:
    """The plan an org is on. A plan deleted from the table by hand falls back to the seeded
    definition of the same slug, then to the default plan: quotas keep working."""
    current = current or catalogue()
    plan = current.get(slug)
    if plan is not None:
        return plan
    return next((p for p in DEFAULT_PLANS if p.slug == slug), None) or default_plan(current)
