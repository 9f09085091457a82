"""Pure quota rules: calendar periods, which quota a request crosses, the condition expression,
percent used, overage owed, the plan catalogue and the request models. No DynamoDB here."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from billing_core.api.models.quotas import OrgPlanRequest, PlanResponse, QuotaRequest, UsageRequest
from billing_core.quotas import plans
from billing_core.quotas import usage as quotas
from billing_core.quotas.model import QUOTA_TYPES, OrgState, Overage, OveragePrices
from billing_core.store import plans as plan_store
from billing_core.store import usage as usage_store
from pydantic import ValidationError


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# -- periods ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("moment", "key", "start", "end"), [
    ("2026-03-15T12:00:00", "2026-03", "2026-03-01T00:00:00.000000Z", "2026-04-01T00:00:00.000000Z"),
    ("2026-03-01T00:00:00", "2026-03", "2026-03-01T00:00:00.000000Z", "2026-04-01T00:00:00.000000Z"),
    ("2026-02-28T23:59:59.999999", "2026-02", "2026-02-01T00:00:00.000000Z", "2026-03-01T00:00:00.000000Z"),
    ("2028-02-29T10:00:00", "2028-02", "2028-02-01T00:00:00.000000Z", "2028-03-01T00:00:00.000000Z"),
    ("2026-12-31T23:59:59", "2026-12", "2026-12-01T00:00:00.000000Z", "2027-01-01T00:00:00.000000Z"),
    ("2027-01-01T00:00:00", "2027-01", "2027-01-01T00:00:00.000000Z", "2027-02-01T00:00:00.000000Z"),
])
def test_period_is_the_utc_calendar_month(moment, key, start, end):
    period = quotas.period_at(ts(moment))
    assert (period.key, period.start, period.end) == (key, start, end)


def test_the_month_turns_at_midnight_utc_on_the_first():
    last_second = ts("2026-04-30T23:59:59")
    assert quotas.period_at(last_second).key == "2026-04"
    assert quotas.period_at(last_second + 1).key == "2026-05"
    # 23:30 on the 30th in UTC-1 is already May in UTC: the boundary is UTC, not local time.
    assert quotas.period_at(datetime.fromisoformat("2026-04-30T23:30:00-01:00").timestamp()).key == "2026-05"


# -- which quota a request crosses --------------------------------------------------------------

LIMITS = {"tokens": 1_000, "runs": 10, "seats": 3}


def test_landing_exactly_on_the_limit_is_allowed_one_more_is_not():
    assert quotas.first_exceeded({"tokens": 400}, {"tokens": 600}, LIMITS) is None
    assert quotas.first_exceeded({"tokens": 401}, {"tokens": 600}, LIMITS) == "tokens"
    assert quotas.first_exceeded({"runs": 1}, {"runs": 9}, LIMITS) is None
    assert quotas.first_exceeded({"runs": 1}, {"runs": 10}, LIMITS) == "runs"
    assert quotas.first_exceeded({"seats": 3}, {"seats": 0}, LIMITS) is None
    assert quotas.first_exceeded({"seats": 1}, {"seats": 3}, LIMITS) == "seats"


def test_the_first_crossing_quota_is_named_in_tokens_runs_seats_order():
    usage = {"tokens": 1_000, "runs": 10, "seats": 3}
    assert quotas.first_exceeded({"tokens": 1, "runs": 1, "seats": 1}, usage, LIMITS) == "tokens"
    assert quotas.first_exceeded({"runs": 1, "seats": 1}, usage, LIMITS) == "runs"


def test_quotas_not_requested_never_refuse():
    over_on_tokens = {"tokens": 5_000, "runs": 0, "seats": 0}  # a soft month went over on tokens
    assert quotas.first_exceeded({"tokens": 0, "runs": 1}, over_on_tokens, LIMITS) is None


def test_oversized_requests_are_found_without_usage():
    assert quotas.oversized({"tokens": 1_001, "runs": 0, "seats": 0}, LIMITS) == "tokens"
    assert quotas.oversized({"tokens": 1_000, "runs": 10, "seats": 3}, LIMITS) is None


def test_counter_condition_is_on_the_counters_themselves():
    condition, names, values = usage_store.counter_condition({"tokens": 250, "runs": 1, "seats": 2}, LIMITS,
                                                             ("tokens", "runs"))
    assert condition == ("(attribute_not_exists(#tokens) OR #tokens <= :tokensMax) AND "
                         "(attribute_not_exists(#runs) OR #runs <= :runsMax)")
    assert names == {"#tokens": "tokens", "#runs": "runs"}
    assert values == {":tokensMax": 750, ":runsMax": 9}


def test_counter_condition_skips_quotas_not_incremented():
    condition, names, values = usage_store.counter_condition({"tokens": 0, "runs": 2}, LIMITS, ("tokens", "runs"))
    assert condition == "(attribute_not_exists(#runs) OR #runs <= :runsMax)"
    assert (names, values) == ({"#runs": "runs"}, {":runsMax": 8})
    assert usage_store.counter_condition({"tokens": 0, "runs": 0}, LIMITS, ("tokens", "runs")) == (None, {}, {})


def test_counter_condition_refuses_to_build_for_an_oversized_request():
    # attribute_not_exists alone would let an oversized first request of the month through.
    with pytest.raises(ValueError, match="exceeds the limit"):
        usage_store.counter_condition({"tokens": 1_001}, LIMITS, ("tokens",))


# -- percent used, overage ---------------------------------------------------------------------------


@pytest.mark.parametrize(("used", "limit", "percent"), [
    (0, 1000, 0), (1, 1000, 0), (999, 1000, 99), (1000, 1000, 100), (2500, 1000, 250), (0, 0, None), (5, 0, None),
])
def test_percent_used_rounds_down_and_can_pass_100(used, limit, percent):
    assert quotas.percent_used(used, limit) == percent


def test_overage_is_owed_only_beyond_the_included_limits():
    prices = OveragePrices(tokens_per_1k_micro=2_000, run_micro=20_000, seat_micro=10_000_000)
    assert quotas.overage_micro({"tokens": 1_000, "runs": 10, "seats": 3}, LIMITS, prices) == Overage(
        tokens_micro=0, runs_micro=0, seats_micro=0, total_micro=0)
    owed = quotas.overage_micro({"tokens": 3_500, "runs": 13, "seats": 5}, LIMITS, prices)
    assert owed == Overage(tokens_micro=5_000, runs_micro=60_000, seats_micro=20_000_000, total_micro=20_065_000)


def test_token_overage_rounds_up_to_the_whole_micro_unit():
    prices = OveragePrices(tokens_per_1k_micro=1_500, run_micro=0, seat_micro=0)
    # 1 token over at 1,500 micro per 1,000 tokens = 1.5 micro -> 2
    assert quotas.overage_micro({"tokens": 1_001}, LIMITS, prices).tokens_micro == 2
    assert quotas.overage_micro({"tokens": 1_002}, LIMITS, prices).tokens_micro == 3


# -- plans and org state ---------------------------------------------------------------------------


def _no_floats(value):
    if isinstance(value, dict):
        return all(_no_floats(v) for v in value.values())
    if isinstance(value, list):
        return all(_no_floats(v) for v in value)
    return not isinstance(value, float)


def test_the_seeded_catalogue():
    by_slug = {p.slug: p for p in plans.DEFAULT_PLANS}
    assert list(by_slug) == ["internal-dev", "starter", "growth", "enterprise"]
    assert {s: p.price_monthly_cents for s, p in by_slug.items()} == {
        "internal-dev": 0, "starter": 4_900, "growth": 19_900, "enterprise": 59_900}
    for plan in plans.DEFAULT_PLANS:
        wire = json.loads(json.dumps(PlanResponse.of(plan)))
        assert _no_floats(wire)
        assert set(wire["limits"]) == {"tokens", "runs", "seats"}
        assert set(wire["overage"]) == {"tokensPer1kMicro", "runMicro", "seatMicro"}
        assert all(isinstance(v, str) and v.isdigit() for v in wire["overage"].values())
        assert wire["priceMonthlyMicro"] == str(plan.price_monthly_cents * 10_000)
        assert plan_store.from_item(plan_store.to_item(plan)) == plan
    # Bigger plans include more of everything, and internal-dev the most.
    order = ["starter", "growth", "enterprise", "internal-dev"]
    for quota in QUOTA_TYPES:
        values = [by_slug[s].limits[quota] for s in order]
        assert values == sorted(values) and len(set(values)) == 4, quota


def _state(**overrides):
    base = {"org_id": "org-a", "plan_slug": "starter", "billing_status": "trial",
            "trial_ends_at": "2026-05-01T00:00:00.000000Z", "overrides": {}, "seats": 0, "version": 1}
    return OrgState(**{**base, **overrides})


def test_overrides_replace_single_limits():
    starter = next(p for p in plans.DEFAULT_PLANS if p.slug == "starter")
    assert _state().limits(starter) == starter.limits
    limits = _state(overrides={"tokens": 123, "seats": 0}).limits(starter)
    assert limits == {"tokens": 123, "runs": starter.limits["runs"], "seats": 0}


def test_an_ended_trial_is_past_due_until_an_operator_says_otherwise():
    state = _state()
    assert state.effective_status("2026-04-30T23:59:59.999999Z") == "trial"
    assert state.effective_status("2026-05-01T00:00:00.000000Z") == "past_due"
    assert _state(billing_status="active").effective_status("2027-01-01T00:00:00.000000Z") == "active"
    assert _state(billing_status="canceled").effective_status("2026-01-01T00:00:00.000000Z") == "canceled"


# -- request models --------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    {"orgId": "org-a", "tokens": -1},
    {"orgId": "org-a", "tokens": 1.5},
    {"orgId": "org-a", "tokens": 10.0},
    {"orgId": "org-a", "tokens": True},
    {"orgId": "org-a", "tokens": "100"},
    {"orgId": "org-a", "tokens": 1_000_000_001},
    {"orgId": "org-a", "runs": 1_000_001},
    {"orgId": "org-a", "seats": 100_001},
    {"orgId": "org-a"},
    {"orgId": "org-a", "tokens": 0, "runs": 0, "seats": 0},
    {"orgId": "org#a", "runs": 1},
    {"orgId": "", "runs": 1},
    {"orgId": 7, "runs": 1},
    {"runs": 1},
    {"orgId": "org-a", "runs": 1, "requestId": "bad id"},
    {"orgId": "org-a", "runs": 1, "enforce": "false"},
    {"orgId": "org-a", "runs": 1, "enforce": 0},
])
def test_usage_requests_refuse_bad_counts(body):
    with pytest.raises(ValidationError):
        UsageRequest.model_validate(body)


def test_usage_request_accepts_integers_and_ignores_unknown_fields():
    request = UsageRequest.model_validate({"orgId": "org-a", "tokens": 1_000_000_000, "runs": 0, "extra": "x",
                                           "requestId": "call-1"})
    assert request.amounts() == {"tokens": 1_000_000_000, "runs": 0, "seats": 0}
    assert request.enforce is True
    assert UsageRequest.model_validate({"orgId": "org-a", "runs": 1, "enforce": False}).enforce is False
    assert QuotaRequest.model_validate({"orgId": "org-a", "seats": 1}).amounts()["seats"] == 1


@pytest.mark.parametrize("body", [
    {"orgId": "org-a"},
    {"orgId": "org-a", "planSlug": "Starter"},
    {"orgId": "org-a", "planSlug": "starter#x"},
    {"orgId": "org-a", "billingStatus": "frozen"},
    {"orgId": "org-a", "overrides": {"token": 5}},
    {"orgId": "org-a", "overrides": {"tokens": -5}},
    {"orgId": "org-a", "overrides": {"tokens": 2.5}},
    {"orgId": "org-a", "overrides": {"runs": 10 ** 16}},
    {"orgId": "org-a", "seats": -1},
    {"orgId": "org-a", "trialEndsAt": "2026-05-01T00:00:00"},
])
def test_plan_requests_refuse_bad_input(body):
    with pytest.raises(ValidationError):
        OrgPlanRequest.model_validate(body)


def test_plan_request_overrides_map():
    request = OrgPlanRequest.model_validate({"orgId": "org-a", "overrides": {"tokens": 5, "seats": 0}})
    assert request.overrides is not None and request.overrides.as_map() == {"tokens": 5, "seats": 0}
    assert OrgPlanRequest.model_validate({"orgId": "org-a", "overrides": {}}).overrides.as_map() == {}
