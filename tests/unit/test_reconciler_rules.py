"""The reconciler's pure rules: the lot invariant, what a pending or finalized reservation moves,
the balance identities fed by entries shaped exactly as the writers shape them, the cross-checks
of reservations against the ledger, pending holds from a ledger alone, and the wire rows."""

from __future__ import annotations

import pytest
from billing_core.api.models.reconciler import DriftRowResponse
from billing_core.reconciler import rules as r
from billing_core.reconciler.rules import AccountTotals, Check, OpenHolds, PoolTotals

CUTOFF = "2026-01-01T00:05:00.000000Z"
EARLY = "2026-01-01T00:00:00.000000Z"
LATE = "2026-01-01T00:10:00.000000Z"


def lot(original: int, available: int, reserved: int = 0, consumed: int = 0) -> dict:
    return {"lotId": "lot_1", "sk": "BAL#general#LOT#~#t#lot_1", "original": original, "available": available,
            "reserved": reserved, "consumed": consumed}


# -- the lot invariant ------------------------------------------------------------------------


def test_a_balanced_lot_has_no_problem():
    assert r.lot_problem(lot(10, 4, 3, 3)) is None
    assert r.lot_problem(lot(0, 0)) is None


def test_a_lot_whose_fields_do_not_add_up_says_by_how_much():
    assert r.lot_problem(lot(10, 5, 3, 3)) == "available + reserved + consumed = 11 != original 10 (off by 1)"
    assert "off by -2" in r.lot_problem(lot(10, 2, 3, 3))


def test_a_negative_field_is_a_problem_even_when_the_sum_holds():
    assert r.lot_problem(lot(10, 12, -2, 0)) == "reserved is negative"
    assert r.lot_problem(lot(-1, -1)) == "original is negative; available is negative"


@pytest.mark.parametrize("bad", [None, "5", True, 1.5])
def test_a_missing_or_non_integer_field_is_unreadable(bad):
    item = lot(10, 10)
    item["consumed"] = bad
    assert r.lot_problem(item) == "unreadable consumed"


# -- what reservations hold and move ----------------------------------------------------------


def test_pending_holds_by_mode():
    assert r.held("live", 100, 100) == (100, 0)
    assert r.held("soft", 100, 30) == (30, 70)
    assert r.held("shadow", 100, 0) == (0, 0)


@pytest.mark.parametrize(("mode", "backed", "charged", "expected"), [
    ("live", 100, 60, (60, 0)),  # under the estimate
    ("live", 100, 100, (100, 0)),  # an overrun is capped at the estimate before it gets here
    ("soft", 100, 60, (60, 0)),
    ("soft", 30, 100, (30, 70)),  # partly unbacked: the rest is debt
    ("soft", 100, 150, (100, 50)),  # overrun: debt
    ("soft", 0, 0, (0, 0)),
])
def test_finalize_split(mode, backed, charged, expected):
    assert r.finalize_split(mode, backed, charged) == expected


# -- balance identities, with entries shaped as the writers write them ------------------------


class Pool:
    """A hand-run pool: applies each operation to lot totals the way the writers do, and records
    the entry each writer records. The identities must hold after every step."""

    def __init__(self) -> None:
        self.t = PoolTotals()
        self.lots = {"original": 0, "available": 0, "reserved": 0, "consumed": 0}
        self.debt = self.unbacked = 0
        self.pending: dict[str, tuple[str, int, int]] = {}

    def entry(self, kind: str, amount: int, **meta) -> None:
        r.apply_entry(self.t, {"entryType": kind, "amountMicro": amount, "metadata": meta, "createdAt": EARLY},
                      CUTOFF)

    def mint(self, amount: int, kind: str = "deposit", **meta) -> None:  # lots.mint / credit adjustment
        settle = min(self.debt, amount)
        self.debt -= settle
        self.lots["original"] += amount
        self.lots["available"] += amount - settle
        self.lots["consumed"] += settle
        if kind == "deposit":
            self.entry("deposit", amount, settledDebtMicro=settle, sourceType="deposit", **meta)
        else:
            self.entry(kind, amount, direction="credit", settledDebtMicro=settle)

    def debit(self, amount: int, kind: str = "adjustment") -> None:  # adjustments.change_balance
        from_lots = min(self.lots["available"], amount)
        self.lots["available"] -= from_lots
        self.lots["consumed"] += from_lots
        self.debt += amount - from_lots
        self.entry(kind, amount, direction="debit" if amount else "none", fromLotsMicro=from_lots,
                   toDebtMicro=amount - from_lots)

    def reserve(self, rid: str, mode: str, estimate: int) -> None:
        backed = min(self.lots["available"], estimate)
        assert mode == "soft" or backed == estimate
        self.lots["available"] -= backed
        self.lots["reserved"] += backed
        self.unbacked += r.held(mode, estimate, backed)[1]
        self.pending[rid] = (mode, estimate, backed)
        self.entry("reserve", estimate, backedMicro=backed)

    def finalize(self, rid: str, actual: int) -> None:
        mode, estimate, backed = self.pending.pop(rid)
        charged = actual if mode == "soft" else min(actual, estimate)
        from_lots, debt = r.finalize_split(mode, backed, charged)
        self.lots["reserved"] -= backed
        self.lots["consumed"] += from_lots
        self.lots["available"] += backed - from_lots
        self.unbacked -= r.held(mode, estimate, backed)[1]
        self.debt += debt
        self.entry("finalize", charged, actualCostMicro=actual, debtMicro=debt)

    def release(self, rid: str, kind: str = "release") -> None:
        mode, estimate, backed = self.pending.pop(rid)
        self.lots["reserved"] -= backed
        self.lots["available"] += backed
        self.unbacked -= r.held(mode, estimate, backed)[1]
        self.entry(kind, estimate)

    def totals(self) -> PoolTotals:
        t = PoolTotals(**{f: getattr(self.t, f) for f in PoolTotals.__slots__})
        t.add_lot(self.lots)
        t.lots = 0
        t.add_shortfall({"debt": self.debt, "unbacked": self.unbacked})
        for mode, estimate, backed in self.pending.values():
            on_lots, unbacked = r.held(mode, estimate, backed)
            t.held_backed += on_lots
            t.held_unbacked += unbacked
        return t


def failing(t: PoolTotals) -> set[str]:
    return {c.what for c in r.balance_checks(t) if not c.ok}


def test_every_operation_keeps_the_identities_exact():
    pool = Pool()
    steps = [
        lambda: pool.mint(1_000),
        lambda: pool.reserve("a", "live", 600),
        lambda: pool.finalize("a", 900),  # live overrun: capped
        lambda: pool.reserve("b", "soft", 2_000),  # 400 backed, 1,600 unbacked
        lambda: pool.finalize("b", 2_500),  # 2,100 of debt
        lambda: pool.reserve("c", "soft", 50),  # fully unbacked
        lambda: pool.release("c", "expire"),
        lambda: pool.mint(1_000, provider="stripe"),  # settles 1,000 of the debt
        lambda: pool.mint(3_000, kind="adjustment"),  # settles the remaining 1,100
        lambda: pool.debit(5_000),  # 1,900 from lots, 3,100 to debt
        lambda: pool.debit(0),  # a balance set to what it was: direction none
        lambda: pool.mint(500, kind="refund"),  # a credit through change_balance is still a credit
        lambda: pool.debit(100, kind="refund"),
        lambda: pool.reserve("d", "soft", 10),  # left pending, unbacked
    ]
    for step in steps:
        step()
        assert failing(pool.totals()) == set()
    t = pool.totals()
    assert (t.debt, t.unbacked, t.reserved, t.available) == (2_700, 10, 0, 0)


@pytest.mark.parametrize(("field", "delta", "whats"), [
    ("original", 5, {"original"}),  # available unchanged: the lot itself would fail its invariant
    ("consumed", 1, {"consumed"}),  # available unchanged: the lot itself would fail its invariant
    ("reserved", -3, {"reserved"}),
    ("available", 7, {"balance"}),
    ("debt", 2, {"debt", "balance"}),
    ("unbacked", 4, {"unbacked", "balance"}),
    ("credits", -1, {"original", "balance"}),
    ("charged", 9, {"consumed", "balance"}),
    ("settled", 1, {"consumed", "debt"}),
    ("held_backed", 1, {"reserved", "balance"}),
    ("unreadable", 1, {"unreadableItems"}),
])
def test_each_identity_fails_on_its_own_drift(field, delta, whats):
    pool = Pool()
    pool.mint(1_000)
    pool.reserve("a", "soft", 1_500)
    t = pool.totals()
    setattr(t, field, getattr(t, field) + delta)
    assert failing(t) == whats


def test_unrecognized_or_inconsistent_entries_are_unreadable():
    t = PoolTotals()
    r.apply_entry(t, {"entryType": "bonus", "amountMicro": 5, "createdAt": EARLY}, CUTOFF)
    r.apply_entry(t, {"entryType": "adjustment", "amountMicro": 5, "metadata": {"direction": "debit",
                      "fromLotsMicro": 1, "toDebtMicro": 1}}, CUTOFF)
    r.apply_entry(t, {"entryType": "refund", "amountMicro": 5, "metadata": {}}, CUTOFF)
    r.apply_entry(t, {"entryType": "deposit", "amountMicro": "5"}, CUTOFF)
    assert t.unreadable == 4 and t.credits == 0


def test_shadow_entries_move_nothing():
    t = PoolTotals()
    for kind in ("shadow_reserve", "shadow_finalize", "shadow_release", "shadow_expire"):
        r.apply_entry(t, {"entryType": kind, "amountMicro": 100, "metadata": {"backedMicro": 0},
                          "createdAt": EARLY}, CUTOFF)
    assert t == PoolTotals()


def test_lifetime_totals_count_provider_deposits_and_refunds():
    a = AccountTotals(paid_item=5, refunded_item=3)
    r.apply_lifetime(a, {"entryType": "deposit", "amountMicro": 5, "metadata": {"provider": "stripe"}})
    r.apply_lifetime(a, {"entryType": "deposit", "amountMicro": 7, "metadata": {"sourceType": "admin_mint"}})
    r.apply_lifetime(a, {"entryType": "refund", "amountMicro": 3, "metadata": {"direction": "debit"}})
    r.apply_lifetime(a, {"entryType": "adjustment", "amountMicro": 11, "metadata": {"direction": "debit"}})
    assert all(c.ok for c in r.lifetime_checks(a))


# -- reservations against the ledger (settled window) -----------------------------------------


def reservation(status: str, mode: str = "soft", estimate: int = 100, backed: int = 40, **extra) -> dict:
    return {"status": status, "mode": mode, "estimateMicro": estimate, "backedMicro": backed, "createdAt": EARLY,
            **extra}


def test_reservations_and_their_entries_agree_inside_the_settled_window():
    t = PoolTotals()
    charged = r.apply_reservation(t, reservation("finalized", finalizedAt=EARLY,
                                                 finalizedMicro=150), CUTOFF)
    assert charged == 150
    r.apply_reservation(t, reservation("released", releasedAt=EARLY), CUTOFF)
    r.apply_reservation(t, reservation("expired", expiredAt=EARLY), CUTOFF)
    r.apply_reservation(t, reservation("pending"), CUTOFF)
    # after the window: counted as made, its finalize is not (nor is its entry)
    assert r.apply_reservation(t, reservation("finalized", finalizedAt=LATE,
                                              finalizedMicro=1), CUTOFF) is None
    assert r.apply_reservation(t, reservation("pending", mode="shadow"), CUTOFF) is None
    for kind, amount, meta, at in [
        ("reserve", 100, {"backedMicro": 40}, EARLY), ("finalize", 150, {"debtMicro": 110}, EARLY),
        ("reserve", 100, {"backedMicro": 40}, EARLY), ("release", 100, {}, EARLY),
        ("reserve", 100, {"backedMicro": 40}, EARLY), ("expire", 100, {}, EARLY),
        ("reserve", 100, {"backedMicro": 40}, EARLY),
        ("reserve", 100, {"backedMicro": 40}, EARLY), ("finalize", 1, {"debtMicro": 0}, LATE),
    ]:
        r.apply_entry(t, {"entryType": kind, "amountMicro": amount, "metadata": meta, "createdAt": at}, CUTOFF)
    assert [c for c in r.cross_checks(t) if not c.ok] == []
    assert (t.held_backed, t.held_unbacked) == (40, 60)
    assert (t.r_finalize_debt, t.r_reserve_count, t.r_release_count) == (110, 5, 2)


def test_a_missing_terminal_entry_is_named():
    t = PoolTotals()
    r.apply_reservation(t, reservation("released", releasedAt=EARLY), CUTOFF)
    r.apply_entry(t, {"entryType": "reserve", "amountMicro": 100, "metadata": {"backedMicro": 40},
                      "createdAt": EARLY}, CUTOFF)
    (bad,) = [c for c in r.cross_checks(t) if not c.ok]
    assert bad == Check("releaseEntries", 100, 0, 1, 0)


def test_a_reserve_entry_that_misstates_what_was_backed_is_named():
    t = PoolTotals()
    r.apply_reservation(t, reservation("pending"), CUTOFF)
    r.apply_entry(t, {"entryType": "reserve", "amountMicro": 100, "metadata": {"backedMicro": 45},
                      "createdAt": EARLY}, CUTOFF)
    assert [c for c in r.cross_checks(t) if not c.ok] == [Check("reserveBacked", 40, 45)]


# -- pending holds from the ledger alone (the re-read) ----------------------------------------


def test_open_holds_from_the_ledger():
    holds = OpenHolds()
    entries = [
        {"entryType": "reserve", "reservationId": "a", "poolId": "general", "amountMicro": 100,
         "metadata": {"backedMicro": 100}},
        {"entryType": "reserve", "reservationId": "b", "poolId": "general", "amountMicro": 50,
         "metadata": {"backedMicro": 20}},
        {"entryType": "finalize", "reservationId": "a", "poolId": "general", "amountMicro": 80},
        # same createdAt: '<id>:expire' sorts before '<id>:reserve'
        {"entryType": "expire", "reservationId": "c", "poolId": "general", "amountMicro": 7},
        {"entryType": "reserve", "reservationId": "c", "poolId": "general", "amountMicro": 7,
         "metadata": {"backedMicro": 7}},
        {"entryType": "reserve", "reservationId": "d", "poolId": "gpu", "amountMicro": 9,
         "metadata": {"backedMicro": 9}},
        {"entryType": "deposit", "poolId": "general", "amountMicro": 1000},
    ]
    for entry in entries:
        holds.add(entry)
    assert holds.per_pool() == {"general": (20, 30), "gpu": (9, 0)}


# -- the wire ---------------------------------------------------------------------------------


def test_failed_rows_are_strings_with_signed_difference():
    rows = r.failed_rows("acct-1", "general", [Check("original", 10, 15), Check("debt", 0, 0),
                                                Check("reserveEntries", 100, 40, 2, 1)], confirmed=True)
    assert [DriftRowResponse.of(row) for row in rows] == [
        {"accountId": "acct-1", "poolId": "general", "what": "original", "expectedMicro": "10",
         "actualMicro": "15", "differenceMicro": "5", "confirmed": True},
        {"accountId": "acct-1", "poolId": "general", "what": "reserveEntries", "expectedMicro": "100",
         "actualMicro": "40", "differenceMicro": "-60", "confirmed": True, "expectedCount": 2, "actualCount": 1},
    ]


@pytest.mark.parametrize(("drifted", "checked", "ratio", "pct"), [
    (0, 0, "0.000000", 0.0), (0, 7, "0.000000", 0.0), (1, 100, "0.010000", 1.0),
    (1, 3, "0.333333", 100 / 3), (2, 3, "0.666667", 200 / 3), (5, 5, "1.000000", 100.0),
])
def test_drift_ratio_and_percent(drifted, checked, ratio, pct):
    assert r.drift_ratio(drifted, checked) == ratio
    assert r.percent(drifted, checked) == pytest.approx(pct)
