"""Amounts on the command line and on screen. Never a float.

The API counts integer micro-units (1 USD = 1,000,000) and carries them as decimal strings.
An operator types either micro-units ("5000000") or, with the --usd options, dollars ("5.00"),
which are converted with decimal.Decimal, exactly: more than 6 decimal places is refused rather
than rounded, and exponents ("1e3"), signs where none belong, spaces, "_" and non-ASCII digits
are refused too.
"""

from __future__ import annotations

import re
from decimal import Decimal

MICRO_PER_USD = 1_000_000
USD_DECIMALS = 6

_UNSIGNED = re.compile(r"[0-9]+", re.ASCII)
_SIGNED = re.compile(r"-?[0-9]+", re.ASCII)
_USD = re.compile(r"(-?)([0-9]*)(?:\.([0-9]*))?", re.ASCII)


class AmountError(ValueError):
    """An amount the operator typed that is not an exact, allowed number of micro-units."""


def _check_sign(amount: int, *, allow_zero: bool, allow_negative: bool, what: str) -> int:
    if amount < 0 and not allow_negative:
        raise AmountError(f"{what} must not be negative")
    if amount == 0 and not allow_zero:
        raise AmountError(f"{what} must be greater than zero")
    return amount


def parse_micro(text: str, *, allow_zero: bool = False, allow_negative: bool = False,
                what: str = "amount") -> int:
    """A whole number of micro-units as ASCII digits ("5000000"; "-250" when negatives are allowed)."""
    pattern = _SIGNED if allow_negative else _UNSIGNED
    if isinstance(text, str) and not allow_negative and text.startswith("-") and _SIGNED.fullmatch(text):
        raise AmountError(f"{what} must not be negative, got {text!r}")
    if not isinstance(text, str) or not pattern.fullmatch(text):
        sign = "optionally negative " if allow_negative else ""
        raise AmountError(f"{what} must be a {sign}whole number of micro-units written as digits "
                          f"(1 USD = 1000000), got {text!r}")
    return _check_sign(int(text), allow_zero=allow_zero, allow_negative=allow_negative, what=what)


def parse_usd(text: str, *, allow_zero: bool = False, allow_negative: bool = False, what: str = "amount") -> int:
    """Dollars as a plain decimal ("5", "5.00", "0.000001") converted exactly to micro-units."""
    match = _USD.fullmatch(text) if isinstance(text, str) else None
    if match is None or not (match.group(2) or match.group(3)):
        raise AmountError(f"{what} in USD must be a plain decimal number such as 5.00, got {text!r}")
    sign, whole, fraction = match.group(1), match.group(2) or "0", match.group(3) or ""
    if sign and not allow_negative:
        raise AmountError(f"{what} must not be negative")
    if len(fraction) > USD_DECIMALS:
        raise AmountError(f"{what} in USD has more than {USD_DECIMALS} decimal places (1 micro-unit is "
                          f"0.000001 USD), got {text!r}")
    value = Decimal(f"{sign}{whole}.{fraction or '0'}")
    micro = value.scaleb(USD_DECIMALS)
    if micro != micro.to_integral_value():  # cannot happen after the length check; kept as a guard
        raise AmountError(f"{what} in USD is not a whole number of micro-units")
    return _check_sign(int(micro), allow_zero=allow_zero, allow_negative=allow_negative, what=what)


def to_usd(micro: int | str) -> Decimal:
    """Micro-units as an exact Decimal number of dollars."""
    return Decimal(int(micro)).scaleb(-USD_DECIMALS)


def format_usd(micro: int | str) -> str:
    """Exact dollars for display: "$1,234.50", "$0.000001", "-$2.00" (at least 2 decimals, never rounded)."""
    amount = int(micro)
    whole, fraction = divmod(abs(amount), MICRO_PER_USD)
    digits = f"{fraction:06d}".rstrip("0")
    digits = digits.ljust(2, "0")
    return f"{'-' if amount < 0 else ''}${whole:,}.{digits}"


def format_money(value: object) -> str:
    """A wire amount (decimal string or int) as "5000000 ($5.00)"; anything else unchanged."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int) or (isinstance(value, str) and _SIGNED.fullmatch(value)):
        return f"{int(value)} ({format_usd(int(value))})"
    return str(value)
