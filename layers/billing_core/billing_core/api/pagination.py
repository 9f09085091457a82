"""Cursors: the one way a page says where the next one starts.

A cursor is the store's last evaluated key plus what it was issued for (the account, the
filters), base64url JSON. Decoding checks both, so a cursor never reads another account's items
or another filter's index: the store checks the key belongs to the partition it reads.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from billing_core.kernel.errors import BadRequest

MAX_LENGTH = 2048


def encode(key: dict[str, Any] | None, bound_to: list[str | None]) -> str | None:
    if key is None:
        return None
    raw = json.dumps({"k": key, "f": bound_to}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None, bound_to: list[str | None]) -> dict[str, Any] | None:
    if cursor is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor is not one this API issued", code="INVALID_CURSOR") from None
    key = data.get("k") if isinstance(data, dict) else None
    if not isinstance(key, dict) or data.get("f") != bound_to or not all(isinstance(v, str) for v in key.values()):
        raise BadRequest("cursor does not belong to this account and filter", code="INVALID_CURSOR")
    return key


@dataclass(frozen=True)
class PageInfo:
    limit: int
    next_cursor: str | None
    has_more: bool


def info(limit: int, next_key: dict[str, Any] | None, bound_to: list[str | None]) -> PageInfo:
    cursor = encode(next_key, bound_to)
    return PageInfo(limit, cursor, cursor is not None)
