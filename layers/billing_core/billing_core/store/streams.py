"""DynamoDB stream records (NEW_AND_OLD_IMAGES, as Lambda hands them over) -> plain changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_core.store import dynamo


@dataclass(frozen=True)
class Change:
    """One item's change: its images before and after (None: it did not exist)."""

    pk: str
    sk: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    at: float  # when DynamoDB recorded it (epoch seconds)
    sequence: str


def _image(raw: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return dynamo.from_item(raw) if raw else None


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def change(record: Mapping[str, Any]) -> Change | None:
    """None for a record that is not an item change of this table's shape."""
    data = record.get("dynamodb") or {}
    keys = data.get("Keys") or {}
    try:
        pk, sk = keys["pk"]["S"], keys["sk"]["S"]
    except (KeyError, TypeError):
        return None
    return Change(pk=pk, sk=sk, old=_image(data.get("OldImage")), new=_image(data.get("NewImage")),
                  at=_epoch(data.get("ApproximateCreationDateTime")), sequence=str(data.get("SequenceNumber", "")))
