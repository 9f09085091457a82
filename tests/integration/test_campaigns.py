"""Campaigns, in process against the patched moto: a budget that grants can never exceed, a cap
per account, pause/resume, exactly-once grants, and grants racing for the last of a budget
(through the serialized engine and worker processes, as tests/integration/test_concurrency.py).

Campaign routes are invoked on functions/campaigns/app.py with API Gateway proxy events for the
paths of the HTTP contract (docs/campaigns.md); the rest (balance, history) through `api`.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import pytest

from devserver.invoke import LambdaContext, load_handler, proxy_event, reply, routes
from tests.support.backend import snapshot_in_process
from tests.support.handlers import Reply
from tests.support.tables import assert_lot_invariant, ledger, lot_totals, lots
from tests.support.tokens import Tokens
from tests.support.workers import together, worker_pool

UNIT = 1_000_000
BASE = "/admin/billing/campaigns"
RESOURCE = {
    "create": ("POST", BASE),
    "list": ("GET", BASE),
    "get": ("GET", BASE + "/{campaignId}"),
    "pause": ("POST", BASE + "/{campaignId}/pause"),
    "resume": ("POST", BASE + "/{campaignId}/resume"),
    "grant": ("POST", BASE + "/{campaignId}/grants"),
}


def campaign_event(action: str, campaign_id: str | None = None, body: Any = None, *, token: str | None,
                   **kwargs: Any) -> dict[str, Any]:
    method, resource = RESOURCE[action]
    path = {"campaignId": campaign_id} if campaign_id is not None else None
    return proxy_event(method, resource, body=body, token=token, path=path, **kwargs)


class Campaigns:
    """The campaign routes as an operator calls them (one admin subject per test)."""

    def __init__(self, admin: str) -> None:
        self.admin = admin

    def call(self, action: str, campaign_id: str | None = None, body: Any = None, *, token: str | None = None,
             **kwargs: Any) -> Reply:
        proxy = campaign_event(action, campaign_id, body, token=token or self.admin, **kwargs)
        return Reply(*reply(load_handler("campaigns").lambda_handler(proxy, LambdaContext())))

    def create(self, campaign_id: str | None, budget: int, **extra: Any) -> Reply:
        body = {"name": f"campaign {campaign_id}", "budgetMicro": str(budget), **extra}
        if campaign_id is not None:
            body["campaignId"] = campaign_id
        return self.call("create", body=body)

    def created(self, campaign_id: str, budget: int, **extra: Any) -> dict[str, Any]:
        r = self.create(campaign_id, budget, **extra)
        assert r.status == 201, r
        return r.body

    def grant(self, campaign_id: str, account: str, amount: int, **extra: Any) -> Reply:
        return self.call("grant", campaign_id, {"accountId": account, "amountMicro": str(amount), **extra})

    def get(self, campaign_id: str) -> dict[str, Any]:
        r = self.call("get", campaign_id)
        assert r.status == 200, r
        return r.body


@pytest.fixture
def campaigns(api, tokens) -> Campaigns:
    return Campaigns(tokens.admin("ops-campaigns"))


def pool_of(api, tokens, account: str, pool: str) -> dict[str, str] | None:
    r = api.call("balance", token=tokens.user(account))
    assert r.status == 200, r
    return next((p for p in r.body["pools"] if p["poolId"] == pool), None)


# -- create, list, get ---------------------------------------------------------------------------


def test_create_list_and_get(campaigns, aws):
    body = campaigns.created("spring-promo", 10 * UNIT, perAccountCapMicro=2 * UNIT, poolId="promo",
                             grantExpiresAt="2099-01-01T00:00:00Z", description="spring promotion")
    assert body["campaignId"] == "spring-promo"
    assert body["status"] == "active"
    assert (body["budgetMicro"], body["grantedMicro"], body["remainingMicro"]) == (str(10 * UNIT), "0", str(10 * UNIT))
    assert body["perAccountCapMicro"] == str(2 * UNIT)
    assert body["poolId"] == "promo"
    assert body["grantExpiresAt"] == "2099-01-01T00:00:00.000000Z"
    assert body["grantCount"] == 0
    assert body["createdBy"] == "admin:ops-campaigns"
    assert body["description"] == "spring promotion"

    generated = campaigns.created(None, 5)
    assert generated["campaignId"].startswith("cmp_")
    assert generated["poolId"] == "general"
    assert generated["perAccountCapMicro"] is None
    assert generated["grantExpiresAt"] is None

    assert campaigns.get("spring-promo") == body
    listed = campaigns.call("list")
    assert listed.status == 200
    assert {c["campaignId"] for c in listed.body["campaigns"]} == {"spring-promo", generated["campaignId"]}
    assert next(c for c in listed.body["campaigns"] if c["campaignId"] == "spring-promo") == body


def test_create_again_replays_when_identical_and_conflicts_otherwise(campaigns, aws):
    first = campaigns.created("dup", 10 * UNIT)
    again = campaigns.create("dup", 10 * UNIT)
    assert again.status == 201 and again.body == first
    before = snapshot_in_process()
    other = campaigns.create("dup", 11 * UNIT)
    assert (other.status, other.code) == (409, "CAMPAIGN_EXISTS"), other
    assert other.body["error"]["details"] == {"campaignId": "dup"}
    assert snapshot_in_process() == before
    assert campaigns.get("dup")["budgetMicro"] == str(10 * UNIT)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"name": "x", "budgetMicro": "1.5"}, 422, "VALIDATION_ERROR"),
    ({"name": "x", "budgetMicro": 1.0}, 422, "VALIDATION_ERROR"),
    ({"name": "x", "budgetMicro": "0"}, 422, "VALIDATION_ERROR"),
    ({"name": "x", "budgetMicro": "-5"}, 422, "VALIDATION_ERROR"),
    ({"name": "x", "budgetMicro": "10", "perAccountCapMicro": "0"}, 422, "VALIDATION_ERROR"),
    ({"budgetMicro": "10"}, 422, "VALIDATION_ERROR"),
    ({"name": "x", "budgetMicro": "10", "campaignId": "a#b"}, 422, "VALIDATION_ERROR"),
    ({"name": "x", "budgetMicro": "10", "poolId": "Not A Pool"}, 422, "VALIDATION_ERROR"),
    ({"name": "x", "budgetMicro": "10", "grantExpiresAt": "tomorrow"}, 422, "VALIDATION_ERROR"),
    ({"name": "x", "budgetMicro": "10", "grantExpiresAt": "2001-01-01T00:00:00Z"}, 422, "EXPIRY_IN_PAST"),
])
def test_invalid_campaigns_are_refused_and_change_nothing(campaigns, aws, body, status, code):
    before = snapshot_in_process()
    r = campaigns.call("create", body=body)
    assert (r.status, r.code) == (status, code), r
    assert snapshot_in_process() == before
    assert campaigns.call("list").body == {"campaigns": []}


def test_unknown_campaign_is_404_everywhere(campaigns, aws):
    for action in ("get", "pause", "resume"):
        r = campaigns.call(action, "nope")
        assert (r.status, r.code) == (404, "CAMPAIGN_NOT_FOUND"), (action, r)
    r = campaigns.grant("nope", "acct-x", 5)
    assert (r.status, r.code) == (404, "CAMPAIGN_NOT_FOUND"), r
    r = campaigns.call("get", "a" * 129)
    assert (r.status, r.code) == (422, "INVALID_ID"), r


def test_campaign_routes_need_an_admin_token(campaigns, aws, tokens):
    campaigns.created("guarded", 10 * UNIT)
    before = snapshot_in_process()
    for token, status in ((tokens.internal(), 403), (tokens.user("acct-x"), 403), ("not-a-jwt", 401)):
        r = campaigns.call("grant", "guarded", {"accountId": "acct-x", "amountMicro": "5"}, token=token)
        assert r.status == status, r
        r = campaigns.call("list", token=token)
        assert r.status == status, r
    proxy = campaign_event("pause", "guarded", token=None)
    status, body, _ = reply(load_handler("campaigns").lambda_handler(proxy, LambdaContext()))
    assert status == 401, body
    assert snapshot_in_process() == before


# -- grants ----------------------------------------------------------------------------------------


def test_grant_within_budget_mints_a_lot_in_the_campaigns_pool(api, campaigns, aws, tokens):
    campaigns.created("welcome", 10 * UNIT, poolId="promo", grantExpiresAt="2099-06-01T00:00:00Z")
    r = campaigns.grant("welcome", "acct-w", 3 * UNIT, description="welcome bonus")
    assert r.status == 201, r
    body = r.body
    assert body["campaignId"] == "welcome" and body["accountId"] == "acct-w"
    assert body["grantId"].startswith("grant_")
    assert (body["amountMicro"], body["remainingMicro"]) == (str(3 * UNIT), str(7 * UNIT))
    lot = body["lot"]
    assert body["lotId"] == lot["lotId"]
    assert (lot["accountId"], lot["poolId"], lot["sourceType"]) == ("acct-w", "promo", "campaign")
    assert (lot["originalMicro"], lot["availableMicro"]) == (str(3 * UNIT), str(3 * UNIT))
    assert lot["expiresAt"] == "2099-06-01T00:00:00.000000Z"
    assert lot["description"] == "welcome bonus"

    campaign = campaigns.get("welcome")
    assert (campaign["grantedMicro"], campaign["remainingMicro"], campaign["grantCount"]) == \
        (str(3 * UNIT), str(7 * UNIT), 1)
    stored = lots(aws, "acct-w", "promo")
    assert [(x["lotId"], x["original"], x["available"]) for x in stored] == [(lot["lotId"], 3 * UNIT, 3 * UNIT)]
    assert lots(aws, "acct-w", "general") == []

    # The account's balance shows the credit in the campaign's pool, and its history the grant.
    promo = pool_of(api, tokens, "acct-w", "promo")
    assert promo is not None and promo["availableMicro"] == str(3 * UNIT), promo
    assert pool_of(api, tokens, "acct-w", "general") is None
    history = api.call("history", token=tokens.user("acct-w"))
    (entry,) = history.body["entries"]
    assert (entry["entryType"], entry["amountMicro"], entry["poolId"], entry["lotId"]) == \
        ("deposit", str(3 * UNIT), "promo", lot["lotId"])
    assert entry["metadata"]["campaignId"] == "welcome"
    assert entry["metadata"]["grantId"] == body["grantId"]
    assert entry["metadata"]["sourceType"] == "campaign"


def test_grant_over_the_remaining_budget_is_refused_and_changes_nothing(campaigns, aws):
    campaigns.created("small", 10)
    assert campaigns.grant("small", "acct-s1", 6).status == 201
    before = snapshot_in_process()

    r = campaigns.grant("small", "acct-s2", 5)

    assert (r.status, r.code) == (409, "CAMPAIGN_BUDGET_EXHAUSTED"), r
    assert r.body["error"]["details"] == {"campaignId": "small", "budgetMicro": "10", "remainingMicro": "4",
                                          "requestedMicro": "5"}
    assert snapshot_in_process() == before  # no lot, no entry, no grantee, budget intact
    assert lots(aws, "acct-s2") == []
    assert campaigns.get("small")["remainingMicro"] == "4"

    # Exactly the rest of the budget is still grantable; then nothing more.
    r = campaigns.grant("small", "acct-s2", 4)
    assert r.status == 201 and r.body["remainingMicro"] == "0", r
    r = campaigns.grant("small", "acct-s3", 1)
    assert (r.status, r.code) == (409, "CAMPAIGN_BUDGET_EXHAUSTED"), r
    campaign = campaigns.get("small")
    assert (campaign["grantedMicro"], campaign["remainingMicro"], campaign["grantCount"]) == ("10", "0", 2)
    assert sum(x["original"] for a in ("acct-s1", "acct-s2", "acct-s3") for x in lots(aws, a)) == 10


def test_a_grant_larger_than_the_whole_budget_is_refused(campaigns, aws):
    campaigns.created("tiny", 10)
    before = snapshot_in_process()
    r = campaigns.grant("tiny", "acct-t", 11)
    assert (r.status, r.code) == (409, "CAMPAIGN_BUDGET_EXHAUSTED"), r
    assert snapshot_in_process() == before


def test_per_account_cap(campaigns, aws):
    campaigns.created("capped", 100, perAccountCapMicro=3)
    assert campaigns.grant("capped", "acct-c1", 2).status == 201
    before = snapshot_in_process()

    r = campaigns.grant("capped", "acct-c1", 2)
    assert (r.status, r.code) == (409, "ACCOUNT_CAP_EXCEEDED"), r
    assert r.body["error"]["details"] == {"campaignId": "capped", "accountId": "acct-c1", "perAccountCapMicro": "3",
                                          "grantedMicro": "2", "capLeftMicro": "1", "requestedMicro": "2"}
    assert snapshot_in_process() == before

    assert campaigns.grant("capped", "acct-c1", 1).status == 201  # exactly up to the cap
    r = campaigns.grant("capped", "acct-c1", 1)
    assert (r.status, r.code) == (409, "ACCOUNT_CAP_EXCEEDED"), r

    # A first grant over the cap is refused too; the cap is per account.
    before = snapshot_in_process()
    r = campaigns.grant("capped", "acct-c2", 4)
    assert (r.status, r.code) == (409, "ACCOUNT_CAP_EXCEEDED"), r
    assert r.body["error"]["details"]["grantedMicro"] == "0"
    assert snapshot_in_process() == before
    assert campaigns.grant("capped", "acct-c2", 3).status == 201

    assert lot_totals(aws, "acct-c1")["original"] == 3
    assert lot_totals(aws, "acct-c2")["original"] == 3
    campaign = campaigns.get("capped")
    assert (campaign["grantedMicro"], campaign["remainingMicro"], campaign["grantCount"]) == ("6", "94", 3)


def test_pause_refuses_grants_and_resume_allows_them(campaigns, aws):
    campaigns.created("seasonal", 100)
    paused = campaigns.call("pause", "seasonal")
    assert paused.status == 200 and paused.body["status"] == "paused", paused
    assert paused.body["updatedBy"] == "admin:ops-campaigns"
    again = campaigns.call("pause", "seasonal")  # idempotent
    assert again.status == 200 and again.body["status"] == "paused", again
    before = snapshot_in_process()

    r = campaigns.grant("seasonal", "acct-p", 5)

    assert (r.status, r.code) == (409, "CAMPAIGN_NOT_ACTIVE"), r
    assert r.body["error"]["details"] == {"campaignId": "seasonal", "status": "paused"}
    assert snapshot_in_process() == before
    assert campaigns.get("seasonal")["status"] == "paused"

    resumed = campaigns.call("resume", "seasonal")
    assert resumed.status == 200 and resumed.body["status"] == "active", resumed
    assert campaigns.call("resume", "seasonal").body["status"] == "active"
    r = campaigns.grant("seasonal", "acct-p", 5)
    assert r.status == 201 and r.body["remainingMicro"] == "95", r
    assert lot_totals(aws, "acct-p")["original"] == 5


def test_paused_campaigns_leave_the_budget_usage_report(campaigns, aws):
    from billing_core.campaigns import audit

    campaigns.created("u1", 1000)
    campaigns.created("u2", 3)
    campaigns.created("u3", 50)
    assert campaigns.grant("u1", "acct-u", 905).status == 201
    assert campaigns.grant("u2", "acct-u", 1).status == 201
    assert campaigns.call("pause", "u3").status == 200

    usage = audit.budget_usage()

    assert [{"campaignId": u.campaign_id, "budgetMicro": u.budget_micro, "grantedMicro": u.granted_micro,
             "usedBps": u.used_bps} for u in usage] == [
        {"campaignId": "u1", "budgetMicro": 1000, "grantedMicro": 905, "usedBps": 9050},
        {"campaignId": "u2", "budgetMicro": 3, "grantedMicro": 1, "usedBps": 3333},
    ]
    assert audit.audit("u1").ok and audit.audit("u2").ok


def test_same_idempotency_key_grants_once(api, campaigns, aws, tokens):
    campaigns.created("idem", 100)
    body = {"accountId": "acct-i", "amountMicro": "7", "idempotencyKey": "promo-acct-i"}
    first = campaigns.call("grant", "idem", body)
    assert first.status == 201, first
    second = campaigns.call("grant", "idem", {**body, "amountMicro": 7})  # 7 and "7" are one request
    assert second.status == 201 and second.body == first.body, (first, second)

    assert lot_totals(aws, "acct-i")["count"] == 1
    assert lot_totals(aws, "acct-i")["original"] == 7
    assert [e["entryType"] for e in ledger(aws) if e["accountId"] == "acct-i"] == ["deposit"]
    campaign = campaigns.get("idem")
    assert (campaign["grantedMicro"], campaign["remainingMicro"], campaign["grantCount"]) == ("7", "93", 1)

    before = snapshot_in_process()
    for other in ({**body, "amountMicro": "8"}, {**body, "accountId": "acct-j"}, {**body, "description": "other"}):
        r = campaigns.call("grant", "idem", other)
        assert (r.status, r.code) == (409, "IDEMPOTENCY_KEY_REUSED"), (other, r)
    assert snapshot_in_process() == before

    # A retry of a grant made before the campaign was paused still gets the original answer.
    assert campaigns.call("pause", "idem").status == 200
    retried = campaigns.call("grant", "idem", body)
    assert retried.status == 201 and retried.body == first.body, retried
    fresh = campaigns.call("grant", "idem", {**body, "idempotencyKey": "another"})
    assert (fresh.status, fresh.code) == (409, "CAMPAIGN_NOT_ACTIVE"), fresh


def test_idempotency_keys_are_scoped_to_their_campaign(campaigns, aws):
    campaigns.created("scope-a", 100)
    campaigns.created("scope-b", 100)
    body = {"accountId": "acct-k", "amountMicro": "5", "idempotencyKey": "same-key", "description": "same"}
    a = campaigns.call("grant", "scope-a", body)
    b = campaigns.call("grant", "scope-b", body)
    assert a.status == b.status == 201, (a, b)
    assert a.body["grantId"] != b.body["grantId"]
    assert a.body["lot"]["lotId"] != b.body["lot"]["lotId"]
    assert lot_totals(aws, "acct-k")["original"] == 10
    assert campaigns.get("scope-a")["remainingMicro"] == campaigns.get("scope-b")["remainingMicro"] == "95"


def test_system_accounts_cannot_receive_grants(campaigns, aws):
    campaigns.created("sys", 100)
    before = snapshot_in_process()
    r = campaigns.grant("sys", "sys-foundation", 5)
    assert (r.status, r.code) == (422, "SYSTEM_ACCOUNT"), r
    assert snapshot_in_process() == before


def test_grants_stop_when_the_campaigns_lots_would_be_born_expired(campaigns, aws):
    from billing_core.kernel import clock

    campaigns.created("short", 100, grantExpiresAt=clock.iso(clock.now() + 3600))
    keyed = {"accountId": "acct-e", "amountMicro": "5", "idempotencyKey": "before-expiry"}
    first = campaigns.call("grant", "short", keyed)
    assert first.status == 201, first
    clock.advance(3601)
    before = snapshot_in_process()
    r = campaigns.grant("short", "acct-e", 5)
    assert (r.status, r.code) == (409, "CAMPAIGN_EXPIRED"), r
    assert snapshot_in_process() == before
    assert campaigns.call("grant", "short", keyed).body == first.body  # a retry still gets its answer


def test_grant_validation(campaigns, aws):
    campaigns.created("valid", 100)
    before = snapshot_in_process()
    for body in ({"accountId": "acct-v", "amountMicro": "0"}, {"accountId": "acct-v", "amountMicro": 2.5},
                 {"accountId": "acct-v", "amountMicro": "1e3"}, {"accountId": "a#b", "amountMicro": "1"},
                 {"amountMicro": "1"}, {"accountId": "acct-v", "amountMicro": True}):
        r = campaigns.call("grant", "valid", body)
        assert (r.status, r.code) == (422, "VALIDATION_ERROR"), (body, r)
    assert snapshot_in_process() == before


# -- concurrency: worker processes against the serialized engine ----------------------------------

WORKERS = 8


def _function_for(method: str, path: str) -> str:
    found = [r.function_id for r in routes().values() if (r.method, r.path) == (method, path)]
    assert found, f"template.yaml has no route {method} {path}"
    return found[0]


@pytest.fixture(scope="module")
def stack():
    function_id = _function_for("POST", BASE + "/{campaignId}/grants")
    with worker_pool(WORKERS) as (engine, runner):
        yield engine, runner, function_id


def _together(runner: Any, function_id: str, events: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    def send(proxy: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, body, _ = reply(runner.invoke_direct(function_id, proxy))
        return status, body

    return together([functools.partial(send, proxy) for proxy in events])


def test_concurrent_grants_never_exceed_the_budget(stack):
    engine, runner, function_id = stack
    db = engine.client("dynamodb")
    admin = Tokens.admin("ops-campaign-race")
    status, body, _ = reply(runner.invoke_direct(function_id, campaign_event(
        "create", body={"campaignId": "race", "name": "race", "budgetMicro": str(10 * UNIT)}, token=admin)))
    assert status == 201, body
    accounts = [f"acct-race-{i:02d}" for i in range(16)]

    results = _together(runner, function_id, [
        campaign_event("grant", "race", {"accountId": a, "amountMicro": str(UNIT)}, token=Tokens.admin(f"ops-r{i}"))
        for i, a in enumerate(accounts)
    ])

    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 10, 409: 6}, results
    assert {b["error"]["code"] for s, b in results if s == 409} == {"CAMPAIGN_BUDGET_EXHAUSTED"}
    remaining_reported = sorted(int(b["remainingMicro"]) for s, b in results if s == 201)
    assert all(0 <= r < 10 * UNIT for r in remaining_reported), remaining_reported
    granted = {a: lot_totals(db, a) for a in accounts}
    winners = [b["accountId"] for s, b in results if s == 201]
    assert sum(t["original"] for t in granted.values()) == 10 * UNIT
    assert {a for a, t in granted.items() if t["count"]} == set(winners)
    assert all(t["count"] in (0, 1) for t in granted.values())
    for a in winners:
        assert_lot_invariant(db, a)
    status, campaign, _ = reply(runner.invoke_direct(function_id, campaign_event("get", "race", token=admin)))
    assert (campaign["grantedMicro"], campaign["remainingMicro"], campaign["grantCount"]) == \
        (str(10 * UNIT), "0", 10), campaign
    deposits = [e for e in ledger(db) if e.get("metadata", {}).get("campaignId") == "race"]
    assert sorted(e["accountId"] for e in deposits) == sorted(winners)


def test_concurrent_grants_to_one_account_stop_at_its_cap(stack):
    engine, runner, function_id = stack
    db = engine.client("dynamodb")
    admin = Tokens.admin("ops-campaign-cap-race")
    status, body, _ = reply(runner.invoke_direct(function_id, campaign_event(
        "create", body={"campaignId": "cap-race", "name": "cap race", "budgetMicro": str(100 * UNIT),
                        "perAccountCapMicro": str(3 * UNIT)}, token=admin)))
    assert status == 201, body

    results = _together(runner, function_id, [
        campaign_event("grant", "cap-race", {"accountId": "acct-cap-race", "amountMicro": str(UNIT)},
                       token=Tokens.admin(f"ops-c{i}"))
        for i in range(8)
    ])

    assert Counter(status for status, _ in results) == {201: 3, 409: 5}, results
    assert {b["error"]["code"] for s, b in results if s == 409} == {"ACCOUNT_CAP_EXCEEDED"}
    totals = lot_totals(db, "acct-cap-race")
    assert (totals["count"], totals["original"]) == (3, 3 * UNIT)
    status, campaign, _ = reply(runner.invoke_direct(function_id, campaign_event("get", "cap-race", token=admin)))
    assert (campaign["grantedMicro"], campaign["remainingMicro"]) == (str(3 * UNIT), str(97 * UNIT)), campaign


def test_concurrent_retries_of_one_keyed_grant_grant_once(stack):
    engine, runner, function_id = stack
    db = engine.client("dynamodb")
    admin = Tokens.admin("ops-campaign-idem-race")
    status, body, _ = reply(runner.invoke_direct(function_id, campaign_event(
        "create", body={"campaignId": "idem-race", "name": "idem race", "budgetMicro": str(100 * UNIT)},
        token=admin)))
    assert status == 201, body
    grant = {"accountId": "acct-idem-race", "amountMicro": str(UNIT), "idempotencyKey": "once"}

    results = _together(runner, function_id, [
        campaign_event("grant", "idem-race", grant, token=Tokens.admin(f"ops-i{i}")) for i in range(8)
    ])

    assert [s for s, _ in results] == [201] * 8, results
    assert all(b == results[0][1] for _, b in results), results
    totals = lot_totals(db, "acct-idem-race")
    assert (totals["count"], totals["original"]) == (1, UNIT)
    status, campaign, _ = reply(runner.invoke_direct(function_id, campaign_event("get", "idem-race", token=admin)))
    assert (campaign["grantedMicro"], campaign["grantCount"]) == (str(UNIT), 1), campaign
