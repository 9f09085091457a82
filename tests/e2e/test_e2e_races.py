"""Concurrent callers over HTTP: exactly as many reserves succeed as the balance allows, and a
finalize, mint or reserve raced against itself moves money once."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import requests

from tests.support.http import FINALIZE, RESERVE, Caller, assert_error, assert_status, body_of, mint_path, unique


def race(api: Caller, count: int, make: Any) -> list[requests.Response]:
    """`count` requests released together from their own threads and connections."""
    barrier = Barrier(count)

    def one(index: int) -> requests.Response:
        method, path, body, token = make(index)
        with requests.Session() as session:
            barrier.wait(10)
            return session.request(method, api.url + path, json=body,
                                   headers={"Authorization": f"Bearer {token}"}, timeout=60)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_sixteen_concurrent_reserves_against_six_estimates(api: Caller) -> None:
    api.set_mode("live")
    estimate = 1_000
    account = api.new_account(funded=6 * estimate)
    token = api.internal_token()
    replies = race(api, 16, lambda i: ("POST", RESERVE, {"accountId": account, "estimatedCostMicro": str(estimate)},
                                       token))
    statuses = Counter(r.status_code for r in replies)
    assert statuses == {201: 6, 402: 10}, [(r.status_code, body_of(r)) for r in replies]
    for reply in replies:
        if reply.status_code == 402:
            assert_error(reply, 402, "INSUFFICIENT_CREDIT")
    ids = {r.json()["reservationId"] for r in replies if r.status_code == 201}
    assert len(ids) == 6

    pool = api.pool(account)
    assert (pool["availableMicro"], pool["reservedMicro"], pool["consumedMicro"]) == (0, 6 * estimate, 0), pool
    assert api.total_available(account) == 0
    reserves = [e for e in api.all_entries(account) if e["entryType"] == "reserve"]
    assert len(reserves) == 6, reserves


def test_concurrent_finalize_of_one_reservation_moves_money_once(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=6_000)
    reservation_id = api.reserve_ok(account, 1_000)["reservationId"]
    token = api.internal_token()
    replies = race(api, 8, lambda i: ("POST", FINALIZE, {"reservationId": reservation_id, "actualCostMicro": "700"},
                                      token))
    bodies = [assert_status(r, 200) for r in replies]
    assert all(b == bodies[0] for b in bodies), bodies
    assert (bodies[0]["finalizedMicro"], bodies[0]["releasedMicro"]) == ("700", "300"), bodies[0]

    pool = api.pool(account)
    assert (pool["availableMicro"], pool["reservedMicro"], pool["consumedMicro"]) == (5_300, 0, 700), pool
    finals = [e for e in api.all_entries(account) if e["entryType"] == "finalize"]
    assert len(finals) == 1, finals


def test_concurrent_finalize_with_different_amounts_one_wins(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=6_000)
    reservation_id = api.reserve_ok(account, 1_000)["reservationId"]
    token = api.internal_token()
    amounts = ["300", "600"] * 4
    replies = race(api, 8, lambda i: ("POST", FINALIZE,
                                      {"reservationId": reservation_id, "actualCostMicro": amounts[i]}, token))
    winners = {r.json()["finalizedMicro"] for r in replies if r.status_code == 200}
    assert len(winners) == 1, [(r.status_code, body_of(r)) for r in replies]
    winner = winners.pop()
    for amount, reply in zip(amounts, replies, strict=True):
        if amount == winner:
            assert_status(reply, 200)
        else:
            assert_error(reply, 409, "ALREADY_FINALIZED")

    pool = api.pool(account)
    assert (pool["availableMicro"], pool["reservedMicro"], pool["consumedMicro"]) == \
        (6_000 - int(winner), 0, int(winner)), pool
    finals = [e for e in api.all_entries(account) if e["entryType"] == "finalize"]
    assert len(finals) == 1, finals


def test_concurrent_reserve_retries_with_one_reservation_id_reserve_once(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=6_000)
    reservation_id = unique("run")
    token = api.internal_token()
    body = {"accountId": account, "estimatedCostMicro": "1000", "reservationId": reservation_id}
    replies = race(api, 8, lambda i: ("POST", RESERVE, body, token))
    bodies = [assert_status(r, 201) for r in replies]
    assert all(b == bodies[0] for b in bodies), bodies
    pool = api.pool(account)
    assert (pool["availableMicro"], pool["reservedMicro"]) == (5_000, 1_000), pool


def test_concurrent_mints_with_one_idempotency_key_make_one_lot(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account()
    key = unique("deposit")
    token = api.admin_token()
    body = {"amountMicro": "2500", "sourceType": "deposit", "description": "raced", "idempotencyKey": key}
    replies = race(api, 6, lambda i: ("POST", mint_path(account), body, token))
    bodies = [assert_status(r, 201) for r in replies]  # each gets the original response
    assert all(b == bodies[0] for b in bodies), bodies
    assert api.total_available(account) == 2_500
    deposits = [e for e in api.all_entries(account) if e["entryType"] == "deposit"]
    assert len(deposits) == 1, deposits
