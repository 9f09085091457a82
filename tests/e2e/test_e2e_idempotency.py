"""Exactly-once over HTTP: retried requests return the original response and never move money
twice; a key reused for another request is 409; expired reservations give their money back."""

from __future__ import annotations

import time

from tests.support.http import Caller, assert_error, assert_status, unique


def test_reserve_retry_with_same_reservation_id_returns_the_original(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=1_000)
    reservation_id = unique("run")
    first = api.reserve(account, 250, reservation_id=reservation_id)
    body = assert_status(first, 201)
    assert body["reservationId"] == reservation_id, body
    for _ in range(2):
        again = api.reserve(account, 250, reservation_id=reservation_id)
        assert assert_status(again, 201) == body
    pool = api.pool(account)
    assert (pool["availableMicro"], pool["reservedMicro"]) == (750, 250), pool
    reserves = [e for e in api.all_entries(account) if e["entryType"] == "reserve"]
    assert len(reserves) == 1, reserves


def test_reserve_same_id_other_body_is_409(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=1_000)
    reservation_id = unique("run")
    api.reserve_ok(account, 250, reservation_id=reservation_id)
    assert_error(api.reserve(account, 251, reservation_id=reservation_id), 409, "IDEMPOTENCY_KEY_REUSED")
    other = api.new_account(funded=1_000)
    assert_error(api.reserve(other, 250, reservation_id=reservation_id), 409, "IDEMPOTENCY_KEY_REUSED")
    assert api.pool(account)["reservedMicro"] == 250
    assert api.pool(other)["reservedMicro"] == 0


def test_reserve_retry_after_finalize_still_returns_the_original(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=1_000)
    reservation_id = unique("run")
    original = api.reserve_ok(account, 100, reservation_id=reservation_id)
    api.finalize_ok(reservation_id, 100)
    assert assert_status(api.reserve(account, 100, reservation_id=reservation_id), 201) == original
    pool = api.pool(account)
    assert (pool["availableMicro"], pool["reservedMicro"], pool["consumedMicro"]) == (900, 0, 100), pool


def test_finalize_retry_same_amount_same_body_other_amount_409(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=1_000)
    reservation_id = api.reserve_ok(account, 250)["reservationId"]
    first = api.finalize_ok(reservation_id, 180)
    assert (first["finalizedMicro"], first["releasedMicro"], first["overrunMicro"]) == ("180", "70", "0"), first
    assert api.finalize_ok(reservation_id, 180) == first
    error = assert_error(api.finalize(reservation_id, 181), 409, "ALREADY_FINALIZED")
    assert error["details"].get("finalizedMicro") == "180", error
    assert api.finalize_ok(reservation_id, 180) == first

    pool = api.pool(account)
    assert (pool["availableMicro"], pool["reservedMicro"], pool["consumedMicro"]) == (820, 0, 180), pool
    finals = [e for e in api.all_entries(account) if e["entryType"] == "finalize"]
    assert len(finals) == 1, finals


def test_release_twice_and_conflicts_after_release_or_finalize(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=1_000)
    released_id = api.reserve_ok(account, 300)["reservationId"]
    first = assert_status(api.release(released_id), 200)
    assert first["reservationId"] == released_id, first
    assert assert_status(api.release(released_id), 200) == first
    assert_error(api.finalize(released_id, 10), 409, "RESERVATION_RELEASED")

    finalized_id = api.reserve_ok(account, 300)["reservationId"]
    api.finalize_ok(finalized_id, 100)
    assert_error(api.release(finalized_id), 409)

    pool = api.pool(account)
    assert (pool["availableMicro"], pool["reservedMicro"], pool["consumedMicro"]) == (900, 0, 100), pool
    releases = [e for e in api.all_entries(account) if e["entryType"] == "release"]
    assert len(releases) == 1, releases


def test_unknown_reservation_is_404(api: Caller) -> None:
    api.set_mode("live")
    assert_error(api.finalize(unique("never"), 1), 404, "RESERVATION_NOT_FOUND")
    assert_error(api.release(unique("never")), 404, "RESERVATION_NOT_FOUND")


def test_mint_with_idempotency_key_twice_makes_one_lot(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account()
    key = unique("welcome")
    first = api.mint(account, 5_000, key=key).json()
    second = api.mint(account, 5_000, key=key).json()  # the original 201 again
    assert second == first
    assert api.total_available(account) == 5_000
    deposits = [e for e in api.all_entries(account) if e["entryType"] == "deposit"]
    assert len(deposits) == 1, deposits

    # Same key, another request: 409, nothing minted.
    assert_error(api.mint(account, 5_001, key=key, expect=None), 409, "IDEMPOTENCY_KEY_REUSED")
    assert api.total_available(account) == 5_000


def test_mint_without_key_mints_each_time(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account()
    first = api.mint(account, 100).json()
    second = api.mint(account, 100).json()
    assert first["lotId"] != second["lotId"]
    assert api.total_available(account) == 200


def test_expired_reservation_is_409_and_its_money_is_available_again(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=1_000)
    reservation = api.reserve_ok(account, 400, ttl=1)
    pool = api.pool(account)
    assert (pool["availableMicro"], pool["reservedMicro"]) == (600, 400), pool

    time.sleep(2.1)
    # The expiry time is authoritative, not the sweeper: finalize finds it expired.
    error = assert_error(api.finalize(reservation["reservationId"], 100), 409, "RESERVATION_EXPIRED")
    assert error
    pool = api.pool(account)
    assert (pool["availableMicro"], pool["reservedMicro"], pool["consumedMicro"]) == (1_000, 0, 0), pool
    assert_error(api.finalize(reservation["reservationId"], 100), 409, "RESERVATION_EXPIRED")
    assert_error(api.release(reservation["reservationId"]), 409)
    assert api.total_available(account) == 1_000

    types = [e["entryType"] for e in api.all_entries(account)]
    assert types[0] == "expire", types
    assert "finalize" not in types, types
