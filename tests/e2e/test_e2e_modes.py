"""Reserve -> finalize/release in each billing mode, as DESIGN.md and API.md describe them.

The mode is global to the stack: every test here sets the mode it depends on first."""

from __future__ import annotations

from tests.support.http import PRICING, Caller, assert_error, assert_status


def test_mode_switch_reports_previous_mode_and_pricing_follows(api: Caller) -> None:
    api.set_mode("soft")
    switched = api.set_mode("live")
    assert switched["previousMode"] == "soft", switched
    assert assert_status(api.request("GET", PRICING), 200)["billingMode"] == "live"
    api.set_mode("shadow")
    assert assert_status(api.request("GET", PRICING), 200)["billingMode"] == "shadow"


def test_shadow_mode_records_shadow_entries_and_never_touches_balances(api: Caller) -> None:
    api.set_mode("shadow")
    account = api.new_account(funded=1_000)
    before = api.balance(account)

    # Nothing is ever refused in shadow mode, not even a reservation far above the balance.
    over = api.reserve_ok(account, 5_000)
    assert over["billingMode"] == "shadow", over
    finalized = api.finalize_ok(over["reservationId"], 7_000)
    assert finalized["billingMode"] == "shadow", finalized
    small = api.reserve_ok(account, 500)
    released = assert_status(api.release(small["reservationId"]), 200)
    assert released["billingMode"] == "shadow", released

    assert api.balance(account) == before
    pool = api.pool(account)
    assert (pool["availableMicro"], pool["reservedMicro"], pool["consumedMicro"]) == (1_000, 0, 0), pool

    types = [e["entryType"] for e in api.all_entries(account)]
    assert types == ["shadow_release", "shadow_reserve", "shadow_finalize", "shadow_reserve", "deposit"], types


def test_shadow_mode_on_an_account_without_credit(api: Caller) -> None:
    api.set_mode("shadow")
    account = api.new_account()
    reservation = api.reserve_ok(account, 2_500)
    api.finalize_ok(reservation["reservationId"], 2_500)
    assert api.total_available(account) == 0
    types = {e["entryType"] for e in api.all_entries(account)}
    assert types == {"shadow_reserve", "shadow_finalize"}, types


def test_soft_mode_overrun_becomes_debt_settled_by_next_mint(api: Caller) -> None:
    api.set_mode("soft")
    account = api.new_account(funded=1_000)

    reservation = api.reserve_ok(account, 600)
    assert reservation["billingMode"] == "soft", reservation
    finalized = api.finalize_ok(reservation["reservationId"], 900)
    assert finalized["finalizedMicro"] == "900", finalized  # soft charges the actual cost
    assert finalized["overrunMicro"] == "300", finalized
    assert finalized["releasedMicro"] == "0", finalized
    assert api.total_available(account) == 100

    # Insufficient balance is allowed too: 500 more against 100 available.
    second = api.reserve_ok(account, 500)
    api.finalize_ok(second["reservationId"], 500)
    assert api.total_available(account) == -400
    assert api.pool(account)["availableMicro"] == -400

    # The next deposit settles the debt first.
    lot = api.mint(account, 1_000).json()
    assert lot["settledDebtMicro"] == "400", lot
    assert api.total_available(account) == 600
    pool = api.pool(account)
    assert pool["reservedMicro"] == 0, pool


def test_soft_mode_empty_account_goes_negative_then_mints_settle(api: Caller) -> None:
    api.set_mode("soft")
    account = api.new_account()
    reservation = api.reserve_ok(account, 700)
    api.finalize_ok(reservation["reservationId"], 700)
    assert api.total_available(account) == -700

    api.mint(account, 500)
    assert api.total_available(account) == -200
    api.mint(account, 500)
    assert api.total_available(account) == 300


def test_soft_mode_underfunded_reservation_shows_as_negative_availability(api: Caller) -> None:
    """Contract (DESIGN.md, soft): insufficient balance is allowed and recorded as a negative
    balance. While a 1500 reservation is pending against 1000 of credit, availability is -500."""
    api.set_mode("soft")
    account = api.new_account(funded=1_000)
    reservation = api.reserve_ok(account, 1_500)
    assert reservation["reservedMicro"] == "1500", reservation
    assert api.total_available(account) == -500, api.balance(account)

    # Releasing it gives everything back.
    assert_status(api.release(reservation["reservationId"]), 200)
    assert api.total_available(account) == 1_000


def test_soft_mode_underfunded_reservation_finalized_below_estimate(api: Caller) -> None:
    api.set_mode("soft")
    account = api.new_account(funded=1_000)
    reservation = api.reserve_ok(account, 1_500)
    finalized = api.finalize_ok(reservation["reservationId"], 1_200)
    assert (finalized["finalizedMicro"], finalized["releasedMicro"], finalized["overrunMicro"]) == \
        ("1200", "300", "0"), finalized
    assert api.total_available(account) == -200
    pool = api.pool(account)
    assert pool["reservedMicro"] == 0, pool


def test_live_mode_refuses_insufficient_credit_with_402(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=1_000)
    error = assert_error(api.reserve(account, 1_001), 402, "INSUFFICIENT_CREDIT")
    assert error["details"].get("availableMicro") == "1000", error
    assert error["details"].get("requestedMicro") == "1001", error
    assert api.total_available(account) == 1_000

    empty = api.new_account()
    assert_error(api.reserve(empty, 1), 402, "INSUFFICIENT_CREDIT")

    # Exactly the balance is fine.
    api.reserve_ok(account, 1_000)
    assert api.total_available(account) == 0


def test_live_mode_caps_overrun_at_the_reservation(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=1_000)
    reservation = api.reserve_ok(account, 600)
    assert reservation["billingMode"] == "live", reservation
    finalized = api.finalize_ok(reservation["reservationId"], 900)
    assert finalized["finalizedMicro"] == "600", finalized
    assert finalized["overrunMicro"] == "300", finalized
    assert finalized["releasedMicro"] == "0", finalized
    assert finalized["billingMode"] == "live", finalized
    pool = api.pool(account)
    assert (pool["availableMicro"], pool["reservedMicro"], pool["consumedMicro"]) == (400, 0, 600), pool


def test_live_mode_finalize_below_estimate_releases_the_rest(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=1_000)
    reservation = api.reserve_ok(account, 600)
    pool = api.pool(account)
    assert (pool["availableMicro"], pool["reservedMicro"]) == (400, 600), pool
    finalized = api.finalize_ok(reservation["reservationId"], 0)  # 0 is allowed
    assert (finalized["finalizedMicro"], finalized["releasedMicro"], finalized["overrunMicro"]) == \
        ("0", "600", "0"), finalized
    pool = api.pool(account)
    assert (pool["availableMicro"], pool["reservedMicro"], pool["consumedMicro"]) == (1_000, 0, 0), pool


def test_pools_are_separate(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=3_000)
    api.mint(account, 777, pool="promo", source="grant")
    reservation = api.reserve_ok(account, 100, pool="promo")
    api.finalize_ok(reservation["reservationId"], 100)
    assert_error(api.reserve(account, 678, pool="promo"), 402, "INSUFFICIENT_CREDIT")

    balance = api.balance(account)
    pools = {p["poolId"]: p for p in balance["pools"]}
    assert pools["general"]["availableMicro"] == "3000", balance
    assert pools["promo"]["availableMicro"] == "677", balance
    assert pools["promo"]["consumedMicro"] == "100", balance
    assert balance["totalAvailableMicro"] == "3677", balance

    only_promo = api.balance(account, poolId="promo")
    assert [p["poolId"] for p in only_promo["pools"]] == ["promo"], only_promo
