"""Draw-down order: earliest expiry first, then oldest; expired lots are never drawn."""

from billing_core.ledger.lots import new_lot, plan_draw


def lot(lot_id, available, expires=None, created="2026-01-01T00:00:00.000000Z"):
    return new_lot("acct", "general", available, settle=0, source_type="grant", description="test",
                   expires_at=expires, now_iso=created, lot_id=lot_id)


def ordered(*lots):
    return sorted(lots, key=lambda item: item.sk)  # what a DynamoDB Query returns


NOW = "2026-06-01T00:00:00.000000Z"


def test_sort_key_orders_by_expiry_then_age_then_non_expiring():
    never_old = lot("a", 10, None, "2025-01-01T00:00:00.000000Z")
    late = lot("b", 10, "2026-12-01T00:00:00.000000Z")
    soon = lot("c", 10, "2026-07-01T00:00:00.000000Z", "2026-02-01T00:00:00.000000Z")
    soon_older = lot("d", 10, "2026-07-01T00:00:00.000000Z", "2026-01-01T00:00:00.000000Z")
    assert [x.lot_id for x in ordered(never_old, late, soon, soon_older)] == ["d", "c", "b", "a"]


def test_takes_from_the_first_lots_and_stops_when_covered():
    lots = ordered(lot("a", 5, "2026-07-01T00:00:00.000000Z"), lot("b", 5, "2026-08-01T00:00:00.000000Z"),
                   lot("c", 5))
    plan = plan_draw(lots, 7, NOW)
    assert [(x.lot_id, take) for x, take in plan] == [("a", 5), ("b", 2)]


def test_expired_lots_are_skipped_and_shortfall_is_visible():
    lots = ordered(lot("expired", 100, "2026-05-01T00:00:00.000000Z"), lot("ok", 3))
    plan = plan_draw(lots, 10, NOW)
    assert [(x.lot_id, take) for x, take in plan] == [("ok", 3)]
