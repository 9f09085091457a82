"""The one source of 'now', so tests can move time (reservation expiry) without sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime

_offset_seconds = 0.0


def now() -> float:
    return time.time() + _offset_seconds


def advance(seconds: float) -> None:
    """Test hook: move this process's clock forward."""
    global _offset_seconds
    _offset_seconds += seconds


def reset() -> None:
    global _offset_seconds
    _offset_seconds = 0.0


def iso(ts: float) -> str:
    """UTC ISO-8601 with microseconds; sorts lexicographically in time order."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> float:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("timestamp must carry a timezone (e.g. 2026-01-01T00:00:00Z)")
    return parsed.timestamp()
