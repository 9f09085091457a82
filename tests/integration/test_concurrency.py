"""Concurrency through the serialized engine, interleaved at the request level like Lambda: the
engine (moto server under one lock) runs in this process, each handler invocation runs in one
of 8 spawned worker processes (devserver's WorkerPoolRunner, one invocation per process at a
time), and requests are released together from threads of this process."""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from typing import Any

import pytest

from devserver.invoke import event, reply, routes
from tests.support.tables import assert_lot_invariant, entries_for, ledger, lot_totals, reservation, revenue_shares
from tests.support.tokens import Tokens
from tests.support.workers import together, worker_pool

WORKERS = 8


class Stack:
    def __init__(self, engine: Any, runner: Any) -> None:
        self.engine = engine
        self.runner = runner
        self.db = engine.client("dynamodb")

    def call(self, route: str, body: Any = None, **kwargs: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        return reply(self.runner.invoke_direct(routes()[route].function_id, event(route, body, **kwargs)))

    def together(self, calls: list[tuple[str, Any, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
        """Send all calls at once (each from its own thread, each handled in a worker process)."""
        def send(route: str, body: Any, kwargs: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            status, payload, _ = self.call(route, body, **kwargs)
            return status, payload

        return together([functools.partial(send, *call) for call in calls])

    def mint(self, account: str, amount: int, admin: str) -> None:
        status, body, _ = self.call("mint", {"amountMicro": str(amount), "sourceType": "deposit",
                                             "description": "concurrency test credit"},
                                    token=admin, path={"accountId": account})
        assert status == 201, body


@pytest.fixture(scope="module")
def stack():
    with worker_pool(WORKERS) as (engine, runner):
        s = Stack(engine, runner)
        # Cold-start every worker (all 8 busy at once, so each one takes a call).
        warm = s.together([("pricing", None, {})] * WORKERS)
        assert all(status == 200 for status, _ in warm), warm
        status, body, _ = s.call("mode", {"mode": "live"}, token=Tokens.admin("ops-conc-setup"))
        assert status == 200 and body["mode"] == "live", body
        yield s


def test_live_reserves_stop_at_the_balance(stack, tokens):
    account, svc = "acct-conc-a", tokens.internal("svc-conc-a")
    stack.mint(account, 1_000_000, tokens.admin("ops-conc-a"))

    results = stack.together([
        ("reserve", {"accountId": account, "estimatedCostMicro": "150000"}, {"token": svc})
        for _ in range(16)
    ])

    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 6, 402: 10}, results
    assert {body["error"]["code"] for status, body in results if status == 402} == {"INSUFFICIENT_CREDIT"}
    ids = [body["reservationId"] for status, body in results if status == 201]
    assert len(set(ids)) == 6
    totals = lot_totals(stack.db, account)
    assert (totals["reserved"], totals["available"], totals["consumed"]) == (900_000, 100_000, 0)
    assert_lot_invariant(stack.db, account)
    reserve_entries = [e for e in ledger(stack.db) if e["accountId"] == account and e["entryType"] == "reserve"]
    assert sorted(e["reservationId"] for e in reserve_entries) == sorted(ids)
    status, balance, _ = stack.call("balance", token=tokens.user(account))
    assert status == 200
    assert balance["pools"][0]["availableMicro"] == "100000"
    assert balance["pools"][0]["reservedMicro"] == "900000"


def test_concurrent_identical_finalizes_charge_once(stack, tokens):
    account, svc = "acct-conc-b", tokens.internal("svc-conc-b")
    stack.mint(account, 1_000_000, tokens.admin("ops-conc-b"))
    status, res, _ = stack.call("reserve", {"accountId": account, "estimatedCostMicro": "400000"}, token=svc)
    assert status == 201, res
    rid = res["reservationId"]

    results = stack.together([
        ("finalize", {"reservationId": rid, "actualCostMicro": "250000"}, {"token": svc}) for _ in range(8)
    ])

    assert [status for status, _ in results] == [200] * 8, results
    bodies = [body for _, body in results]
    assert all(body == bodies[0] for body in bodies), bodies
    assert (bodies[0]["finalizedMicro"], bodies[0]["releasedMicro"]) == ("250000", "150000")
    totals = lot_totals(stack.db, account)
    assert (totals["available"], totals["reserved"], totals["consumed"]) == (750_000, 0, 250_000)
    assert_lot_invariant(stack.db, account)
    entries = Counter(e["entryType"] for e in entries_for(stack.db, rid))
    assert entries == {"reserve": 1, "finalize": 1}  # the finalize entry carries the revenue shares
    shares = revenue_shares(stack.db, rid)
    assert shares == {"sys-foundation": 25_000, "sys-commons": 12_500, "sys-community-pool": 6_250}


def test_finalize_racing_release_has_exactly_one_winner(stack, tokens):
    account, svc = "acct-conc-c", tokens.internal("svc-conc-c")
    stack.mint(account, 2_000_000, tokens.admin("ops-conc-c"))
    rounds, finalized, released = 15, [], []
    for _ in range(rounds):
        status, res, _ = stack.call("reserve", {"accountId": account, "estimatedCostMicro": "100000"}, token=svc)
        assert status == 201, res
        rid = res["reservationId"]
        (f_status, f_body), (r_status, r_body) = stack.together([
            ("finalize", {"reservationId": rid, "actualCostMicro": "60000"}, {"token": svc}),
            ("release", {"reservationId": rid}, {"token": svc}),
        ])
        assert sorted([f_status, r_status]) == [200, 409], (f_body, r_body)
        kinds = Counter(e["entryType"] for e in entries_for(stack.db, rid))
        if f_status == 200:
            assert r_body["error"]["code"] == "ALREADY_FINALIZED", r_body
            assert reservation(stack.db, rid)["status"] == "finalized"
            assert kinds["finalize"] == 1 and kinds["release"] == 0, kinds
            finalized.append(rid)
        else:
            assert f_body["error"]["code"] == "RESERVATION_RELEASED", f_body
            assert reservation(stack.db, rid)["status"] == "released"
            assert kinds["release"] == 1 and kinds["finalize"] == 0 and kinds["revenue_share"] == 0, kinds
            assert revenue_shares(stack.db, rid) == {}
            released.append(rid)

    assert len(finalized) + len(released) == rounds
    totals = lot_totals(stack.db, account)
    assert totals["consumed"] == 60_000 * len(finalized)
    assert totals["reserved"] == 0
    assert totals["available"] == 2_000_000 - 60_000 * len(finalized)
    assert_lot_invariant(stack.db, account)
    status, balance, _ = stack.call("balance", token=tokens.user(account))
    assert balance["totalAvailableMicro"] == str(2_000_000 - 60_000 * len(finalized))


@pytest.mark.parametrize("minted", [1_000_000, 150_000], ids=["ample-balance", "exact-balance"])
def test_same_reserve_sent_concurrently_makes_one_reservation(stack, tokens, minted):
    account = f"acct-conc-d-{minted}"
    svc = tokens.internal(f"svc-conc-d-{minted}")
    stack.mint(account, minted, tokens.admin(f"ops-conc-d-{minted}"))
    rid = f"res-conc-{uuid.uuid4().hex}"
    body = {"accountId": account, "estimatedCostMicro": "150000", "reservationId": rid, "ttlSeconds": 600}

    results = stack.together([("reserve", body, {"token": svc}) for _ in range(8)])

    assert [status for status, _ in results] == [201] * 8, results
    assert all(payload == results[0][1] for _, payload in results), results
    assert results[0][1]["reservationId"] == rid
    totals = lot_totals(stack.db, account)
    assert (totals["reserved"], totals["available"]) == (150_000, minted - 150_000)
    assert_lot_invariant(stack.db, account)
    assert Counter(e["entryType"] for e in entries_for(stack.db, rid)) == {"reserve": 1}
    assert reservation(stack.db, rid)["status"] == "pending"


def test_same_reservation_id_with_different_bodies_has_one_winner(stack, tokens):
    account, svc = "acct-conc-e", tokens.internal("svc-conc-e")
    stack.mint(account, 10_000_000, tokens.admin("ops-conc-e"))
    rid = f"res-conc-{uuid.uuid4().hex}"

    results = stack.together([
        ("reserve", {"accountId": account, "estimatedCostMicro": str(100_000 * (i + 1)), "reservationId": rid},
         {"token": svc}) for i in range(8)
    ])

    winners = [body for status, body in results if status == 201]
    assert len(winners) == 1, results
    assert sorted(body["error"]["code"] for status, body in results if status != 201) == \
        ["IDEMPOTENCY_KEY_REUSED"] * 7, results
    reserved = int(winners[0]["reservedMicro"])
    assert reservation(stack.db, rid)["estimateMicro"] == reserved
    totals = lot_totals(stack.db, account)
    assert (totals["reserved"], totals["available"]) == (reserved, 10_000_000 - reserved)
    assert Counter(e["entryType"] for e in entries_for(stack.db, rid)) == {"reserve": 1}


def test_same_mint_sent_concurrently_creates_one_lot(stack, tokens):
    account, admin = "acct-conc-f", tokens.admin("ops-conc-f")
    body = {"amountMicro": "2500000", "sourceType": "deposit", "description": "payment 42",
            "idempotencyKey": f"payment-{uuid.uuid4().hex}"}

    results = stack.together([("mint", body, {"token": admin, "path": {"accountId": account}})] * 8)

    assert [status for status, _ in results] == [201] * 8, results
    assert all(payload == results[0][1] for _, payload in results), results
    totals = lot_totals(stack.db, account)
    assert (totals["count"], totals["original"], totals["available"]) == (1, 2_500_000, 2_500_000)
    deposits = [e for e in ledger(stack.db) if e["accountId"] == account and e["entryType"] == "deposit"]
    assert len(deposits) == 1


def test_sweeper_racing_finalize_leaves_exactly_one_final_state(stack, tokens):
    """Reservations with a 1 s TTL; at about the moment they expire, a finalize and the sweeper
    function are released together. Whoever wins, there is one final state, one settlement entry,
    and the money moved once."""
    import random
    import time

    account, svc = "acct-conc-sweep", tokens.internal("svc-conc-sweep")
    stack.mint(account, 5_000_000, tokens.admin("ops-conc-sweep"))
    outcomes: Counter[str] = Counter()
    consumed = 0
    for _ in range(12):
        status, res, _ = stack.call("reserve", {"accountId": account, "estimatedCostMicro": "100000",
                                                "ttlSeconds": 1}, token=svc)
        assert status == 201, res
        rid = res["reservationId"]
        time.sleep(max(0.0, 0.85 + random.uniform(0, 0.35)))  # straddle the expiry
        (f_status, f_body, _), sweep_result = together([
            functools.partial(stack.call, "finalize", {"reservationId": rid, "actualCostMicro": "70000"}, token=svc),
            functools.partial(stack.runner.invoke_direct, "SweeperFunction", {"source": "aws.scheduler"}),
        ])
        final = reservation(stack.db, rid)["status"]
        kinds = Counter(e["entryType"] for e in entries_for(stack.db, rid))
        if final == "finalized":
            assert f_status == 200, f_body
            assert kinds["finalize"] == 1 and kinds["expire"] == 0, kinds
            consumed += 70_000
        else:
            assert final == "expired", final
            assert f_status == 409 and f_body["error"]["code"] == "RESERVATION_EXPIRED", f_body
            assert kinds["expire"] == 1 and kinds["finalize"] == 0, kinds
        assert sweep_result["errors"] == [], sweep_result
        outcomes[final] += 1
    totals = lot_totals(stack.db, account)
    assert totals == {**totals, "reserved": 0, "consumed": consumed, "available": 5_000_000 - consumed}
    assert_lot_invariant(stack.db, account)
    assert sum(outcomes.values()) == 12
