"""The wire shapes of background work (the operators' DLQ routes)."""

from __future__ import annotations

from typing import Any

from billing_core.api.models.common import Reason, RequestModel, ResponseModel
from billing_core.api.models.ledger import Pagination
from billing_core.work.model import Status


class DismissRequest(RequestModel):
    reason: Reason


class WorkItemResponse(ResponseModel):
    omitted_when_unset = frozenset({"replayed"})

    item_id: str
    operation: str
    status: Status
    attempts: int
    last_error: str | None
    next_retry_at: str | None
    reference: str | None
    created_at: str
    updated_at: str
    result: dict[str, Any] | None
    dismissed_by: str | None
    dismiss_reason: str | None
    replayed: bool | None = None


class WorkListResponse(ResponseModel):
    items: list[WorkItemResponse]
    pagination: Pagination
