"""Operator balance changes over HTTP: set or move a balance (negative allowed), exactly once per
idempotency key, with the reason in the ledger and lifetime paid untouched; refunds as audited
debits that count against a top-up so the provider's own refund later debits nothing twice; and
an adjustment raced against concurrent reserves that still adds up to the micro-unit.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.support.http import RESERVE, Caller, assert_error, assert_status, body_of, describe, unique
from tests.support.webhooks import (
    USD,
    admin_entries,
    admin_get,
    admin_path,
    charge_refunded,
    create_topup,
    get_topup,
    ipn,
    lifetime_paid,
    np_paid,
    post_ipn,
    stripe_header,
    stripe_ok,
    stripe_paid,
    stripe_secret,
    together,
)


def adjust(api: Caller, account: str, body: Any, *, token: str | None = None, admin: str | None = None
           ) -> requests.Response:
    return api.request("POST", admin_path(account, "adjust"), json_body=body,
                       token=token if token is not None else api.admin_token(admin or unique("ops-adj")))


def adjust_ok(api: Caller, account: str, body: Any, **kwargs: Any) -> dict[str, Any]:
    return assert_status(adjust(api, account, body, **kwargs), 200)


def refund(api: Caller, account: str, body: Any, *, admin: str | None = None) -> requests.Response:
    return api.request("POST", admin_path(account, "refund"), json_body=body,
                       token=api.admin_token(admin or unique("ops-refund")))


def figures(response: dict[str, Any]) -> tuple[int, int, int]:
    return (int(response["previousBalanceMicro"]), int(response["newBalanceMicro"]), int(response["deltaMicro"]))


def admin_balance(api: Caller, account: str) -> int:
    return int(admin_get(api, admin_path(account, "balance"))["totalAvailableMicro"])


# -- set and move ----------------------------------------------------------------------------------


def test_delta_credit_moves_the_balance_and_reports_both_sides(api: Caller) -> None:
    account = api.new_account(funded=1_000_000)
    body = adjust_ok(api, account, {"deltaMicro": "250000", "reason": "goodwill after outage INC-42"})
    assert figures(body) == (1_000_000, 1_250_000, 250_000), body
    assert body.get("entryId"), body
    assert api.total_available(account) == 1_250_000
    assert admin_balance(api, account) == 1_250_000


def test_delta_debit_moves_the_balance(api: Caller) -> None:
    account = api.new_account(funded=1_000_000)
    body = adjust_ok(api, account, {"deltaMicro": "-400000", "reason": "duplicate grant clawback"})
    assert figures(body) == (1_000_000, 600_000, -400_000), body
    assert api.total_available(account) == 600_000


def test_set_balance_replaces_it_and_reports_the_delta(api: Caller) -> None:
    account = api.new_account(funded=1_000_000)
    body = adjust_ok(api, account, {"balanceMicro": "300000", "reason": "migrated balance"})
    assert figures(body) == (1_000_000, 300_000, -700_000), body
    assert api.total_available(account) == 300_000
    body = adjust_ok(api, account, {"balanceMicro": "2500000", "reason": "migrated balance, corrected"})
    assert figures(body) == (300_000, 2_500_000, 2_200_000), body
    assert api.total_available(account) == 2_500_000


def test_set_balance_on_a_new_account(api: Caller) -> None:
    account = api.new_account()
    body = adjust_ok(api, account, {"balanceMicro": 777, "reason": "opening balance"})
    assert figures(body) == (0, 777, 777), body
    assert api.total_available(account) == 777


def test_negative_balances_are_allowed_and_the_next_deposit_settles_them(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=500_000)
    body = adjust_ok(api, account, {"balanceMicro": "-300000", "reason": "chargeback recovery"})
    assert figures(body) == (500_000, -300_000, -800_000), body
    assert api.total_available(account) == -300_000
    assert api.pool(account)["availableMicro"] == -300_000
    assert_error(api.reserve(account, 1), 402, "INSUFFICIENT_CREDIT")

    body = adjust_ok(api, account, {"deltaMicro": "-200000", "reason": "further recovery"})
    assert figures(body) == (-300_000, -500_000, -200_000), body
    assert api.total_available(account) == -500_000

    api.mint(account, 800_000)
    assert api.total_available(account) == 300_000
    body = adjust_ok(api, account, {"deltaMicro": "100000", "reason": "back to positive"})
    assert figures(body) == (300_000, 400_000, 100_000), body
    assert api.total_available(account) == 400_000
    api.reserve_ok(account, 400_000)
    assert api.total_available(account) == 0


def test_adjust_positive_on_a_debt_settles_it_first(api: Caller) -> None:
    account = api.new_account()
    adjust_ok(api, account, {"deltaMicro": "-1000", "reason": "debt"})
    body = adjust_ok(api, account, {"deltaMicro": "1500", "reason": "credit"})
    assert figures(body) == (-1_000, 500, 1_500), body
    assert api.total_available(account) == 500


def test_adjust_acts_on_the_named_pool_only(api: Caller) -> None:
    account = api.new_account(funded=1_000)
    api.mint(account, 2_000, pool="campaign-x")
    body = adjust_ok(api, account, {"deltaMicro": "-500", "reason": "pool fix", "poolId": "campaign-x"})
    assert figures(body) == (2_000, 1_500, -500), body
    assert api.pool(account, "campaign-x")["availableMicro"] == 1_500
    assert api.pool(account, "general")["availableMicro"] == 1_000


# -- the ledger and lifetime paid --------------------------------------------------------------


def test_reason_is_recorded_as_an_adjustment_entry(api: Caller) -> None:
    account = api.new_account(funded=1_000_000)
    reason = f"support ticket {unique('T')}: refund of failed run"
    body = adjust_ok(api, account, {"deltaMicro": "-123456", "reason": reason})
    entries = admin_entries(api, account, "adjustment")
    assert len(entries) == 1, entries
    entry = entries[0]
    assert entry["entryType"] == "adjustment", entry
    assert entry["description"] == reason, entry
    assert int(entry["amountMicro"]) in (123_456, -123_456), entry
    assert entry["entryId"] == body["entryId"], (entry, body)
    # Newest first in the full history too.
    assert admin_entries(api, account)[0]["entryId"] == body["entryId"]


def test_adjustments_do_not_change_lifetime_paid(api: Caller) -> None:
    account = api.new_account()
    np_paid(api, account, 5 * USD)
    assert lifetime_paid(api, account) == 5 * USD
    for change in ({"deltaMicro": "1000000"}, {"deltaMicro": "-3000000"}, {"balanceMicro": "-2000000"},
                   {"balanceMicro": "9000000"}):
        body = adjust_ok(api, account, {**change, "reason": "lifetime check"})
        assert int(body["lifetimePaidMicro"]) == 5 * USD, body
        assert lifetime_paid(api, account) == 5 * USD
    assert api.total_available(account) == 9 * USD


def test_lifetime_paid_counts_payments_not_adjustments_on_a_fresh_account(api: Caller) -> None:
    account = api.new_account()
    body = adjust_ok(api, account, {"balanceMicro": "50000000", "reason": "migrated"})
    assert int(body["lifetimePaidMicro"]) == 0, body
    assert lifetime_paid(api, account) == 0


# -- exactly once -------------------------------------------------------------------------------


def test_idempotency_key_replay_returns_the_same_response_and_changes_once(api: Caller) -> None:
    account = api.new_account(funded=1_000_000)
    key = unique("adj-key")
    request = {"deltaMicro": "-250000", "reason": "clawback", "idempotencyKey": key}
    first = adjust_ok(api, account, request, admin=api.admin)
    for _ in range(3):
        assert adjust_ok(api, account, request, admin=api.admin) == first
    assert api.total_available(account) == 750_000
    assert len(admin_entries(api, account, "adjustment")) == 1

    for other in ({**request, "deltaMicro": "-250001"}, {**request, "reason": "clawback 2"},
                  {"balanceMicro": "-250000", "reason": "clawback", "idempotencyKey": key}):
        assert_error(adjust(api, account, other, admin=api.admin), 409)
    assert api.total_available(account) == 750_000
    assert len(admin_entries(api, account, "adjustment")) == 1


def test_set_balance_replay_does_not_reapply_after_the_balance_moved(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=1_000_000)
    request = {"balanceMicro": "600000", "reason": "set", "idempotencyKey": unique("adj-key")}
    first = adjust_ok(api, account, request, admin=api.admin)
    api.reserve_ok(account, 100_000)
    assert adjust_ok(api, account, request, admin=api.admin) == first  # the original answer
    assert api.total_available(account) == 500_000  # not set to 600000 again


def test_same_key_on_another_account_is_not_a_replay_of_the_first(api: Caller) -> None:
    first_account = api.new_account(funded=1_000)
    second_account = api.new_account(funded=1_000)
    key = unique("adj-key")
    adjust_ok(api, first_account, {"deltaMicro": "500", "reason": "x", "idempotencyKey": key}, admin=api.admin)
    response = adjust(api, second_account, {"deltaMicro": "500", "reason": "x", "idempotencyKey": key},
                      admin=api.admin)
    if response.status_code == 200:
        body = response.json()
        assert body.get("accountId", second_account) == second_account, describe(response)
        assert api.total_available(second_account) == 1_500, describe(response)
    else:
        assert_error(response, 409)
        assert api.total_available(second_account) == 1_000
    assert api.total_available(first_account) == 1_500


def test_concurrent_adjusts_with_one_key_change_once(api: Caller) -> None:
    account = api.new_account(funded=2_000_000)
    request = {"deltaMicro": "-700000", "reason": "concurrent clawback", "idempotencyKey": unique("adj-key")}
    token = api.admin_token()
    path = admin_path(account, "adjust")

    def send(_: int) -> requests.Response:
        with requests.Session() as session:
            return session.post(api.url + path, json=request, headers={"Authorization": f"Bearer {token}"},
                                timeout=60)

    replies = together(6, send)
    ok = [r for r in replies if r.status_code == 200]
    assert ok, [describe(r) for r in replies]
    assert all(r.status_code in (200, 409, 503) for r in replies), [describe(r) for r in replies]
    assert all(r.json() == ok[0].json() for r in ok), [body_of(r) for r in ok]
    assert figures(ok[0].json()) == (2_000_000, 1_300_000, -700_000), ok[0].json()
    assert api.total_available(account) == 1_300_000
    assert len(admin_entries(api, account, "adjustment")) == 1


def test_without_a_key_each_adjust_applies(api: Caller) -> None:
    account = api.new_account()
    first = adjust_ok(api, account, {"deltaMicro": "100", "reason": "a"})
    second = adjust_ok(api, account, {"deltaMicro": "100", "reason": "a"})
    assert figures(first) == (0, 100, 100) and figures(second) == (100, 200, 100), (first, second)
    assert first["entryId"] != second["entryId"]
    assert api.total_available(account) == 200


def test_concurrent_adjusts_without_keys_chain_exactly(api: Caller) -> None:
    """Several operators move one balance at once: every change applies, and each reported
    (previous, new) pair is a real step of one sequence from the start to the end."""
    start = 1_000_000
    account = api.new_account(funded=start)
    deltas = [-300_000, 200_000, -50_000, -900_000, 70_000, 1]
    tokens = [api.admin_token(unique("ops-race")) for _ in deltas]
    path = admin_path(account, "adjust")

    def send(index: int) -> requests.Response:
        with requests.Session() as session:
            return session.post(api.url + path, json={"deltaMicro": str(deltas[index]), "reason": f"op {index}"},
                                headers={"Authorization": f"Bearer {tokens[index]}"}, timeout=60)

    replies = together(len(deltas), send)
    steps = [figures(assert_status(r, 200)) for r in replies]
    assert sorted(d for _, _, d in steps) == sorted(deltas), steps
    assert all(new == previous + delta for previous, new, delta in steps), steps
    chain, balance = [], start
    remaining = list(steps)
    while remaining:
        step = next((s for s in remaining if s[0] == balance), None)
        assert step is not None, ("no change starts from", balance, steps)
        chain.append(step)
        remaining.remove(step)
        balance = step[1]
    end = start + sum(deltas)
    assert balance == end, steps
    assert api.total_available(account) == end
    assert len(admin_entries(api, account, "adjustment")) == len(deltas)


def test_concurrent_set_balances_end_at_one_of_the_targets(api: Caller) -> None:
    """Operators set one balance at once (all above the current one): the balance ends at one of
    the targets, never at some sum of their changes (repeated on a few accounts)."""
    targets = [2_000_000, 3_000_000, 5_000_000]
    tokens = [api.admin_token(unique("ops-set")) for _ in targets]
    wrong = []
    for _ in range(4):
        account = api.new_account(funded=1_000_000)
        path = admin_path(account, "adjust")

        def send(index: int, path: str = path) -> requests.Response:
            with requests.Session() as session:
                return session.post(api.url + path, timeout=60,
                                    json={"balanceMicro": str(targets[index]), "reason": f"set {index}"},
                                    headers={"Authorization": f"Bearer {tokens[index]}"})

        steps = [figures(assert_status(r, 200)) for r in together(len(targets), send)]
        final = api.total_available(account)
        if final not in targets:
            wrong.append({"final": final, "steps (previous, new, delta)": steps})
    assert not wrong, json.dumps(wrong)


# -- invalid input and auth ----------------------------------------------------------------------


INVALID_ADJUSTS: list[tuple[str, Any]] = [
    ("both", {"balanceMicro": "100", "deltaMicro": "100", "reason": "r"}),
    ("neither", {"reason": "r"}),
    ("both null", {"balanceMicro": None, "deltaMicro": None, "reason": "r"}),
    ("float delta", {"deltaMicro": 1.5, "reason": "r"}),
    ("float-valued delta", {"deltaMicro": 100.0, "reason": "r"}),
    ("decimal string", {"deltaMicro": "100.5", "reason": "r"}),
    ("exponent string", {"deltaMicro": "1e3", "reason": "r"}),
    ("exponent balance", {"balanceMicro": "1E3", "reason": "r"}),
    ("boolean", {"deltaMicro": True, "reason": "r"}),
    ("words", {"deltaMicro": "ten", "reason": "r"}),
    ("empty string", {"deltaMicro": "", "reason": "r"}),
    ("double minus", {"deltaMicro": "--5", "reason": "r"}),
    ("spaces", {"deltaMicro": " 5", "reason": "r"}),
    ("above the ceiling", {"deltaMicro": "1000000000001", "reason": "r"}),
    ("below minus the ceiling", {"balanceMicro": "-1000000000001", "reason": "r"}),
    ("missing reason", {"deltaMicro": "100"}),
    ("empty reason", {"deltaMicro": "100", "reason": ""}),
    ("null reason", {"deltaMicro": "100", "reason": None}),
    ("reason not a string", {"deltaMicro": "100", "reason": 42}),
    ("array body", [{"deltaMicro": "100", "reason": "r"}]),
]


def test_invalid_adjust_is_4xx_and_changes_nothing(api: Caller) -> None:
    account = api.new_account(funded=1_000)
    wrong = []
    for label, body in INVALID_ADJUSTS:
        response = adjust(api, account, body)
        if response.status_code not in (400, 422):
            wrong.append((label, describe(response)))
            continue
        assert_error(response, (400, 422))
    assert not wrong, wrong
    assert api.total_available(account) == 1_000
    assert admin_entries(api, account, "adjustment") == []


def test_adjust_refuses_users_internal_services_and_bad_tokens(api: Caller) -> None:
    account = api.new_account(funded=1_000)
    body = {"deltaMicro": "1000000", "reason": "self-service credit"}
    assert_error(adjust(api, account, body, token=api.user_token(account)), (401, 403))
    assert_error(adjust(api, account, body, token=api.internal_token()), (401, 403))
    assert_error(api.request("POST", admin_path(account, "adjust"), json_body=body), 401)
    forged = api.signed("a-secret-that-is-not-the-admin-secret-0000", api.admin_claims())
    assert_error(adjust(api, account, body, token=forged), 401)
    wrong_aud = api.signed("BILLING_ADMIN_JWT_SECRET", api.admin_claims(aud="arrakis-internal"))
    assert_error(adjust(api, account, body, token=wrong_aud), (401, 403))
    assert api.total_available(account) == 1_000
    assert admin_entries(api, account, "adjustment") == []


def test_system_accounts_are_not_adjustable_by_accident(api: Caller) -> None:
    before = admin_balance(api, "sys-foundation")
    response = adjust(api, "sys-foundation", {"deltaMicro": "1000", "reason": "oops"})
    if response.status_code == 200:
        # If allowed, it must at least be exact.
        assert admin_balance(api, "sys-foundation") == before + 1_000, describe(response)
    else:
        assert_error(response, (403, 422))
        assert admin_balance(api, "sys-foundation") == before


# -- racing reserves --------------------------------------------------------------------------


def test_delta_adjust_racing_concurrent_reserves_adds_up(api: Caller) -> None:
    api.set_mode("live")
    start, estimate, count, delta = 10_000_000, 100_000, 16, -3_000_000
    account = api.new_account(funded=start)
    internal = api.internal_token()
    admin = api.admin_token()

    def send(index: int) -> requests.Response:
        with requests.Session() as session:
            if index == count:
                return session.post(api.url + admin_path(account, "adjust"),
                                    json={"deltaMicro": str(delta), "reason": "race"},
                                    headers={"Authorization": f"Bearer {admin}"}, timeout=60)
            return session.post(api.url + RESERVE, json={"accountId": account, "estimatedCostMicro": str(estimate)},
                                headers={"Authorization": f"Bearer {internal}"}, timeout=60)

    replies = together(count + 1, send)
    adjusted = assert_status(replies[count], 200)
    reserves = replies[:count]
    assert all(r.status_code == 201 for r in reserves), [describe(r) for r in reserves]

    previous, new, moved = figures(adjusted)
    assert moved == delta and new == previous + delta, adjusted
    before_it = (start - previous) / estimate
    assert before_it == int(before_it) and 0 <= before_it <= count, adjusted  # a balance that really existed

    pool = api.pool(account)
    assert pool["availableMicro"] == start + delta - count * estimate, pool
    assert pool["reservedMicro"] == count * estimate, pool
    assert api.total_available(account) == start + delta - count * estimate


def test_set_balance_racing_concurrent_reserves_adds_up(api: Caller) -> None:
    api.set_mode("live")
    start, estimate, count, target = 5_000_000, 100_000, 16, 1_000_000
    account = api.new_account(funded=start)
    internal = api.internal_token()
    admin = api.admin_token()

    def send(index: int) -> requests.Response:
        with requests.Session() as session:
            if index == count:
                return session.post(api.url + admin_path(account, "adjust"),
                                    json={"balanceMicro": str(target), "reason": "race set"},
                                    headers={"Authorization": f"Bearer {admin}"}, timeout=60)
            return session.post(api.url + RESERVE, json={"accountId": account, "estimatedCostMicro": str(estimate)},
                                headers={"Authorization": f"Bearer {internal}"}, timeout=60)

    replies = together(count + 1, send)
    adjusted = assert_status(replies[count], 200)
    previous, new, moved = figures(adjusted)
    assert new == target and moved == target - previous, adjusted
    before_set = (start - previous) / estimate
    assert before_set == int(before_set) and 0 <= before_set <= count, adjusted

    succeeded = sum(1 for r in replies[:count] if r.status_code == 201)
    for reply in replies[:count]:
        if reply.status_code != 201:
            assert_error(reply, 402, "INSUFFICIENT_CREDIT")
    after_set = succeeded - int(before_set)
    pool = api.pool(account)
    assert pool["availableMicro"] == target - after_set * estimate, (pool, adjusted, succeeded)
    assert pool["reservedMicro"] == succeeded * estimate, (pool, succeeded)
    assert pool["availableMicro"] >= 0, pool


# -- refunds by an operator -----------------------------------------------------------------------


def test_operator_refund_is_an_audited_debit(api: Caller) -> None:
    account = api.new_account(funded=2_000_000)
    reason = f"refund {unique('case')}"
    body = assert_status(refund(api, account, {"amountMicro": "500000", "reason": reason}), 200)
    assert api.total_available(account) == 1_500_000, body
    entries = admin_entries(api, account, "refund")
    assert len(entries) == 1 and entries[0]["description"] == reason, entries
    assert int(entries[0]["amountMicro"]) in (500_000, -500_000), entries
    # More than the balance: allowed, negative.
    assert_status(refund(api, account, {"amountMicro": "2000000", "reason": "full refund"}), 200)
    assert api.total_available(account) == -500_000


def test_operator_refund_validation(api: Caller) -> None:
    account = api.new_account(funded=1_000)
    for body in ({"amountMicro": "0", "reason": "r"}, {"amountMicro": "-5", "reason": "r"},
                 {"amountMicro": 1.5, "reason": "r"}, {"amountMicro": "100"}, {"reason": "r"}):
        assert_error(refund(api, account, body), (400, 422))
    assert_error(api.request("POST", admin_path(account, "refund"), json_body={"amountMicro": "1", "reason": "r"},
                             token=api.user_token(account)), (401, 403))
    assert api.total_available(account) == 1_000


def test_operator_refund_against_an_order_then_stripes_refund_debits_nothing_more(api: Caller) -> None:
    account = api.new_account()
    amount = 10 * USD
    order_id, payment_intent = stripe_paid(api, account, amount)
    assert_status(refund(api, account, {"amountMicro": str(amount), "reason": "customer asked", "orderId": order_id}),
                  200)
    assert api.total_available(account) == 0
    assert int(get_topup(api, account, order_id)["refundedMicro"]) == amount

    # Stripe's own charge.refunded for the same amount arrives later (twice): nothing more.
    event = charge_refunded(order_id, 1_000, 1_000, payment_intent)
    stripe_ok(api, event)
    stripe_ok(api, event)
    assert api.total_available(account) == 0
    record = get_topup(api, account, order_id)
    assert int(record["refundedMicro"]) == amount and int(record["creditedMicro"]) == amount, record
    assert len(admin_entries(api, account, "refund")) == 1


def test_partial_operator_refund_then_full_stripe_refund_debits_the_rest(api: Caller) -> None:
    account = api.new_account()
    amount = 10 * USD
    order_id, payment_intent = stripe_paid(api, account, amount)
    assert_status(refund(api, account, {"amountMicro": str(4 * USD), "reason": "partial", "orderId": order_id}), 200)
    assert api.total_available(account) == 6 * USD
    stripe_ok(api, charge_refunded(order_id, 1_000, 400, payment_intent))  # the same 4 USD, seen by Stripe
    assert api.total_available(account) == 6 * USD
    stripe_ok(api, charge_refunded(order_id, 1_000, 1_000, payment_intent))  # then the rest
    assert api.total_available(account) == 0
    assert int(get_topup(api, account, order_id)["refundedMicro"]) == amount


def test_operator_refund_cannot_exceed_what_the_order_credited(api: Caller) -> None:
    account = api.new_account()
    order_id, _ = np_paid(api, account, 3 * USD)
    response = refund(api, account, {"amountMicro": str(3 * USD + 1), "reason": "too much", "orderId": order_id})
    assert_error(response, (400, 409, 422))
    assert api.total_available(account) == 3 * USD
    assert int(get_topup(api, account, order_id)["refundedMicro"]) == 0
    # Nor against an order of another account.
    other = api.new_account(funded=5 * USD)
    assert_error(refund(api, other, {"amountMicro": "1000000", "reason": "wrong account", "orderId": order_id}),
                 (404, 409, 422))
    assert api.total_available(other) == 5 * USD


def test_nowpayments_refunded_after_operator_refund_debits_nothing_more(api: Caller) -> None:
    account = api.new_account()
    order_id, finished = np_paid(api, account, 4 * USD)
    assert_status(refund(api, account, {"amountMicro": str(4 * USD), "reason": "refunded", "orderId": order_id}),
                  200)
    response = post_ipn(api, {**finished, "payment_status": "refunded"})
    assert response.status_code in (200, 202), describe(response)
    assert api.total_available(account) == 0
    assert len(admin_entries(api, account, "refund")) == 1


def test_pending_topup_cannot_be_refunded_against(api: Caller) -> None:
    account = api.new_account(funded=5 * USD)
    order_id = create_topup(api, account, 2 * USD, "nowpayments")["orderId"]
    response = refund(api, account, {"amountMicro": str(2 * USD), "reason": "never paid", "orderId": order_id})
    assert_error(response, (400, 409, 422))
    assert api.total_available(account) == 5 * USD
    # And the order, paid later, is still credited in full.
    assert_status(post_ipn(api, ipn(order_id, "finished", 2)), 200)
    assert api.total_available(account) == 7 * USD


def test_operator_refund_racing_the_providers_refund_debits_once(api: Caller) -> None:
    """An operator records the refund while Stripe's charge.refunded for it arrives: one debit."""
    account = api.new_account()
    order_id, payment_intent = stripe_paid(api, account, 5 * USD)
    raw = json.dumps(charge_refunded(order_id, 500, 500, payment_intent))
    header = stripe_header(raw, stripe_secret(api))
    token = api.admin_token()

    def send(index: int) -> requests.Response:
        with requests.Session() as session:
            if index == 0:
                return session.post(api.url + admin_path(account, "refund"), timeout=60,
                                    json={"amountMicro": str(5 * USD), "reason": "race", "orderId": order_id},
                                    headers={"Authorization": f"Bearer {token}"})
            return session.post(api.url + "/api/billing/webhooks/stripe", data=raw, timeout=60,
                                headers={"Content-Type": "application/json", "Stripe-Signature": header})

    operator, provider = together(2, send)
    assert operator.status_code in (200, 409), describe(operator)
    assert provider.status_code in (200, 202), describe(provider)
    assert api.total_available(account) == 0, (describe(operator), describe(provider))
    record = get_topup(api, account, order_id)
    assert int(record["refundedMicro"]) == 5 * USD, record
