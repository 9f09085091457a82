"""What every route's models share: the annotated types for amounts, identifiers and times, and
the two bases (a request validates camelCase fields; a response reads a core result's
snake_case attributes and writes camelCase, amounts as decimal strings).

Validation here is about shape; money and identifier rules come from kernel.money and
kernel.ids, so the core and the edge apply the same rules everywhere.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    StrictStr,
    WithJsonSchema,
    model_serializer,
)
from pydantic.alias_generators import to_camel

from billing_core.kernel import clock, ids, money, settings


def _up_to(n: int, min_digits: int = 1) -> str:
    """A regex (no anchors) for the decimal numbers with at least `min_digits` digits, at most
    n, written without leading zeros: the same strings money.parse_micro reads."""
    text, k = str(n), len(str(n))
    parts = [f"[1-9][0-9]{{{min_digits - 1},{k - 2}}}"] if k > min_digits else []
    for i, digit in enumerate(int(c) for c in text):
        low = 1 if i == 0 else 0
        if digit > low:
            below = f"[{low}-{digit - 1}]" if digit - 1 > low else str(low)
            parts.append(text[:i] + below + (f"[0-9]{{{k - i - 1}}}" if k - i - 1 else ""))
    parts.append(text)
    return "(?:" + "|".join(parts) + ")"


# The document describes the default ceiling (BILLING_CEILING_MICRO, a deployment parameter).
CEILING = settings.DEFAULT_CEILING_MICRO
_AMOUNT = (f"Whole micro-units (1 USD = 1,000,000) as a digit string or a JSON integer, at most {CEILING:,}: "
           "no floats, exponents, signs or leading zeros.")
_MONEY_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": f"^{_up_to(CEILING)}$"},
              {"type": "integer", "minimum": 1, "maximum": CEILING}],
    "description": _AMOUNT + " Greater than zero.",
}
_MONEY_OR_ZERO_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": f"^(?:0|{_up_to(CEILING)})$"},
              {"type": "integer", "minimum": 0, "maximum": CEILING}],
    "description": _AMOUNT,
}
_SIGNED_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": f"^-?(?:0|{_up_to(CEILING)})$"},
              {"type": "integer", "minimum": -CEILING, "maximum": CEILING}],
    "description": "Whole micro-units, negative allowed, as a digit string or a JSON integer; magnitude at most "
                   f"{CEILING:,}.",
}
_NONZERO_SIGNED_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": f"^-?{_up_to(CEILING)}$"},
              {"type": "integer", "minimum": -CEILING, "maximum": CEILING, "not": {"const": 0}}],
    "description": "Whole micro-units, negative allowed, never zero, as a digit string or a JSON integer; "
                   f"magnitude at most {CEILING:,}.",
}
CENT_STEP = 10_000  # micro-units in a US cent
_TOPUP_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": f"^{_up_to(CEILING // CENT_STEP, 3)}0000$"},
              {"type": "integer", "minimum": 100 * CENT_STEP, "maximum": CEILING, "multipleOf": CENT_STEP}],
    "description": "Whole US cents in micro-units (a multiple of 10,000), at least 1 USD (1,000,000), at most "
                   f"{CEILING:,}; a digit string or a JSON integer.",
}
_MICRO_OUT_SCHEMA = {"type": "string", "pattern": "^-?[0-9]+$",
                     "description": "Whole micro-units (1 USD = 1,000,000) as a decimal string."}


def _positive_micro(value: object) -> int:
    return money.parse_micro(value)


def _signed_micro(value: object) -> int:
    return money.parse_signed_micro(value)


def _micro_or_zero(value: object) -> int:
    return money.parse_micro(value, allow_zero=True)


# Amounts a caller sends.
PositiveMicro = Annotated[int, BeforeValidator(_positive_micro), WithJsonSchema(_MONEY_SCHEMA)]
SignedMicro = Annotated[int, BeforeValidator(_signed_micro), WithJsonSchema(_SIGNED_SCHEMA)]
MicroOrZero = Annotated[int, BeforeValidator(_micro_or_zero), WithJsonSchema(_MONEY_OR_ZERO_SCHEMA)]
# Validated as their parent type; the core refuses the rest with its own code (INVALID_ADJUSTMENT,
# INVALID_TOPUP_AMOUNT), and the document says so.
NonZeroSignedMicro = Annotated[int, BeforeValidator(_signed_micro), WithJsonSchema(_NONZERO_SIGNED_SCHEMA)]
TopupMicro = Annotated[int, BeforeValidator(_positive_micro), WithJsonSchema(_TOPUP_SCHEMA)]
# Amounts the API answers: an exact integer, written as a decimal string.
Micro = Annotated[int, PlainSerializer(money.fmt, return_type=str), WithJsonSchema(_MICRO_OUT_SCHEMA)]

Identifier = Annotated[StrictStr, Field(pattern=ids.ID_PATTERN, min_length=1, max_length=ids.ID_MAX)]
# An account a caller credits or spends from: validated as an Identifier (the core refuses a
# system account with 422 SYSTEM_ACCOUNT), documented without the system accounts.
AccountId = Annotated[StrictStr, Field(pattern=ids.ID_PATTERN, min_length=1, max_length=ids.ID_MAX),
                      WithJsonSchema({"type": "string", "pattern": ids.ACCOUNT_PATTERN, "minLength": 1,
                                      "maxLength": ids.ID_MAX,
                                      "description": "An account id; never a system account (sys-*)."})]
PoolId = Annotated[StrictStr, Field(pattern=ids.POOL_PATTERN, min_length=1, max_length=ids.POOL_MAX)]
Reason = Annotated[StrictStr, Field(min_length=1, max_length=500)]
IdempotencyKey = Annotated[StrictStr, Field(min_length=1, max_length=128)]


def _iso_timestamp(value: str) -> str:
    try:
        return clock.iso(clock.parse_iso(value))
    except (ValueError, OverflowError, OSError):
        raise ValueError("must be an ISO-8601 timestamp with a timezone") from None


Timestamp = Annotated[StrictStr, Field(max_length=40, json_schema_extra={"format": "date-time"}),
                      AfterValidator(_iso_timestamp)]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ResponseModel(BaseModel):
    """Built from a core result (a dataclass, read by attribute name) and written in camelCase.
    Fields named in `omitted_when_unset` (wire names) are left out when None or empty."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=False,
                              serialize_by_alias=True, from_attributes=True, frozen=True)
    omitted_when_unset: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]  # unannotated: the JSON schema stays the model's
        out: dict[str, Any] = handler(self)
        for name in self.omitted_when_unset:
            if out.get(name) in (None, {}):
                out.pop(name, None)
        return out

    @classmethod
    def of(cls, result: Any) -> Any:
        """The wire body (a dict) of a core result."""
        return cls.model_validate(result).model_dump(mode="json")

