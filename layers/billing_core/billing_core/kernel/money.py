"""Money is an integer number of micro-units (1 USD = 1,000,000). Never a float.

JSON carries amounts as decimal strings. Input accepts a digit string or a JSON integer and
refuses floats, exponents, signs, booleans and anything above the ceiling.
"""

from __future__ import annotations

import re

from billing_core.kernel import settings

# Matched whole (fullmatch): "5\n" is not an amount ("$" alone would let a trailing newline through).
_DIGITS = re.compile(r"0|[1-9][0-9]{0,30}")
_SIGNED = re.compile(r"-?(?:0|[1-9][0-9]{0,30})")


def parse_micro(value: object, *, field: str = "amount", allow_zero: bool = False, signed: bool = False) -> int:
    """Parse a caller-supplied amount; raises ValueError with a caller-readable reason.
    signed=True (an operator's balance or delta) allows a leading '-' and zero; the ceiling then
    applies to the magnitude."""
    if isinstance(value, bool):
        raise ValueError(f"{field} must be a digit string or an integer, not a boolean")
    if isinstance(value, int):
        amount = value
    elif isinstance(value, str):
        if not (_SIGNED if signed else _DIGITS).fullmatch(value):
            raise ValueError(f"{field} must be a whole number of micro-units as digits, optionally negative" if signed
                             else f"{field} must be a non-negative whole number of micro-units as digits")
        amount = int(value)
    else:
        raise ValueError(f"{field} must be a digit string or an integer of micro-units")
    if amount < 0 and not signed:
        raise ValueError(f"{field} must not be negative")
    if amount == 0 and not (allow_zero or signed):
        raise ValueError(f"{field} must be greater than zero")
    ceiling = settings.get().ceiling_micro
    if abs(amount) > ceiling:
        raise ValueError(f"{field} exceeds the ceiling of {ceiling} micro-units")
    return amount


def parse_signed_micro(value: object, *, field: str = "amount") -> int:
    return parse_micro(value, field=field, signed=True)


def fmt(amount: int) -> str:
    """The wire form of an amount."""
    return str(int(amount))


def share(amount: int, basis_points: int) -> int:
    """Floor of amount * bps / 10,000, in integers."""
    return amount * basis_points // 10_000
