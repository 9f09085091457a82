"""Amounts typed by an operator: micro-unit integers, and dollars converted exactly (no floats)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_admin.money import AmountError, format_money, format_usd, parse_micro, parse_usd


@pytest.mark.parametrize(("text", "micro"), [
    ("0.1", 100_000),  # 0.1 is not exact as a float; it is exact here
    ("0.3", 300_000),
    ("5", 5_000_000),
    ("5.00", 5_000_000),
    ("5.", 5_000_000),
    (".5", 500_000),
    ("0.000001", 1),
    ("12.345678", 12_345_678),
    ("1000000", 1_000_000_000_000),
    ("9007199254740993.000001", 9_007_199_254_740_993_000_001),  # beyond a double's integers
    ("0.100000", 100_000),
])
def test_usd_is_converted_exactly(text: str, micro: int) -> None:
    assert parse_usd(text) == micro


@pytest.mark.parametrize("text", [
    "1e3", "1E3", "1e-3", "0.0000001", "1.1234567", "+1", "-1", " 1", "1 ", "1,000.00", "1_000", "$5",
    "nan", "inf", "Infinity", "", ".", "-", "0x10", "\u0661", "5\u00a0", "1.2.3",
])
def test_usd_refuses_anything_inexact_or_unusual(text: str) -> None:
    with pytest.raises(AmountError):
        parse_usd(text)


def test_usd_refuses_more_than_six_decimals_with_a_reason() -> None:
    with pytest.raises(AmountError, match="more than 6 decimal places"):
        parse_usd("0.0000001")


def test_zero_and_negative_usd_only_when_allowed() -> None:
    with pytest.raises(AmountError, match="greater than zero"):
        parse_usd("0.00")
    assert parse_usd("0", allow_zero=True) == 0
    assert parse_usd("-0.25", allow_negative=True) == -250_000


@given(st.integers(min_value=1, max_value=10**15))
def test_every_micro_amount_round_trips_through_usd_text(micro: int) -> None:
    text = f"{micro // 1_000_000}.{micro % 1_000_000:06d}"
    assert parse_usd(text) == micro
    assert parse_usd(format_usd(micro).lstrip("$").replace(",", "")) == micro


@pytest.mark.parametrize(("text", "micro"), [("5000000", 5_000_000), ("1", 1), ("007", 7)])
def test_micro_integers(text: str, micro: int) -> None:
    assert parse_micro(text) == micro


@pytest.mark.parametrize("text", ["1e3", "5.0", "+5", "1_000", " 5", "\u0663", "0x5", "", "five", "5e"])
def test_micro_refuses_non_digits(text: str) -> None:
    with pytest.raises(AmountError, match="digits"):
        parse_micro(text)


def test_micro_negative_and_zero() -> None:
    with pytest.raises(AmountError, match="must not be negative"):
        parse_micro("-1")
    with pytest.raises(AmountError, match="greater than zero"):
        parse_micro("0")
    assert parse_micro("0", allow_zero=True) == 0
    assert parse_micro("-250000", allow_negative=True, allow_zero=True) == -250_000
    with pytest.raises(AmountError):
        parse_micro("--5", allow_negative=True)


@pytest.mark.parametrize(("micro", "shown"), [
    (0, "$0.00"), (1, "$0.000001"), (5_000_000, "$5.00"), (5_500_000, "$5.50"), (-250_000, "-$0.25"),
    (1_234_567_890, "$1,234.56789"), (1_000_000_000_000, "$1,000,000.00"),
])
def test_usd_display_is_exact(micro: int, shown: str) -> None:
    assert format_usd(micro) == shown
    assert format_usd(str(micro)) == shown


def test_money_cells_show_micro_and_usd() -> None:
    assert format_money("5000000") == "5000000 ($5.00)"
    assert format_money(-1) == "-1 (-$0.000001)"
    assert format_money(None) == ""
    assert format_money("n/a") == "n/a"
