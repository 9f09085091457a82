"""History over HTTP: newest first, cursor pagination that visits every entry exactly once,
filters by pool and entry type, and cursors bound to the account and filters they came from."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.http import HISTORY, Caller, assert_error, assert_status

ENTRY_FIELDS = {"entryId", "accountId", "poolId", "entryType", "amountMicro", "actor", "description", "createdAt"}


@pytest.fixture
def busy(api: Caller) -> str:
    """An account with 12 entries: 7 general deposits, a promo grant, a finalized general
    reservation and a released promo one."""
    api.set_mode("live")
    account = api.new_account()
    for i in range(7):
        api.mint(account, 1_000 + i)
    api.mint(account, 500, pool="promo", source="grant")
    general = api.reserve_ok(account, 300)["reservationId"]
    api.finalize_ok(general, 200)
    promo = api.reserve_ok(account, 100, pool="promo")["reservationId"]
    assert_status(api.release(promo), 200)
    return account


def walk(api: Caller, account: str, limit: int, **filters: Any) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    for _ in range(50):
        params: dict[str, Any] = {"limit": limit, **filters}
        if cursor:
            params["cursor"] = cursor
        body = api.history(account, **params)
        assert body["pagination"]["limit"] == limit, body
        assert len(body["entries"]) <= limit, body
        pages.append(body["entries"])
        cursor = body["pagination"]["nextCursor"]
        assert bool(body["pagination"]["hasMore"]) == bool(cursor), body["pagination"]
        if not cursor:
            return pages
    raise AssertionError("pagination never ended")


def test_full_history_is_newest_first_with_the_contract_fields(api: Caller, busy: str) -> None:
    body = api.history(busy, limit=100)
    entries = body["entries"]
    assert len(entries) == 12, [e["entryType"] for e in entries]
    assert body["pagination"]["hasMore"] is False and body["pagination"]["nextCursor"] is None, body["pagination"]
    for entry in entries:
        assert set(entry) >= ENTRY_FIELDS, entry
        assert entry["accountId"] == busy, entry
        assert entry["amountMicro"].isdigit(), entry
    stamps = [e["createdAt"] for e in entries]
    assert stamps == sorted(stamps, reverse=True), stamps
    assert [e["entryType"] for e in entries[:4]] == ["release", "reserve", "finalize", "reserve"], entries[:4]
    assert [e["amountMicro"] for e in entries if e["entryType"] == "deposit"] == \
        ["500", "1006", "1005", "1004", "1003", "1002", "1001", "1000"]


def test_default_limit_is_50(api: Caller, busy: str) -> None:
    body = api.history(busy)
    assert body["pagination"]["limit"] == 50, body["pagination"]
    assert len(body["entries"]) == 12


@pytest.mark.parametrize("limit", [1, 5, 11, 12])
def test_cursor_walk_covers_every_entry_once_newest_first(api: Caller, busy: str, limit: int) -> None:
    everything = api.all_entries(busy)
    pages = walk(api, busy, limit)
    walked = [e for page in pages for e in page]
    ids = [e["entryId"] for e in walked]
    assert len(ids) == len(set(ids)), ids
    assert walked == everything
    assert all(len(page) == limit for page in pages[:-1]), [len(p) for p in pages]


def test_filter_by_pool(api: Caller, busy: str) -> None:
    promo = api.all_entries(busy, poolId="promo")
    assert [e["entryType"] for e in promo] == ["release", "reserve", "deposit"], promo
    assert all(e["poolId"] == "promo" for e in promo), promo
    general = api.all_entries(busy, poolId="general")
    assert len(general) == 9 and all(e["poolId"] == "general" for e in general), general
    assert [e for page in walk(api, busy, 2, poolId="promo") for e in page] == promo


def test_filter_by_entry_type(api: Caller, busy: str) -> None:
    deposits = api.all_entries(busy, entryType="deposit")
    assert len(deposits) == 8 and all(e["entryType"] == "deposit" for e in deposits), deposits
    assert [e for page in walk(api, busy, 3, entryType="deposit") for e in page] == deposits
    both = api.all_entries(busy, entryType="deposit", poolId="general")
    assert len(both) == 7 and all(e["poolId"] == "general" for e in both), both
    assert api.all_entries(busy, entryType="expire") == []


def test_bad_cursors_are_400(api: Caller, busy: str) -> None:
    cursor = api.history(busy, limit=2)["pagination"]["nextCursor"]
    assert cursor
    token = api.user_token(busy)
    for bad in ("garbage", "eyJub3QiOiJvdXJzIn0", cursor[:-4] + "AAAA", cursor + "x"):
        response = api.request("GET", HISTORY, token=token, params={"limit": 2, "cursor": bad})
        assert_error(response, 400, "INVALID_CURSOR")

    # A cursor only works for the account and filters it was issued for.
    other = api.new_account(funded=5)
    response = api.request("GET", HISTORY, token=api.user_token(other), params={"limit": 2, "cursor": cursor})
    assert_error(response, 400, "INVALID_CURSOR")
    response = api.request("GET", HISTORY, token=token, params={"limit": 2, "cursor": cursor, "entryType": "deposit"})
    assert_error(response, 400, "INVALID_CURSOR")
    response = api.request("GET", HISTORY, token=token, params={"limit": 2, "cursor": cursor, "poolId": "promo"})
    assert_error(response, 400, "INVALID_CURSOR")


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": -1}, {"limit": "ten"},
                                    {"limit": "1.5"}, {"entryType": "bogus"}, {"poolId": "Bad Pool!"}])
def test_bad_query_parameters_are_refused(api: Caller, busy: str, params: dict[str, Any]) -> None:
    response = api.request("GET", HISTORY, token=api.user_token(busy), params=params)
    assert_error(response, (400, 422))


def test_empty_account_history(api: Caller) -> None:
    account = api.new_account()
    body = api.history(account)
    assert body["entries"] == [], body
    assert body["pagination"]["hasMore"] is False and body["pagination"]["nextCursor"] is None, body
