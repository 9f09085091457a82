"""Background work, as values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Status = Literal["pending", "succeeded", "manual_review", "dismissed"]
STATUSES: tuple[str, ...] = get_args(Status)


@dataclass(frozen=True)
class WorkItem:
    item_id: str
    operation: str
    status: str
    attempts: int
    created_at: str
    updated_at: str
    payload: dict[str, Any] = field(default_factory=dict)  # what the operation needs (never shown)
    reference: str | None = None
    last_error: str | None = None
    next_retry_at: str | None = None
    result: dict[str, Any] | None = None
    dismissed_by: str | None = None
    dismiss_reason: str | None = None
    replayed: bool | None = None  # set on an operator's replay: did it run the operation now
