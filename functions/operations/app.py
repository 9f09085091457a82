"""Operator routes for background work: the dead-letter items (list, replay) and reconciliation
(last result, run now)."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from billing_core.api import edge as http
from billing_core.api.models.ledger import DismissRequest
from billing_core.kernel.errors import NotFound
from billing_core.reconciler import run as reconciler
from billing_core.work import items as work

router = http.router()


@router.get(
    "/admin/billing/dlq",
    summary="List background work items",
    description="Items whose first attempt failed, by status (manual_review by default), most recently "
    "changed first.",
    tags=["admin"],
)
def list_dlq(
    status: Annotated[Literal[work.STATUSES], Query()] = "manual_review",  # type: ignore[valid-type]
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
):
    items, next_cursor = work.list_items(status, limit=limit, cursor=cursor)
    return http.json_response({"items": items, "pagination": {"limit": limit, "nextCursor": next_cursor,
                                                              "hasMore": next_cursor is not None}})


@router.post(
    "/admin/billing/dlq/<itemId>/replay",
    summary="Replay a work item now",
    description="Runs the item's operation again. Idempotent: a succeeded item answers its stored result "
    "(replayed: false), and the operation itself applies at most once.",
    tags=["admin"],
)
def replay(itemId: str):
    return http.json_response(work.replay(http.path_id(itemId, "itemId"), actor=http.caller().actor))


@router.post(
    "/admin/billing/dlq/<itemId>/dismiss",
    summary="Dismiss a work item",
    description="Closes a pending or parked item that will not be replayed (resolved by hand); the reason and "
    "the operator are kept on the item. Dismissing twice answers the dismissed item; a succeeded item is 409.",
    tags=["admin"],
)
def dismiss(itemId: str, request: DismissRequest):
    return http.json_response(work.dismiss(http.path_id(itemId, "itemId"), actor=http.caller().actor,
                                           reason=request.reason))


@router.get("/admin/billing/reconciliation", summary="The last reconciliation result", tags=["admin"])
def last_reconciliation():
    result = reconciler.last_result()
    if result is None:
        raise NotFound("no reconciliation has run yet", code="NO_RECONCILIATION_YET")
    return http.json_response(result)


@router.post(
    "/admin/billing/reconcile",
    summary="Run a reconciliation now",
    description="Runs within this request's time budget (complete: false when cut short; the nightly "
    "schedule reads everything).",
    tags=["admin"],
)
def reconcile_now():
    return http.json_response(reconciler.run(actor=http.caller().actor, time_budget_seconds=20.0))


lambda_handler = http.handler(router, auth_kind="admin")
