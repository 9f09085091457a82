"""Campaigns over HTTP against the local stack: create/list/get, grants that land in the
campaign's pool, a budget and a per-account cap that hold under concurrent grants, pause/resume,
and exactly-once keyed grants. Written from the contract in docs/campaigns.md."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import requests

from tests.support.http import Caller, assert_error, assert_status, body_of, unique

CAMPAIGNS = "/admin/billing/campaigns"
UNIT = 1_000_000


def campaign_path(campaign_id: str, action: str | None = None) -> str:
    return f"{CAMPAIGNS}/{campaign_id}" + (f"/{action}" if action else "")


def create(api: Caller, budget: int, **extra: Any) -> dict[str, Any]:
    body = {"campaignId": unique("cmp"), "name": "e2e campaign", "budgetMicro": str(budget), **extra}
    return assert_status(api.request("POST", CAMPAIGNS, json_body=body, token=api.admin_token()), 201)


def grant(api: Caller, campaign_id: str, account: str, amount: int | str, *, admin: str | None = None,
          **extra: Any) -> requests.Response:
    body = {"accountId": account, "amountMicro": str(amount), **extra}
    return api.request("POST", campaign_path(campaign_id, "grants"), json_body=body, token=api.admin_token(admin))


def read(api: Caller, campaign_id: str) -> dict[str, Any]:
    return assert_status(api.request("GET", campaign_path(campaign_id), token=api.admin_token()), 200)


def race(api: Caller, requests_: list[tuple[str, dict[str, Any], str]]) -> list[requests.Response]:
    """POSTs released together, each from its own thread and connection."""
    barrier = Barrier(len(requests_))

    def one(item: tuple[str, dict[str, Any], str]) -> requests.Response:
        path, body, token = item
        with requests.Session() as session:
            barrier.wait(10)
            return session.post(api.url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    with ThreadPoolExecutor(len(requests_)) as pool:
        return list(pool.map(one, requests_))


def test_create_list_get_and_grant_into_the_campaigns_pool(api: Caller) -> None:
    campaign = create(api, 10 * UNIT, poolId="promo", perAccountCapMicro=str(4 * UNIT),
                      grantExpiresAt="2099-01-01T00:00:00Z", description="launch")
    cid = campaign["campaignId"]
    assert campaign["status"] == "active"
    assert (campaign["budgetMicro"], campaign["grantedMicro"], campaign["remainingMicro"]) == \
        (str(10 * UNIT), "0", str(10 * UNIT))
    assert campaign["perAccountCapMicro"] == str(4 * UNIT) and campaign["poolId"] == "promo"
    assert read(api, cid) == campaign
    listed = assert_status(api.request("GET", CAMPAIGNS, token=api.admin_token()), 200)
    assert campaign in listed["campaigns"]

    account = api.new_account()
    body = assert_status(grant(api, cid, account, 3 * UNIT, description="welcome"), 201)
    assert (body["campaignId"], body["accountId"], body["amountMicro"], body["remainingMicro"]) == \
        (cid, account, str(3 * UNIT), str(7 * UNIT))
    assert (body["lot"]["poolId"], body["lot"]["sourceType"], body["lot"]["originalMicro"]) == \
        ("promo", "campaign", str(3 * UNIT))
    assert body["lot"]["expiresAt"].startswith("2099-01-01T00:00:00")

    assert api.pool(account, "promo")["availableMicro"] == 3 * UNIT
    assert api.pool(account, "general")["availableMicro"] == 0
    (entry,) = api.all_entries(account)
    assert (entry["entryType"], entry["poolId"], entry["amountMicro"]) == ("deposit", "promo", str(3 * UNIT))
    assert entry["metadata"]["campaignId"] == cid and entry["metadata"]["grantId"] == body["grantId"]
    after = read(api, cid)
    assert (after["grantedMicro"], after["remainingMicro"], after["grantCount"]) == (str(3 * UNIT), str(7 * UNIT), 1)


def test_refusals_change_nothing(api: Caller) -> None:
    cid = create(api, 10, perAccountCapMicro="6")["campaignId"]
    first, second = api.new_account(), api.new_account()
    assert_status(grant(api, cid, first, 6), 201)

    error = assert_error(grant(api, cid, first, 1), 409, "ACCOUNT_CAP_EXCEEDED")
    assert error["details"]["capLeftMicro"] == "0"
    error = assert_error(grant(api, cid, second, 5), 409, "CAMPAIGN_BUDGET_EXHAUSTED")
    assert (error["details"]["remainingMicro"], error["details"]["requestedMicro"]) == ("4", "5")
    assert_error(grant(api, cid, "sys-foundation", 1), 422, "SYSTEM_ACCOUNT")
    assert_error(grant(api, cid, second, "1.5"), 422, "VALIDATION_ERROR")
    assert_error(grant(api, unique("cmp-missing"), second, 1), 404, "CAMPAIGN_NOT_FOUND")
    assert_error(api.request("POST", CAMPAIGNS, json_body={"campaignId": cid, "name": "other", "budgetMicro": "1"},
                             token=api.admin_token()), 409, "CAMPAIGN_EXISTS")
    assert_error(api.request("GET", CAMPAIGNS, token=api.internal_token()), 403)

    assert api.total_available(second) == 0 and api.all_entries(second) == []
    assert api.total_available(first) == 6
    campaign = read(api, cid)
    assert (campaign["budgetMicro"], campaign["grantedMicro"], campaign["remainingMicro"], campaign["grantCount"]) \
        == ("10", "6", "4", 1)


def test_pause_refuses_grants_and_resume_allows_them(api: Caller) -> None:
    cid = create(api, 100)["campaignId"]
    account = api.new_account()
    paused = assert_status(api.request("POST", campaign_path(cid, "pause"), token=api.admin_token()), 200)
    assert paused["status"] == "paused"
    again = assert_status(api.request("POST", campaign_path(cid, "pause"), token=api.admin_token()), 200)
    assert again["status"] == "paused"
    error = assert_error(grant(api, cid, account, 5), 409, "CAMPAIGN_NOT_ACTIVE")
    assert error["details"]["status"] == "paused"
    assert api.total_available(account) == 0

    resumed = assert_status(api.request("POST", campaign_path(cid, "resume"), token=api.admin_token()), 200)
    assert resumed["status"] == "active"
    assert assert_status(grant(api, cid, account, 5), 201)["remainingMicro"] == "95"
    assert api.total_available(account) == 5


def test_keyed_grant_is_exactly_once(api: Caller) -> None:
    cid = create(api, 100)["campaignId"]
    account = api.new_account()
    key = unique("grant")
    first = assert_status(grant(api, cid, account, 7, idempotencyKey=key), 201)
    again = assert_status(grant(api, cid, account, 7, idempotencyKey=key), 201)
    assert again == first
    assert_error(grant(api, cid, account, 8, idempotencyKey=key), 409, "IDEMPOTENCY_KEY_REUSED")
    assert api.total_available(account) == 7
    assert len(api.all_entries(account)) == 1
    assert read(api, cid)["remainingMicro"] == "93"


def test_sixteen_concurrent_grants_race_for_ten_units_of_budget(api: Caller) -> None:
    cid = create(api, 10 * UNIT)["campaignId"]
    accounts = [api.new_account() for _ in range(16)]
    # One admin subject per request: the race is about the budget, not the 30/min admin limit.
    replies = race(api, [(campaign_path(cid, "grants"), {"accountId": a, "amountMicro": str(UNIT)},
                          api.admin_token(unique("ops-race"))) for a in accounts])

    statuses = Counter(r.status_code for r in replies)
    assert statuses == {201: 10, 409: 6}, [(r.status_code, body_of(r)) for r in replies]
    for reply in replies:
        if reply.status_code == 409:
            assert_error(reply, 409, "CAMPAIGN_BUDGET_EXHAUSTED")
    winners = {r.json()["accountId"] for r in replies if r.status_code == 201}
    assert len(winners) == 10
    assert sum(api.total_available(a) for a in accounts) == 10 * UNIT
    for account in accounts:
        assert api.total_available(account) == (UNIT if account in winners else 0)
    campaign = read(api, cid)
    assert (campaign["grantedMicro"], campaign["remainingMicro"], campaign["grantCount"]) == \
        (str(10 * UNIT), "0", 10), campaign


def test_concurrent_grants_to_one_account_stop_at_its_cap(api: Caller) -> None:
    cid = create(api, 100 * UNIT, perAccountCapMicro=str(3 * UNIT))["campaignId"]
    account = api.new_account()
    replies = race(api, [(campaign_path(cid, "grants"), {"accountId": account, "amountMicro": str(UNIT)},
                          api.admin_token(unique("ops-cap"))) for _ in range(8)])

    assert Counter(r.status_code for r in replies) == {201: 3, 409: 5}, [(r.status_code, body_of(r)) for r in replies]
    for reply in replies:
        if reply.status_code == 409:
            assert_error(reply, 409, "ACCOUNT_CAP_EXCEEDED")
    assert api.total_available(account) == 3 * UNIT
    assert read(api, cid)["remainingMicro"] == str(97 * UNIT)
