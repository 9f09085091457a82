"""Write capacity of a TransactWriteItems call, from the items it actually wrote.

DynamoDB item size: for every attribute, the UTF-8 length of its name plus the size of its value.
  S: UTF-8 bytes. N: 1 byte per two significant digits, plus 1 (plus 1 if negative).
  B: raw bytes. BOOL/NULL: 1. M/L: 3 bytes + per element 1 byte + (name +) element size.
  SS/NS/BS: the sum of their elements.
A write is billed on the larger of the item before and after it, in 1 KB units (rounded up);
a transactional write costs 2 of those per unit. A ConditionCheck is billed like a
transactional write of the item it checks.
GSI writes (not doubled, per the issue's rule): an index entry that appears, disappears or changes
costs one write of the projected entry's size in 1 KB units; a key change is a delete plus a put.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

KB = 1024


def number_size(raw: str) -> int:
    text = raw.strip()
    negative = text.startswith("-")
    mantissa = text.lstrip("+-").lower().split("e")[0].replace(".", "")
    significant = mantissa.lstrip("0").rstrip("0")
    return math.ceil(len(significant) / 2) + 1 + (1 if negative else 0)


def value_size(av: dict[str, Any]) -> int:
    (kind, raw), = av.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        return number_size(raw)
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in raw.items())
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    if kind == "SS":
        return sum(len(s.encode()) for s in raw)
    if kind == "NS":
        return sum(number_size(n) for n in raw)
    if kind == "BS":
        return sum(len(b) for b in raw)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(av) for name, av in item.items())


def units(size: int) -> int:
    return max(1, math.ceil(size / KB))


@dataclass(frozen=True)
class Index:
    table: str
    name: str
    keys: tuple[str, ...]
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    include: tuple[str, ...]
    table_keys: tuple[str, ...]

    def entry(self, item: dict[str, Any] | None) -> dict[str, Any] | None:
        """The index entry for a (wire format) item, or None if the item is not in this sparse index."""
        if not item or not all(k in item for k in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        wanted = set(self.keys) | set(self.table_keys) | set(self.include)
        return {k: v for k, v in item.items() if k in wanted}


def indexes_from_template(template: Any) -> dict[str, list[Index]]:
    from devserver.template import table_definitions

    out: dict[str, list[Index]] = {}
    for name, spec in table_definitions(template).items():
        table_keys = tuple(k["AttributeName"] for k in spec["KeySchema"])
        for gsi in spec.get("GlobalSecondaryIndexes") or []:
            projection = gsi.get("Projection") or {}
            out.setdefault(name, []).append(Index(
                table=name, name=gsi["IndexName"], keys=tuple(k["AttributeName"] for k in gsi["KeySchema"]),
                projection=projection.get("ProjectionType", "ALL"),
                include=tuple(projection.get("NonKeyAttributes") or ()), table_keys=table_keys,
            ))
    return out


@dataclass
class ActionCost:
    kind: str
    table: str
    label: str
    before: int
    after: int
    base_wcu: int  # transactional (doubled)
    gsi: dict[str, int]  # index name -> GSI write units (not doubled)

    @property
    def total(self) -> int:
        return self.base_wcu + sum(self.gsi.values())


def gsi_writes(index: Index, before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
    old, new = index.entry(before), index.entry(after)
    if old is None and new is None:
        return 0
    if old is None:
        return units(item_size(new))
    if new is None:
        return units(item_size(old))
    if any(old[k] != new[k] for k in index.keys):
        return units(item_size(old)) + units(item_size(new))  # moved: delete + put
    if old != new:
        return units(max(item_size(old), item_size(new)))
    return 0


def action_cost(kind: str, table: str, label: str, before: dict[str, Any] | None,
                after: dict[str, Any] | None, indexes: dict[str, list[Index]]) -> ActionCost:
    b, a = item_size(before), item_size(after)
    base = 2 * units(max(b, a))
    gsi = {} if kind == "ConditionCheck" else {
        ix.name: n for ix in indexes.get(table, []) if (n := gsi_writes(ix, before, after))
    }
    return ActionCost(kind, table, label, b, a, base, gsi)
