"""The sweeper in-process: expired reservations are released through the pending-by-expiry
index (never a scan), due ones only, each exactly once, in every billing mode."""

from __future__ import annotations

from typing import Any

import pytest
from billing_core.kernel import clock
from billing_core.ledger import sweeper
from billing_core.store import dynamo

from devserver.invoke import LambdaContext, load_handler


def reserve(api: Any, tokens: Any, account: str, amount: int, ttl: int, rid: str) -> None:
    r = api.call("reserve", {"accountId": account, "estimatedCostMicro": str(amount), "ttlSeconds": ttl,
                             "reservationId": rid}, token=tokens.internal())
    assert r.status == 201, r.body


@pytest.fixture
def live(api: Any, tokens: Any) -> Any:
    admin = tokens.admin()
    assert api.set_mode("live", token=admin).status == 200
    return admin


def balance(api: Any, tokens: Any, account: str) -> dict[str, Any]:
    return api.call("balance", token=tokens.user(account)).body["pools"][0]


def test_sweeper_releases_only_expired_reservations(api: Any, tokens: Any, live: str):
    api.mint("acct-sweep", 10_000_000, token=live)
    for i in range(12):  # spread over the index's shards
        reserve(api, tokens, "acct-sweep", 100_000, ttl=30, rid=f"sweep-short-{i}")
    reserve(api, tokens, "acct-sweep", 1_000_000, ttl=3600, rid="sweep-long")
    assert sweeper.sweep().expired == 0
    clock.advance(31)
    result = sweeper.sweep()
    assert (result.expired, result.lost_races, result.complete) == (12, 0, True)
    pool = balance(api, tokens, "acct-sweep")
    assert pool["availableMicro"] == "9000000" and pool["reservedMicro"] == "1000000"
    history = api.call("history", token=tokens.user("acct-sweep"), query={"entryType": "expire"}).body["entries"]
    assert len(history) == 12 and {e["actor"] for e in history} == {"sweeper"}
    # A second run finds nothing: expired reservations left the index.
    assert sweeper.sweep().scanned == 0


def test_finalize_after_the_sweeper_gets_a_409_and_moves_nothing(api: Any, tokens: Any, live: str):
    api.mint("acct-sweep-fin", 1_000_000, token=live)
    reserve(api, tokens, "acct-sweep-fin", 400_000, ttl=5, rid="sweep-fin")
    clock.advance(6)
    assert sweeper.sweep().expired == 1
    r = api.call("finalize", {"reservationId": "sweep-fin", "actualCostMicro": "100"}, token=tokens.internal())
    assert r.status == 409 and r.code == "RESERVATION_EXPIRED"
    assert balance(api, tokens, "acct-sweep-fin")["availableMicro"] == "1000000"


def test_sweeper_skips_what_finalize_settled_first(api: Any, tokens: Any, live: str):
    api.mint("acct-sweep-race", 1_000_000, token=live)
    reserve(api, tokens, "acct-sweep-race", 400_000, ttl=5, rid="sweep-race")
    assert api.call("finalize", {"reservationId": "sweep-race", "actualCostMicro": "300000"},
                    token=tokens.internal()).status == 200
    clock.advance(6)
    assert sweeper.sweep().expired == 0
    assert balance(api, tokens, "acct-sweep-race")["availableMicro"] == "700000"


@pytest.mark.parametrize("mode", ["shadow", "soft"])
def test_sweeper_expires_shadow_and_soft_reservations(api: Any, tokens: Any, mode: str):
    admin = tokens.admin()
    api.set_mode(mode, token=admin)
    reserve(api, tokens, f"acct-sweep-{mode}", 500_000, ttl=2, rid=f"sweep-{mode}")
    clock.advance(3)
    assert sweeper.sweep().expired == 1
    entry_type = "shadow_expire" if mode == "shadow" else "expire"
    expired = api.call("history", token=tokens.user(f"acct-sweep-{mode}"), query={"entryType": entry_type})
    assert len(expired.body["entries"]) == 1
    if mode == "soft":  # the unbacked hold is dropped: nothing held, nothing owed
        pool = balance(api, tokens, f"acct-sweep-{mode}")
        assert pool["availableMicro"] == "0" and pool["reservedMicro"] == "0"


def test_sweeper_never_scans(api: Any, tokens: Any, live: str, monkeypatch: pytest.MonkeyPatch):
    api.mint("acct-sweep-noscan", 1_000_000, token=live)
    reserve(api, tokens, "acct-sweep-noscan", 1, ttl=1, rid="sweep-noscan")
    clock.advance(2)
    client = dynamo.client()
    calls: list[str] = []
    real_query = client.query

    def no_scan(**_: Any):
        raise AssertionError("the sweeper must not scan")

    def counting_query(**kwargs: Any):
        calls.append(kwargs.get("IndexName", "table"))
        return real_query(**kwargs)

    monkeypatch.setattr(client, "scan", no_scan)
    monkeypatch.setattr(client, "query", counting_query)
    assert sweeper.sweep().expired == 1
    assert set(calls) == {"pending-by-expiry"} and len(calls) == 8  # one page per shard


def test_sweeper_function_reports_what_it_did(api: Any, tokens: Any, live: str):
    api.mint("acct-sweep-fn", 1_000_000, token=live)
    reserve(api, tokens, "acct-sweep-fn", 10, ttl=1, rid="sweep-fn")
    clock.advance(2)
    out = load_handler("sweeper").lambda_handler({"source": "aws.scheduler"}, LambdaContext())
    assert out["expired"] == 1 and out["complete"] is True
