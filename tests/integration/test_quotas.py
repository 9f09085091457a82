"""Plans and quotas through the handlers: in-process on patched moto (the `api` fixture) for the
rules, and through the serialized engine with worker processes (like test_concurrency.py) for
the races, since moto is only linearizable when serialized."""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devserver.invoke import event, reply, routes
from tests.support.backend import snapshot_in_process
from tests.support.tokens import Tokens
from tests.support.workers import together, worker_pool

DETAIL_KEYS = {"quotaType", "currentUsage", "limit", "requested", "billingStatus", "planSlug", "periodStart",
               "periodEnd"}
STARTER = {"tokens": 2_000_000, "runs": 1_000, "seats": 5}
GROWTH = {"tokens": 10_000_000, "runs": 10_000, "seats": 20}


def new_org(prefix: str = "org") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Quotas:
    """One test's callers: an internal service, an admin and the org's users."""

    def __init__(self, api: Any, tokens: type[Tokens]) -> None:
        self.api = api
        self.tokens = tokens
        self.svc = tokens.internal(f"svc-{uuid.uuid4().hex[:8]}")
        self.admin = tokens.admin(f"ops-{uuid.uuid4().hex[:8]}")

    def usage(self, org: str, **body: Any) -> Any:
        return self.api.call("usage", {"orgId": org, **body}, token=self.svc)

    def check(self, org: str, **body: Any) -> Any:
        return self.api.call("check", {"orgId": org, **body}, token=self.svc)

    def ok(self, org: str, **body: Any) -> dict[str, Any]:
        result = self.usage(org, **body)
        assert result.status == 200, result.body
        return result.body

    def refused(self, org: str, code: str = "QUOTA_EXCEEDED", **body: Any) -> dict[str, Any]:
        result = self.usage(org, **body)
        assert (result.status, result.code) == (402, code), result.body
        details = result.body["error"]["details"]
        assert set(details) == DETAIL_KEYS, details
        return details

    def summary(self, org: str, **query: Any) -> dict[str, Any]:
        result = self.api.call("summary", token=self.tokens.user(org), query=query or None)
        assert result.status == 200, result.body
        return result.body

    def set_plan(self, org: str, **body: Any) -> Any:
        return self.api.call("setplan", {"orgId": org, **body}, token=self.admin)


@pytest.fixture
def q(api: Any, tokens: type[Tokens]) -> Quotas:
    return Quotas(api, tokens)


def move_clock_to(moment: datetime) -> None:
    from billing_core.kernel import clock

    clock.advance(moment.timestamp() - clock.now())


def next_month_start() -> datetime:
    from billing_core.kernel import clock

    now = datetime.fromtimestamp(clock.now(), tz=UTC)
    return datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)


@contextlib.contextmanager
def counted(client: Any) -> Iterator[list[str]]:
    """DynamoDB API calls made through the core's client (retries not included)."""
    names: list[str] = []

    def before(model: Any, **_: Any) -> None:
        names.append(model.name)

    client.meta.events.register("before-call.dynamodb", before, unique_id="quota-call-count")
    try:
        yield names
    finally:
        client.meta.events.unregister("before-call.dynamodb", unique_id="quota-call-count")


# -- plans ----------------------------------------------------------------------------------------


def test_plans_are_listed_publicly_with_integer_money(api):
    result = api.call("plans")
    assert result.status == 200
    assert result.body["source"] == "table"
    by_slug = {p["slug"]: p for p in result.body["plans"]}
    assert list(by_slug) == ["internal-dev", "starter", "growth", "enterprise"]
    assert {s: p["priceMonthlyCents"] for s, p in by_slug.items()} == {
        "internal-dev": 0, "starter": 4900, "growth": 19900, "enterprise": 59900}
    assert by_slug["starter"]["limits"] == STARTER
    assert by_slug["growth"]["limits"] == GROWTH
    assert by_slug["starter"]["overage"] == {"tokensPer1kMicro": "2000", "runMicro": "20000", "seatMicro": "10000000"}
    assert all(p["active"] is True for p in result.body["plans"])


def test_retired_plans_are_not_listed_and_cannot_be_assigned(api, aws, q):
    aws.update_item(TableName="BillingTable", Key={"pk": {"S": "PLANS"}, "sk": {"S": "PLAN#growth"}},
                    UpdateExpression="SET active = :no", ExpressionAttributeValues={":no": {"BOOL": False}})
    assert [p["slug"] for p in api.call("plans").body["plans"]] == ["internal-dev", "starter", "enterprise"]
    org = new_org()
    result = q.set_plan(org, planSlug="growth")
    assert (result.status, result.code) == (422, "PLAN_INACTIVE"), result.body
    result = q.set_plan(org, planSlug="platinum")
    assert (result.status, result.code) == (404, "PLAN_NOT_FOUND"), result.body


def test_an_empty_plan_partition_answers_the_seeded_defaults(api, aws):
    for slug in ("internal-dev", "starter", "growth", "enterprise"):
        aws.delete_item(TableName="BillingTable", Key={"pk": {"S": "PLANS"}, "sk": {"S": f"PLAN#{slug}"}})
    result = api.call("plans")
    assert result.status == 200 and result.body["source"] == "defaults"
    assert [p["slug"] for p in result.body["plans"]] == ["internal-dev", "starter", "growth", "enterprise"]


def test_bootstrap_seeds_plans_once_and_never_overwrites_them(api, aws):
    from billing_core.ledger import bootstrap

    aws.update_item(TableName="BillingTable", Key={"pk": {"S": "PLANS"}, "sk": {"S": "PLAN#starter"}},
                    UpdateExpression="SET priceMonthlyCents = :p", ExpressionAttributeValues={":p": {"N": "5900"}})
    result = bootstrap.seed()
    assert {"plan:internal-dev", "plan:starter", "plan:growth", "plan:enterprise"} <= set(result["kept"])
    assert not [name for name in result["created"] if name.startswith("plan:")]
    starter = next(p for p in api.call("plans").body["plans"] if p["slug"] == "starter")
    assert starter["priceMonthlyCents"] == 5900


# -- trial seeding ----------------------------------------------------------------------------------


def test_a_new_org_is_seeded_on_a_30_day_trial_of_the_default_plan(q, monkeypatch):
    from billing_core.kernel import clock

    monkeypatch.setenv("BILLING_DEFAULT_PLAN_SLUG", "growth")
    org = new_org()
    before = clock.now()
    summary = q.summary(org)
    assert (summary["orgId"], summary["planSlug"], summary["billingStatus"]) == (org, "growth", "trial")
    trial_end = clock.parse_iso(summary["trialEndsAt"])
    assert 30 * 86_400 <= trial_end - before <= 30 * 86_400 + 5
    assert summary["limits"] == GROWTH
    assert summary["usage"] == {"tokens": 0, "runs": 0, "seats": 0}
    assert summary["percentUsed"] == {"tokens": 0, "runs": 0, "seats": 0}
    assert summary["overage"] == {"tokensMicro": "0", "runsMicro": "0", "seatsMicro": "0", "totalMicro": "0"}

    # Seen again (after the default changed): the stored state stands.
    monkeypatch.setenv("BILLING_DEFAULT_PLAN_SLUG", "enterprise")
    again = q.summary(org)
    assert (again["planSlug"], again["trialEndsAt"]) == ("growth", summary["trialEndsAt"])


def test_quota_routes_seed_too_and_the_seed_put_never_overwrites(q, aws):
    from billing_core.quotas import orgs

    org = new_org()
    assert q.check(org, runs=1).body["billingStatus"] == "trial"
    first = orgs.load(org)
    assert first is not None and first.plan_slug == "starter"
    assert orgs.seed(org) == first  # a second first-sight loses the conditional put and reads the winner
    q.ok(org, runs=1)
    assert orgs.load(org) == first


def test_an_ended_trial_reports_past_due_and_keeps_its_limits(q):
    from billing_core.kernel import clock

    org = new_org()
    q.ok(org, runs=1)
    clock.advance(30 * 86_400 + 1)
    summary = q.summary(org)
    assert summary["billingStatus"] == "past_due"
    assert q.ok(org, runs=1)["billingStatus"] == "past_due"
    assert q.set_plan(org, billingStatus="active").body["billingStatus"] == "active"
    assert q.summary(org)["billingStatus"] == "active"


def test_users_read_only_their_own_org(q, api, tokens):
    org = new_org()
    assert q.summary(org, orgId=org)["orgId"] == org
    result = api.call("summary", token=tokens.user(org), query={"orgId": new_org()})
    assert (result.status, result.code) == (403, "ACCOUNT_SCOPE")
    assert api.call("summary").status == 401
    assert api.call("summary", token=tokens.internal()).code == "WRONG_AUDIENCE"


# -- limits per quota type --------------------------------------------------------------------------


def test_token_limit_is_reached_exactly_and_no_further(q):
    org = new_org()
    q.ok(org, tokens=1_500_000)
    q.ok(org, tokens=500_000)  # exactly the limit
    details = q.refused(org, tokens=1)
    summary = q.summary(org)
    assert details == {"quotaType": "tokens", "currentUsage": 2_000_000, "limit": 2_000_000, "requested": 1,
                       "billingStatus": "trial", "planSlug": "starter", "periodStart": summary["periodStart"],
                       "periodEnd": summary["periodEnd"]}
    assert summary["usage"]["tokens"] == 2_000_000
    assert summary["percentUsed"]["tokens"] == 100
    assert summary["remaining"]["tokens"] == 0


def test_run_limit(q):
    org = new_org()
    q.set_plan(org, overrides={"runs": 3})
    for _ in range(3):
        q.ok(org, runs=1)
    details = q.refused(org, runs=1)
    assert (details["quotaType"], details["currentUsage"], details["limit"], details["requested"]) == ("runs", 3, 3, 1)
    assert q.summary(org)["usage"]["runs"] == 3


def test_seat_limit_counts_members(q):
    org = new_org()
    q.ok(org, seats=4)
    q.ok(org, seats=1, requestId="add-member-5")
    details = q.refused(org, seats=1)
    assert (details["quotaType"], details["currentUsage"], details["limit"]) == ("seats", 5, 5)
    assert q.summary(org)["usage"]["seats"] == 5
    # Members leave (an operator sets the count): seats free up.
    assert q.set_plan(org, seats=2).body["seats"] == 2
    q.ok(org, seats=3)
    assert q.summary(org)["usage"]["seats"] == 5


def test_a_request_over_one_limit_records_nothing_at_all(q):
    org = new_org()
    q.set_plan(org, overrides={"runs": 2, "seats": 1})
    q.ok(org, tokens=100, runs=2)
    details = q.refused(org, tokens=100, runs=1)
    assert details["quotaType"] == "runs"
    details = q.refused(org, tokens=100, seats=2)  # oversized: refused before any write
    assert (details["quotaType"], details["currentUsage"], details["requested"]) == ("seats", 0, 2)
    q.ok(org, seats=1)
    details = q.refused(org, tokens=100, seats=1)  # the transaction path: usage + seats
    assert (details["quotaType"], details["currentUsage"]) == ("seats", 1)
    assert q.summary(org)["usage"] == {"tokens": 100, "runs": 2, "seats": 1}


def test_a_single_request_larger_than_the_limit_is_refused_on_a_fresh_month(q):
    org = new_org()
    details = q.refused(org, tokens=2_000_001)
    assert (details["currentUsage"], details["limit"], details["requested"]) == (0, 2_000_000, 2_000_001)
    assert q.summary(org)["usage"]["tokens"] == 0


def test_check_answers_what_usage_would(q):
    org = new_org()
    q.set_plan(org, overrides={"tokens": 1_000})
    allowed = q.check(org, tokens=1_000)
    assert allowed.status == 200, allowed.body
    assert (allowed.body["allowed"], allowed.body["overLimit"]) == (True, False)
    assert allowed.body["remaining"]["tokens"] == 1_000
    q.ok(org, tokens=600)
    refused = q.check(org, tokens=401)
    assert (refused.status, refused.code) == (402, "QUOTA_EXCEEDED")
    assert refused.body["error"]["details"]["currentUsage"] == 600
    assert q.check(org, tokens=400).status == 200
    assert q.summary(org)["usage"]["tokens"] == 600  # checks record nothing


# -- month rollover ---------------------------------------------------------------------------------------


def test_usage_starts_over_at_midnight_utc_on_the_first(q):
    boundary = next_month_start()
    move_clock_to(boundary.replace(microsecond=0) - timedelta(seconds=2))
    org = new_org()
    q.set_plan(org, overrides={"runs": 2})
    q.ok(org, runs=2, tokens=10)
    old = q.refused(org, runs=1)
    assert old["periodEnd"] == boundary.strftime("%Y-%m-%dT00:00:00.000000Z")

    move_clock_to(boundary)  # 00:00:00.000000 UTC on the 1st
    new = q.ok(org, runs=2)
    assert new["periodStart"] == old["periodEnd"]
    assert new["period"] == boundary.strftime("%Y-%m")
    summary = q.summary(org)
    assert summary["usage"] == {"tokens": 0, "runs": 2, "seats": 0}
    assert summary["periodStart"] == boundary.strftime("%Y-%m-%dT00:00:00.000000Z")
    assert q.refused(org, runs=1)["currentUsage"] == 2


def test_seats_are_members_and_do_not_reset_with_the_month(q):
    boundary = next_month_start()
    move_clock_to(boundary - timedelta(seconds=1))
    org = new_org()
    q.ok(org, seats=5)
    move_clock_to(boundary)
    assert q.summary(org)["usage"]["seats"] == 5
    assert q.refused(org, seats=1)["currentUsage"] == 5


# -- plan changes and overrides -----------------------------------------------------------------------------


def test_a_plan_change_mid_period_applies_at_once_and_keeps_the_usage(q):
    org = new_org()
    q.ok(org, tokens=2_000_000, runs=1_000)
    assert q.refused(org, tokens=1)["planSlug"] == "starter"

    changed = q.set_plan(org, planSlug="growth")
    assert changed.status == 200, changed.body
    assert (changed.body["planSlug"], changed.body["limits"]) == ("growth", GROWTH)
    q.ok(org, tokens=8_000_000, runs=9_000)
    details = q.refused(org, runs=1)
    assert (details["planSlug"], details["limit"], details["currentUsage"]) == ("growth", 10_000, 10_000)

    # Downgrade: the usage stays, the smaller limits refuse at once.
    assert q.set_plan(org, planSlug="starter").status == 200
    details = q.refused(org, tokens=1)
    assert (details["planSlug"], details["limit"], details["currentUsage"]) == ("starter", 2_000_000, 10_000_000)
    summary = q.summary(org)
    assert summary["planSlug"] == "starter"
    assert summary["percentUsed"]["tokens"] == 500
    # Over the included limits after the downgrade: overage owed so far at starter's prices.
    assert summary["overage"] == {"tokensMicro": str(8_000_000 * 2_000 // 1_000),
                                  "runsMicro": str(9_000 * 20_000), "seatsMicro": "0",
                                  "totalMicro": str(16_000_000 + 180_000_000)}


def test_overrides_replace_plan_limits_until_cleared(q):
    org = new_org()
    result = q.set_plan(org, overrides={"tokens": 100, "seats": 1})
    assert result.status == 200, result.body
    assert result.body["limits"] == {"tokens": 100, "runs": 1_000, "seats": 1}
    assert result.body["overrides"] == {"tokens": 100, "seats": 1}
    q.ok(org, tokens=100)
    assert q.refused(org, tokens=1)["limit"] == 100
    # A plan change keeps the overrides; overrides replace as a whole; {} clears them.
    assert q.set_plan(org, planSlug="growth").body["limits"]["tokens"] == 100
    assert q.set_plan(org, overrides={"runs": 7}).body["limits"] == {**GROWTH, "runs": 7}
    cleared = q.set_plan(org, overrides={})
    assert (cleared.body["overrides"], cleared.body["limits"]) == ({}, GROWTH)
    q.ok(org, tokens=1)


def test_an_override_of_zero_refuses_everything_of_that_kind(q):
    org = new_org()
    q.set_plan(org, overrides={"runs": 0})
    assert q.refused(org, runs=1)["limit"] == 0
    q.ok(org, tokens=5)
    assert q.summary(org)["percentUsed"]["runs"] is None


def test_the_admin_route_creates_unknown_orgs_and_is_audited(q, aws):
    org = new_org()
    result = q.set_plan(org, planSlug="enterprise", billingStatus="active")
    assert result.status == 200, result.body
    summary = q.summary(org)
    assert (summary["planSlug"], summary["billingStatus"], summary["limits"]["seats"]) == ("enterprise", "active", 100)
    audit = aws.query(TableName="BillingTable", KeyConditionExpression="pk = :pk",
                      ExpressionAttributeValues={":pk": {"S": f"AUDIT#org#{org}"}})["Items"]
    assert len(audit) == 1
    assert audit[0]["changes"]["M"]["planSlug"]["S"] == "enterprise"


def test_admin_route_requires_an_admin(q, api, tokens):
    org = new_org()
    for token in (tokens.internal(), tokens.user(org), None):
        result = api.call("setplan", {"orgId": org, "planSlug": "growth"}, token=token)
        assert result.status in (401, 403), result.body
    assert q.summary(org)["planSlug"] == "starter"


# -- soft vs hard, canceled ---------------------------------------------------------------------------------


def test_soft_limits_record_log_and_allow(q, monkeypatch):
    from billing_core.quotas import usage as quotas

    logged: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(quotas.logger, "warning", lambda message, extra=None, **_: logged.append((message, extra)))
    monkeypatch.setenv("ENABLE_BILLING_HARD_LIMITS", "false")
    org = new_org()
    q.set_plan(org, overrides={"runs": 2, "seats": 1})
    first = q.ok(org, runs=2)
    assert (first["overLimit"], first["enforcement"]) == (False, "soft")
    assert logged == []

    over = q.ok(org, runs=1, tokens=10)
    assert (over["allowed"], over["recorded"], over["overLimit"]) == (True, True, True)
    assert len(logged) == 1
    assert logged[0][1]["quotaType"] == "runs" and logged[0][1]["currentUsage"] == 2
    assert logged[0][1]["orgId"] == org
    assert q.ok(org, seats=3, requestId="soft-seats")["overLimit"] is True  # oversized and transactional

    checked = q.check(org, runs=1)
    assert checked.status == 200 and checked.body["overLimit"] is True
    summary = q.summary(org)
    assert summary["usage"] == {"tokens": 10, "runs": 3, "seats": 3}
    assert summary["percentUsed"]["runs"] == 150
    assert summary["overage"]["runsMicro"] == "20000" and summary["overage"]["seatsMicro"] == "20000000"
    assert summary["enforcement"] == "soft"

    monkeypatch.setenv("ENABLE_BILLING_HARD_LIMITS", "true")
    details = q.refused(org, runs=1)
    assert (details["currentUsage"], details["limit"]) == (3, 2)
    assert q.ok(org, tokens=10)["overLimit"] is False  # runs over does not block tokens


def test_a_canceled_org_is_refused_all_new_usage(q, monkeypatch):
    org = new_org()
    q.ok(org, tokens=10, runs=1)
    assert q.set_plan(org, billingStatus="canceled").status == 200
    details = q.refused(org, code="BILLING_CANCELED", runs=1)
    assert details["billingStatus"] == "canceled"
    assert (details["quotaType"], details["currentUsage"], details["limit"]) == ("runs", 1, 0)
    assert q.refused(org, code="BILLING_CANCELED", seats=1, requestId="seat-after-cancel")["quotaType"] == "seats"
    refused = q.check(org, tokens=1)
    assert (refused.status, refused.code) == (402, "BILLING_CANCELED")
    assert q.summary(org)["usage"] == {"tokens": 10, "runs": 1, "seats": 0}

    monkeypatch.setenv("ENABLE_BILLING_HARD_LIMITS", "false")
    assert q.ok(org, runs=1)["overLimit"] is True
    monkeypatch.setenv("ENABLE_BILLING_HARD_LIMITS", "true")
    assert q.set_plan(org, billingStatus="active").status == 200
    q.ok(org, runs=1)


def test_usage_that_already_happened_is_recorded_whatever_the_limits(q, monkeypatch):
    from billing_core.quotas import usage as quotas

    logged: list[dict[str, Any]] = []
    monkeypatch.setattr(quotas.logger, "warning", lambda message, extra=None, **_: logged.append(extra))
    org = new_org()
    q.set_plan(org, overrides={"tokens": 1_000})
    within = q.ok(org, tokens=900, enforce=False)
    assert (within["overLimit"], within["enforcement"]) == (False, "off")
    assert logged == []
    excess = q.ok(org, tokens=300, enforce=False, requestId="llm-call-9:excess")
    assert (excess["overLimit"], excess["enforcement"]) == (True, "off")
    assert logged and logged[0]["enforcement"] == "off" and logged[0]["currentUsage"] == 900
    assert q.summary(org)["usage"]["tokens"] == 1_200
    assert q.refused(org, tokens=1)["currentUsage"] == 1_200  # enforced records are still refused
    bad = q.usage(org, tokens=1, enforce="false")
    assert (bad.status, bad.code) == (422, "VALIDATION_ERROR")


# -- idempotency and calls ------------------------------------------------------------------------------------


def test_a_retried_record_with_a_request_id_counts_once(q):
    org = new_org()
    q.set_plan(org, overrides={"runs": 2})
    first = q.ok(org, runs=1, tokens=40, requestId="llm-call-1")
    assert q.ok(org, runs=1, tokens=40, requestId="llm-call-1") == first
    assert q.summary(org)["usage"] == {"tokens": 40, "runs": 1, "seats": 0}
    reused = q.usage(org, runs=1, tokens=41, requestId="llm-call-1")
    assert (reused.status, reused.code) == (409, "IDEMPOTENCY_KEY_REUSED")
    q.ok(org, runs=1, requestId="llm-call-2")
    # At the limit now, a retry of an earlier, recorded request still gets its original answer.
    assert q.ok(org, runs=1, tokens=40, requestId="llm-call-1") == first
    assert q.summary(org)["usage"] == {"tokens": 40, "runs": 2, "seats": 0}
    # The same requestId for another org is another request.
    other = new_org()
    assert q.ok(other, runs=1, tokens=40, requestId="llm-call-1")["orgId"] == other


def test_dynamodb_calls_per_operation(q, api, aws, monkeypatch):
    monkeypatch.setenv("BILLING_CONFIG_CACHE_SECONDS", "300")  # as deployed: the plan catalogue is cached
    org = new_org()
    q.set_plan(org, overrides={"runs": 3})
    q.summary(org)
    q.ok(org, runs=1)
    with counted(aws) as calls:
        api.call("plans")
        assert calls == [], calls
        q.summary(org)
        assert calls == ["BatchGetItem"], calls
        calls.clear()
        assert q.check(org, runs=1).status == 200
        assert calls == ["BatchGetItem", "UpdateItem"], calls  # + the caller's rate counter
        calls.clear()
        q.ok(org, runs=1)
        assert calls == ["GetItem", "TransactWriteItems"], calls  # state; the counters with the rate counter
        calls.clear()
        q.ok(org, runs=1, requestId="counted-1")
        assert calls == ["GetItem", "TransactWriteItems"], calls  # the rate counter is inside the transaction
        calls.clear()
        q.ok(org, runs=1, requestId="counted-1")
        assert calls == ["GetItem", "TransactWriteItems", "GetItem", "UpdateItem"], calls  # replay
        calls.clear()
        q.refused(org, runs=1)
        assert calls == ["GetItem", "TransactWriteItems", "BatchGetItem", "UpdateItem"], calls  # + rate counter
        calls.clear()
        q.refused(org, runs=1, seats=1)
        assert calls == ["GetItem", "TransactWriteItems", "BatchGetItem", "UpdateItem"], calls
        calls.clear()
        q.set_plan(org, planSlug="growth")
        assert calls == ["TransactWriteItems", "GetItem"], calls
        calls.clear()
        q.summary(new_org())
        assert calls == ["BatchGetItem", "PutItem"], calls  # first sight: the seed

        # Without the cache (the local stack), the catalogue costs one Query per request, no more.
        monkeypatch.setenv("BILLING_CONFIG_CACHE_SECONDS", "0")
        calls.clear()
        q.ok(new_org(), runs=1)
        assert calls == ["Query", "GetItem", "UpdateItem", "PutItem", "TransactWriteItems"], calls
        calls.clear()
        q.set_plan(org, planSlug="enterprise")
        assert calls == ["Query", "TransactWriteItems", "GetItem"], calls


# -- bad input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("route", "body"), [
    ("usage", {"orgId": "org-bad", "tokens": -1}),
    ("usage", {"orgId": "org-bad", "tokens": 1.0}),
    ("usage", {"orgId": "org-bad", "runs": True}),
    ("usage", {"orgId": "org-bad", "runs": "1"}),
    ("usage", {"orgId": "org-bad", "tokens": 10 ** 12}),
    ("usage", {"orgId": "org-bad"}),
    ("usage", {"orgId": "org#bad", "runs": 1}),
    ("usage", {"orgId": "org-bad", "runs": 1, "requestId": "x" * 200}),
    ("check", {"orgId": "org-bad", "seats": -3}),
    ("check", {"orgId": "org-bad", "tokens": 0}),
    ("setplan", {"orgId": "org-bad"}),
    ("setplan", {"orgId": "org-bad", "planSlug": "GROWTH"}),
    ("setplan", {"orgId": "org-bad", "overrides": {"tokenz": 1}}),
    ("setplan", {"orgId": "org-bad", "overrides": {"tokens": 1.5}}),
    ("setplan", {"orgId": "org-bad", "billingStatus": "paused"}),
    ("setplan", {"orgId": "org-bad", "seats": -1}),
])
def test_bad_input_is_422_and_changes_nothing(api, tokens, route, body):
    token = tokens.admin() if route == "setplan" else tokens.internal()
    before = snapshot_in_process()
    result = api.call(route, body, token=token)
    assert (result.status, result.code) == (422, "VALIDATION_ERROR"), result.body
    assert result.body["error"]["details"]["errors"], result.body
    assert snapshot_in_process() == before


def test_unknown_plan_is_404_and_changes_nothing(q):
    org = new_org()
    before = snapshot_in_process()
    result = q.set_plan(org, planSlug="platinum")
    assert (result.status, result.code) == (404, "PLAN_NOT_FOUND")
    assert snapshot_in_process() == before


def test_quota_routes_need_an_internal_token(api, tokens):
    for token in (None, tokens.user("org-x"), tokens.admin()):
        for route in ("usage", "check"):
            result = api.call(route, {"orgId": "org-x", "runs": 1}, token=token)
            assert result.status in (401, 403), (route, result.body)


# -- races, through the serialized engine ------------------------------------------------------------------

WORKERS = 8


class Engine:
    def __init__(self, engine: Any, runner: Any) -> None:
        self.engine = engine
        self.runner = runner

    def call(self, route: str, body: Any = None, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        status, payload, _ = reply(self.runner.invoke_direct(routes()[route].function_id,
                                                             event(route, body, **kwargs)))
        return status, payload

    def together(self, calls: list[tuple[str, Any, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
        return together([functools.partial(self.call, route, body, **kwargs) for route, body, kwargs in calls])

    def summary(self, org: str) -> dict[str, Any]:
        status, body = self.call("summary", token=Tokens.user(org))
        assert status == 200, body
        return body


@pytest.fixture(scope="module")
def engine():
    with worker_pool(WORKERS) as (emulation, runner):
        stack = Engine(emulation, runner)
        warm = stack.together([("plans", None, {})] * WORKERS)
        assert all(status == 200 for status, _ in warm), warm
        yield stack


def test_concurrent_records_land_exactly_on_the_run_limit(engine):
    org, svc = new_org("org-race"), Tokens.internal("svc-race-runs")
    status, body = engine.call("setplan", {"orgId": org, "overrides": {"runs": 10}}, token=Tokens.admin("ops-race"))
    assert status == 200, body

    results = engine.together([("usage", {"orgId": org, "runs": 1}, {"token": svc})] * 16)

    assert Counter(status for status, _ in results) == {200: 10, 402: 6}, results
    for status, body in results:
        if status == 402:
            assert body["error"]["code"] == "QUOTA_EXCEEDED"
            details = body["error"]["details"]
            assert (details["quotaType"], details["currentUsage"], details["limit"], details["requested"]) == \
                ("runs", 10, 10, 1)
    assert engine.summary(org)["usage"]["runs"] == 10


def test_concurrent_token_records_land_exactly_on_the_limit_and_refuse_whole_requests(engine):
    org, svc = new_org("org-race"), Tokens.internal("svc-race-tokens")
    status, body = engine.call("setplan", {"orgId": org, "overrides": {"tokens": 1_000}},
                               token=Tokens.admin("ops-race-t"))
    assert status == 200, body

    results = engine.together([("usage", {"orgId": org, "tokens": 125, "runs": 1}, {"token": svc})] * 16)

    assert Counter(status for status, _ in results) == {200: 8, 402: 8}, results
    usage = engine.summary(org)["usage"]
    assert (usage["tokens"], usage["runs"]) == (1_000, 8)  # refused requests recorded no run either


def test_concurrent_seat_additions_stop_at_the_seat_limit(engine):
    org, svc = new_org("org-race"), Tokens.internal("svc-race-seats")
    status, body = engine.call("setplan", {"orgId": org, "overrides": {"seats": 5}}, token=Tokens.admin("ops-race-s"))
    assert status == 200, body

    results = engine.together([
        ("usage", {"orgId": org, "seats": 1, "tokens": 1, "requestId": f"member-{i}"}, {"token": svc})
        for i in range(12)
    ])

    assert Counter(status for status, _ in results) == {200: 5, 402: 7}, results
    usage = engine.summary(org)["usage"]
    assert (usage["seats"], usage["tokens"]) == (5, 5)


def test_the_same_record_sent_concurrently_counts_once(engine):
    org, svc = new_org("org-race"), Tokens.internal("svc-race-idem")
    body = {"orgId": org, "tokens": 300, "runs": 1, "requestId": "llm-call-raced"}

    results = engine.together([("usage", body, {"token": svc})] * 8)

    assert [status for status, _ in results] == [200] * 8, results
    assert all(payload == results[0][1] for _, payload in results), results
    usage = engine.summary(org)["usage"]
    assert (usage["tokens"], usage["runs"]) == (300, 1)


def test_concurrent_first_sight_agrees_on_one_trial(engine):
    org = new_org("org-race")
    results = engine.together([("summary", None, {"token": Tokens.user(org)})] * 8)
    assert [status for status, _ in results] == [200] * 8, results
    assert len({(body["planSlug"], body["billingStatus"], body["trialEndsAt"]) for _, body in results}) == 1, results
