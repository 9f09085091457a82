"""Operator balance changes in-process: set and adjust (negative allowed, lifetime paid
unchanged, reason in the ledger, exactly-once), refunds, revenue-share configuration."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.tables import assert_lot_invariant


@pytest.fixture
def admin(tokens: Any) -> str:
    return tokens.admin()


def adjust(api: Any, admin: str, account: str, **body: Any):
    return api.call("adjust", body, token=admin, path={"accountId": account})


def available(api: Any, tokens: Any, account: str) -> int:
    return int(api.call("balance", token=tokens.user(account)).body["totalAvailableMicro"])


def test_set_balance_reports_previous_and_new(api: Any, tokens: Any, admin: str, aws: Any):
    api.mint("acct-adj", 5_000_000, token=admin)
    r = adjust(api, admin, "acct-adj", balanceMicro="1234", reason="support ticket 42")
    assert r.status == 200, r.body
    assert (r.body["previousBalanceMicro"], r.body["newBalanceMicro"], r.body["deltaMicro"]) == \
        ("5000000", "1234", "-4998766")
    assert available(api, tokens, "acct-adj") == 1234
    again = adjust(api, admin, "acct-adj", balanceMicro="777", reason="again")
    assert (again.body["previousBalanceMicro"], again.body["newBalanceMicro"]) == ("1234", "777")
    assert_lot_invariant(aws, "acct-adj")


def test_set_to_negative_then_back_up_settles_the_debt(api: Any, tokens: Any, admin: str, aws: Any):
    api.mint("acct-adj-neg", 1_000_000, token=admin)
    r = adjust(api, admin, "acct-adj-neg", balanceMicro="-100", reason="clawback")
    assert r.body["newBalanceMicro"] == "-100" and available(api, tokens, "acct-adj-neg") == -100
    up = adjust(api, admin, "acct-adj-neg", deltaMicro="600", reason="goodwill")
    assert (up.body["previousBalanceMicro"], up.body["newBalanceMicro"]) == ("-100", "500")
    assert available(api, tokens, "acct-adj-neg") == 500
    # A deposit after a negative balance pays the debt first (same rule as soft-mode debt).
    adjust(api, admin, "acct-adj-neg", balanceMicro="-300", reason="again")
    api.mint("acct-adj-neg", 1_000, token=admin)
    assert available(api, tokens, "acct-adj-neg") == 700
    assert_lot_invariant(aws, "acct-adj-neg")


def test_adjusting_an_empty_account_works(api: Any, tokens: Any, admin: str):
    r = adjust(api, admin, "acct-adj-new", balanceMicro="2500000", reason="migration")
    assert (r.body["previousBalanceMicro"], r.body["newBalanceMicro"]) == ("0", "2500000")
    assert available(api, tokens, "acct-adj-new") == 2_500_000


def test_reason_and_actor_are_in_the_ledger(api: Any, tokens: Any, admin: str):
    api.mint("acct-adj-led", 1_000_000, token=admin)
    adjust(api, admin, "acct-adj-led", deltaMicro="-250000", reason="duplicate deposit #881")
    entries = api.call("accounthistory", token=admin, path={"accountId": "acct-adj-led"},
                       query={"entryType": "adjustment"}).body["entries"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["description"] == "duplicate deposit #881" and entry["amountMicro"] == "250000"
    assert entry["actor"].startswith("admin:") and entry["metadata"]["direction"] == "debit"
    assert entry["metadata"]["previousBalanceMicro"] == "1000000" and entry["metadata"]["newBalanceMicro"] == "750000"


def test_adjust_never_touches_lifetime_paid(api: Any, tokens: Any, admin: str):
    adjust(api, admin, "acct-adj-paid", deltaMicro="9000000", reason="grant")
    adjust(api, admin, "acct-adj-paid", balanceMicro="-5", reason="zero out")
    body = api.call("accountbalance", token=admin, path={"accountId": "acct-adj-paid"}).body
    assert body["lifetimePaidMicro"] == "0" and body["totalAvailableMicro"] == "-5"


def test_adjust_is_idempotent_on_its_key(api: Any, tokens: Any, admin: str):
    api.mint("acct-adj-idem", 1_000_000, token=admin)
    first = adjust(api, admin, "acct-adj-idem", deltaMicro="-1000", reason="r", idempotencyKey="adj-1")
    second = adjust(api, admin, "acct-adj-idem", deltaMicro="-1000", reason="r", idempotencyKey="adj-1")
    assert first.body == second.body and available(api, tokens, "acct-adj-idem") == 999_000
    other = adjust(api, admin, "acct-adj-idem", deltaMicro="-2000", reason="r", idempotencyKey="adj-1")
    assert other.status == 409 and other.code == "IDEMPOTENCY_KEY_REUSED"
    assert available(api, tokens, "acct-adj-idem") == 999_000


def test_adjust_skips_expired_lots_and_keeps_reserved_credit(api: Any, tokens: Any, admin: str, aws: Any):
    api.set_mode("live", token=admin)
    api.mint("acct-adj-res", 1_000_000, token=admin)
    r = api.call("reserve", {"accountId": "acct-adj-res", "estimatedCostMicro": "400000"}, token=tokens.internal())
    assert r.status == 201
    done = adjust(api, admin, "acct-adj-res", balanceMicro="0", reason="freeze")
    assert done.body["previousBalanceMicro"] == "600000"
    pool = api.call("balance", token=tokens.user("acct-adj-res")).body["pools"][0]
    assert pool["availableMicro"] == "0" and pool["reservedMicro"] == "400000"
    fin = api.call("finalize", {"reservationId": r.body["reservationId"], "actualCostMicro": "100000"},
                   token=tokens.internal())
    assert fin.status == 200
    assert available(api, tokens, "acct-adj-res") == 300_000  # the released part is spendable again
    assert_lot_invariant(aws, "acct-adj-res")


@pytest.mark.parametrize("body", [
    {"reason": "neither"},
    {"balanceMicro": "1", "deltaMicro": "1", "reason": "both"},
    {"deltaMicro": "0", "reason": "zero"},
    {"deltaMicro": "1.5", "reason": "float"},
    {"deltaMicro": 1.5, "reason": "float"},
    {"deltaMicro": "1e3", "reason": "exp"},
    {"deltaMicro": "--1", "reason": "x"},
    {"deltaMicro": True, "reason": "bool"},
    {"deltaMicro": "-1000000000001", "reason": "ceiling"},
    {"deltaMicro": "5"},
    {"deltaMicro": "5", "reason": ""},
])
def test_bad_adjustments_are_refused_and_change_nothing(api: Any, tokens: Any, admin: str, body: dict):
    api.mint("acct-adj-bad", 1_000_000, token=admin)
    r = adjust(api, admin, "acct-adj-bad", **body)
    assert r.status in (400, 422), r.body
    assert available(api, tokens, "acct-adj-bad") == 1_000_000


def test_system_accounts_cannot_be_adjusted(api: Any, admin: str):
    r = adjust(api, admin, "sys-foundation", deltaMicro="5", reason="no")
    assert r.status == 422 and r.code == "SYSTEM_ACCOUNT"


def test_only_admins_adjust(api: Any, tokens: Any):
    assert adjust(api, tokens.user("acct-x"), "acct-x", deltaMicro="5", reason="me").status in (401, 403)
    assert adjust(api, tokens.internal(), "acct-x", deltaMicro="5", reason="svc").status in (401, 403)


def test_two_live_reserves_from_one_read_of_an_indebted_pool_cannot_both_commit(
        api: Any, tokens: Any, admin: str, aws: Any, monkeypatch: pytest.MonkeyPatch):
    """The lots hold 100 but the pool owes 50, so 50 is available. A second reserve that read the
    pool before the first committed must not draw the lots the debt is owed from."""
    import billing_core.store.lots as lot_store

    api.set_mode("live", token=admin)
    svc = tokens.internal()
    api.mint("acct-debt-race", 150, token=admin)
    held = api.call("reserve", {"accountId": "acct-debt-race", "estimatedCostMicro": "150"}, token=svc).body
    adjust(api, admin, "acct-debt-race", deltaMicro="-100", reason="clawback while held")
    api.call("release", {"reservationId": held["reservationId"]}, token=svc)
    assert available(api, tokens, "acct-debt-race") == 50
    stale = lot_store.read_pool("acct-debt-race", "general")
    first = api.call("reserve", {"accountId": "acct-debt-race", "estimatedCostMicro": "50"}, token=svc)
    assert first.status == 201, first.body

    reads = []
    real = lot_store.read_pool

    def read_before_the_first_committed(account_id: str, pool_id: str) -> Any:
        reads.append(pool_id)
        return stale if len(reads) == 1 else real(account_id, pool_id)

    monkeypatch.setattr(lot_store, "read_pool", read_before_the_first_committed)
    second = api.call("reserve", {"accountId": "acct-debt-race", "estimatedCostMicro": "50"}, token=svc)

    assert len(reads) >= 2, "the refused commit was not retried on a fresh read"
    assert (second.status, second.code) == (402, "INSUFFICIENT_CREDIT"), second.body
    assert available(api, tokens, "acct-debt-race") == 0
    assert_lot_invariant(aws, "acct-debt-race")


def test_refund_is_an_audited_debit(api: Any, tokens: Any, admin: str):
    api.mint("acct-refund", 2_000_000, token=admin)
    r = api.call("refund", {"amountMicro": "500000", "reason": "unhappy customer"}, token=admin,
                 path={"accountId": "acct-refund"})
    assert r.status == 200 and r.body["newBalanceMicro"] == "1500000"
    entries = api.call("accounthistory", token=admin, path={"accountId": "acct-refund"},
                       query={"entryType": "refund"}).body["entries"]
    assert [e["description"] for e in entries] == ["unhappy customer"]
    missing = api.call("refund", {"amountMicro": "1", "reason": "x", "orderId": "ord_nope"}, token=admin,
                       path={"accountId": "acct-refund"})
    assert missing.status == 404 and available(api, tokens, "acct-refund") == 1_500_000


def test_revenue_shares_apply_to_new_reservations(api: Any, tokens: Any, admin: str, aws: Any):
    from tests.support.tables import revenue_shares

    api.set_mode("live", token=admin)
    api.mint("acct-shares", 10_000_000, token=admin)
    svc = tokens.internal()
    old = api.call("reserve", {"accountId": "acct-shares", "estimatedCostMicro": "1000000"}, token=svc).body
    r = api.call("revenueshares", {"shares": {"sys-foundation": 2000, "sys-commons": 0}}, token=admin)
    assert r.status == 200 and r.body["previousRevenueShares"]["sys-foundation"] == 1000
    assert api.call("config", token=admin).body["revenueShares"] == {"sys-foundation": 2000, "sys-commons": 0}
    new = api.call("reserve", {"accountId": "acct-shares", "estimatedCostMicro": "1000000"}, token=svc).body
    for res in (old, new):
        api.call("finalize", {"reservationId": res["reservationId"], "actualCostMicro": "1000000"}, token=svc)

    def shares_of(rid: str) -> dict[str, int]:
        return revenue_shares(aws, rid)

    assert shares_of(old["reservationId"])["sys-foundation"] == 100_000  # priced when reserved
    assert shares_of(new["reservationId"]) == {"sys-foundation": 200_000}


@pytest.mark.parametrize("shares", [{"acct-me": 100}, {"sys-foundation": 10_001},
                                    {"sys-foundation": 6000, "sys-commons": 5000}, {"sys-commons": -1}])
def test_bad_revenue_shares_are_refused(api: Any, admin: str, shares: dict):
    r = api.call("revenueshares", {"shares": shares}, token=admin)
    assert r.status == 422, r.body
    assert api.call("config", token=admin).body["revenueShares"]["sys-foundation"] == 1000
