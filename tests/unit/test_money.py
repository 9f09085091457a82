"""Amount parsing: the only door through which a caller's number becomes money."""

import pytest
from billing_core.kernel import money


@pytest.mark.parametrize("value, expected", [
    ("1", 1), (1, 1), ("1000000000000", 1_000_000_000_000), (999, 999), ("0", 0), (0, 0),
])
def test_accepts_digit_strings_and_integers(value, expected):
    assert money.parse_micro(value, allow_zero=True) == expected


@pytest.mark.parametrize("value", [
    1.0, 1.5, "1.5", "1e3", "1E3", "-1", -1, "+1", " 1", "1 ", "0x10", "", "١٢", True, False, None,
    [], {}, "01", "1_000", "1000000000001", 1_000_000_000_001, 10**40,
])
def test_refuses_everything_else(value):
    with pytest.raises(ValueError):
        money.parse_micro(value, allow_zero=True)


def test_zero_needs_explicit_permission():
    with pytest.raises(ValueError, match="greater than zero"):
        money.parse_micro("0")


def test_ceiling_follows_the_environment(monkeypatch):
    monkeypatch.setenv("BILLING_CEILING_MICRO", "500")
    assert money.parse_micro("500") == 500
    with pytest.raises(ValueError, match="ceiling"):
        money.parse_micro("501")


def test_share_floors_in_integers():
    assert money.share(999, 1000) == 99
    assert money.share(10**12, 250) == 25_000_000_000
    assert money.fmt(5) == "5"
