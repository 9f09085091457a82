"""Plans and quotas over HTTP against the local stack, written from the contract: the public plan
list, an org's summary (seeded on a trial), an operator's plan change, and hard limits that hold
under concurrent callers: usage lands exactly on the limit and never past it. A second stack with
ENABLE_BILLING_HARD_LIMITS=false shows soft limits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from threading import Barrier
from typing import Any

import pytest
import requests

from devserver.testing import StackProcess, start_stack
from tests.support.http import Caller, assert_error, assert_status, body_of, describe, unique

PLANS = "/api/v1/billing/plans"
SUMMARY = "/api/v1/billing/org/summary"
ORG_PLAN = "/api/v1/billing/org/plan"
CHECK = "/api/v1/billing/org/check"
USAGE = "/api/v1/billing/org/usage"
DETAIL_KEYS = {"quotaType", "currentUsage", "limit", "requested", "billingStatus", "planSlug", "periodStart",
               "periodEnd"}


def usage(api: Caller, org: str, **body: Any) -> requests.Response:
    return api.request("POST", USAGE, json_body={"orgId": org, **body}, token=api.internal_token())


def summary(api: Caller, org: str) -> dict[str, Any]:
    return assert_status(api.request("GET", SUMMARY, token=api.user_token(org)), 200)


def set_plan(api: Caller, org: str, **body: Any) -> dict[str, Any]:
    return assert_status(api.request("POST", ORG_PLAN, json_body={"orgId": org, **body}, token=api.admin_token()), 200)


def quota_error(response: requests.Response, code: str = "QUOTA_EXCEEDED") -> dict[str, Any]:
    details = assert_error(response, 402, code)["details"]
    assert set(details) == DETAIL_KEYS, describe(response)
    return details


def race(api: Caller, bodies: list[dict[str, Any]], path: str = USAGE) -> list[requests.Response]:
    """All bodies POSTed at once, each from its own thread and connection."""
    token = api.internal_token()
    barrier = Barrier(len(bodies))

    def one(body: dict[str, Any]) -> requests.Response:
        with requests.Session() as session:
            barrier.wait(10)
            return session.post(api.url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, bodies))


def test_plans_are_public_and_carry_integer_money(api: Caller) -> None:
    body = assert_status(api.request("GET", PLANS), 200)
    plans = {plan["slug"]: plan for plan in body["plans"]}
    assert {"internal-dev", "starter", "growth", "enterprise"} <= set(plans), body
    assert (plans["starter"]["priceMonthlyCents"], plans["growth"]["priceMonthlyCents"],
            plans["enterprise"]["priceMonthlyCents"], plans["internal-dev"]["priceMonthlyCents"]) == (4900, 19900,
                                                                                                      59900, 0)
    for plan in body["plans"]:
        assert plan["active"] is True
        assert set(plan["limits"]) == {"tokens", "runs", "seats"}
        assert all(isinstance(v, int) and not isinstance(v, bool) for v in plan["limits"].values()), plan
        assert all(isinstance(v, str) and v.isdigit() for v in plan["overage"].values()), plan
        assert isinstance(plan["name"], str) and plan["name"]


def test_a_new_org_gets_a_trial_and_its_summary(api: Caller) -> None:
    org = unique("org-e2e")
    body = summary(api, org)
    assert (body["orgId"], body["planSlug"], body["billingStatus"]) == (org, "starter", "trial")
    trial_end = datetime.fromisoformat(body["trialEndsAt"].replace("Z", "+00:00"))
    days = (trial_end - datetime.now(UTC)).total_seconds() / 86_400
    assert 29.9 < days <= 30.01, body
    now = datetime.now(UTC)
    assert body["periodStart"].startswith(f"{now.year:04d}-{now.month:02d}-01T00:00:00"), body
    assert body["usage"] == {"tokens": 0, "runs": 0, "seats": 0}
    assert body["overage"]["totalMicro"] == "0"
    other = api.request("GET", SUMMARY, token=api.user_token(org), params={"orgId": unique("org-e2e")})
    assert_error(other, 403)
    assert_error(api.request("GET", SUMMARY), 401)


def test_an_operator_changes_plan_and_overrides(api: Caller) -> None:
    org = unique("org-e2e")
    assert_status(usage(api, org, tokens=1_000, runs=2), 200)
    changed = set_plan(api, org, planSlug="growth", billingStatus="active", overrides={"runs": 3})
    assert (changed["planSlug"], changed["billingStatus"], changed["limits"]["runs"]) == ("growth", "active", 3)
    body = summary(api, org)
    assert (body["planSlug"], body["limits"]["tokens"], body["limits"]["runs"]) == ("growth", 10_000_000, 3)
    assert body["usage"] == {"tokens": 1_000, "runs": 2, "seats": 0}  # a plan change keeps the period's usage
    assert_status(usage(api, org, runs=1), 200)
    details = quota_error(usage(api, org, runs=1))
    assert (details["quotaType"], details["currentUsage"], details["limit"], details["planSlug"]) == \
        ("runs", 3, 3, "growth")
    assert_error(api.request("POST", ORG_PLAN, json_body={"orgId": org, "planSlug": "platinum"},
                             token=api.admin_token()), 404, "PLAN_NOT_FOUND")
    assert_error(api.request("POST", ORG_PLAN, json_body={"orgId": org, "planSlug": "growth"},
                             token=api.internal_token()), 403)


def test_concurrent_token_records_stop_exactly_at_the_limit(api: Caller) -> None:
    org = unique("org-e2e")
    set_plan(api, org, overrides={"tokens": 1_000})
    replies = race(api, [{"orgId": org, "tokens": 125, "runs": 1}] * 16)
    statuses = Counter(r.status_code for r in replies)
    assert statuses == {200: 8, 402: 8}, [(r.status_code, body_of(r)) for r in replies]
    for reply in replies:
        if reply.status_code == 402:
            details = quota_error(reply)
            assert (details["quotaType"], details["currentUsage"], details["limit"], details["requested"]) == \
                ("tokens", 1_000, 1_000, 125), details
    body = summary(api, org)
    assert (body["usage"]["tokens"], body["usage"]["runs"]) == (1_000, 8), body
    assert body["percentUsed"]["tokens"] == 100
    checked = api.request("POST", CHECK, json_body={"orgId": org, "tokens": 1}, token=api.internal_token())
    assert quota_error(checked)["currentUsage"] == 1_000


def test_concurrent_run_records_stop_exactly_at_the_limit(api: Caller) -> None:
    org = unique("org-e2e")
    set_plan(api, org, overrides={"runs": 5})
    replies = race(api, [{"orgId": org, "runs": 1}] * 12)
    assert Counter(r.status_code for r in replies) == {200: 5, 402: 7}, [(r.status_code, body_of(r)) for r in replies]
    assert summary(api, org)["usage"]["runs"] == 5


def test_concurrent_retries_of_one_record_count_once(api: Caller) -> None:
    org = unique("org-e2e")
    body = {"orgId": org, "tokens": 700, "runs": 1, "requestId": unique("llm-call")}
    replies = race(api, [body] * 6)
    bodies = [assert_status(r, 200) for r in replies]
    assert all(b == bodies[0] for b in bodies), bodies
    assert summary(api, org)["usage"] == {"tokens": 700, "runs": 1, "seats": 0}
    reused = usage(api, org, tokens=701, runs=1, requestId=body["requestId"])
    assert_error(reused, 409, "IDEMPOTENCY_KEY_REUSED")


def test_seats_are_members_against_the_seat_limit(api: Caller) -> None:
    org = unique("org-e2e")
    set_plan(api, org, overrides={"seats": 2})
    assert_status(usage(api, org, seats=2), 200)
    details = quota_error(usage(api, org, seats=1))
    assert (details["quotaType"], details["currentUsage"], details["limit"]) == ("seats", 2, 2)
    assert set_plan(api, org, seats=1)["seats"] == 1  # a member left
    assert_status(usage(api, org, seats=1), 200)


def test_a_canceled_org_is_refused(api: Caller) -> None:
    org = unique("org-e2e")
    set_plan(api, org, billingStatus="canceled")
    details = quota_error(usage(api, org, runs=1), "BILLING_CANCELED")
    assert (details["billingStatus"], details["limit"]) == ("canceled", 0)


@pytest.mark.parametrize("body", [
    {"tokens": -1}, {"tokens": 1.5}, {"runs": True}, {"runs": "3"}, {}, {"tokens": 0}, {"tokens": 10 ** 13},
])
def test_bad_amounts_are_422(api: Caller, body: dict[str, Any]) -> None:
    org = unique("org-e2e")
    for path in (USAGE, CHECK):
        reply = api.request("POST", path, json_body={"orgId": org, **body}, token=api.internal_token())
        assert_error(reply, 422, "VALIDATION_ERROR")


def test_quota_routes_need_an_internal_token(api: Caller) -> None:
    org = unique("org-e2e")
    assert_error(api.request("POST", USAGE, json_body={"orgId": org, "runs": 1}), 401)
    assert_error(api.request("POST", CHECK, json_body={"orgId": org, "runs": 1}, token=api.user_token(org)), 403)


# -- soft limits: a stack of its own -----------------------------------------------------------------


@pytest.fixture(scope="module")
def soft_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    running = start_stack(env={"ENABLE_BILLING_HARD_LIMITS": "false"},
                          log_dir=tmp_path_factory.mktemp("e2e-soft-stack"))
    try:
        yield running
    finally:
        running.stop()


def test_soft_limits_record_and_allow_over_the_limit(soft_stack: StackProcess) -> None:
    api = Caller(soft_stack, "soft")
    try:
        org = unique("org-e2e")
        set_plan(api, org, overrides={"runs": 4})
        replies = race(api, [{"orgId": org, "runs": 1}] * 6)
        bodies = [assert_status(r, 200) for r in replies]
        assert Counter(b["overLimit"] for b in bodies) == {False: 4, True: 2}, bodies
        assert all(b["enforcement"] == "soft" for b in bodies)
        body = summary(api, org)
        assert (body["usage"]["runs"], body["percentUsed"]["runs"], body["enforcement"]) == (6, 150, "soft")
        assert body["overage"]["runsMicro"] == str(2 * 20_000)
        checked = assert_status(api.request("POST", CHECK, json_body={"orgId": org, "runs": 1},
                                            token=api.internal_token()), 200)
        assert checked["overLimit"] is True
    finally:
        api.http.close()
