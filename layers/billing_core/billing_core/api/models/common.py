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

from billing_core.kernel import clock, ids, money

_MONEY_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer", "minimum": 0}],
    "description": "Whole micro-units (1 USD = 1,000,000) as a digit string or JSON integer; no floats.",
}
_SIGNED_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": "^-?[0-9]+$"}, {"type": "integer"}],
    "description": "Whole micro-units, negative allowed, as a digit string or JSON integer; no floats.",
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
MicroOrZero = Annotated[int, BeforeValidator(_micro_or_zero), WithJsonSchema(_MONEY_SCHEMA)]
# Amounts the API answers: an exact integer, written as a decimal string.
Micro = Annotated[int, PlainSerializer(money.fmt, return_type=str), WithJsonSchema(_MICRO_OUT_SCHEMA)]

Identifier = Annotated[StrictStr, Field(pattern=ids.ID_PATTERN, min_length=1, max_length=ids.ID_MAX)]
PoolId = Annotated[StrictStr, Field(pattern=ids.POOL_PATTERN, min_length=1, max_length=ids.POOL_MAX)]
Reason = Annotated[StrictStr, Field(min_length=1, max_length=500)]
IdempotencyKey = Annotated[StrictStr, Field(min_length=1, max_length=128)]


def _iso_timestamp(value: str) -> str:
    try:
        return clock.iso(clock.parse_iso(value))
    except (ValueError, OverflowError, OSError):
        raise ValueError("must be an ISO-8601 timestamp with a timezone") from None


Timestamp = Annotated[StrictStr, Field(max_length=40), AfterValidator(_iso_timestamp)]


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

