"""Operator routes for background work: the dead-letter items (list, replay) and reconciliation
(last result, run now)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from billing_core.api import edge, pagination
from billing_core.api.models.reconciler import ReconciliationResponse
from billing_core.api.models.work import DismissRequest, WorkItemResponse, WorkListResponse
from billing_core.kernel.errors import BadRequest, Conflict, NotFound
from billing_core.outbound import delivery  # noqa: F401 - replays webhook deliveries
from billing_core.payments import events  # noqa: F401 - replays payment events
from billing_core.reconciler import run as reconciler
from billing_core.work import items as work
from billing_core.work.model import Status

router = edge.router()


@router.get(
    "/admin/billing/dlq",
    summary="List background work items",
    description="Items whose first attempt failed, by status (manual_review by default), most recently "
    "changed first.",
    tags=["admin"],
    responses=edge.responses(WorkListResponse, 200, {BadRequest: ("INVALID_CURSOR",)}),
)
def list_dlq(
    status: Annotated[Status, Query()] = "manual_review",
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=pagination.MAX_LENGTH)] = None,
) -> Response[WorkListResponse]:
    items, next_key = work.by_status(status, limit=limit, start=pagination.decode(cursor, [status]))
    return edge.reply(WorkListResponse, {"items": items, "pagination": pagination.info(limit, next_key, [status])})


@router.post(
    "/admin/billing/dlq/<itemId>/replay",
    summary="Replay a work item now",
    description="Runs the item's operation again. Idempotent: a succeeded item answers its stored result "
    "(replayed: false), and the operation itself applies at most once.",
    tags=["admin"],
    responses=edge.responses(WorkItemResponse, 200, {NotFound: ("WORK_ITEM_NOT_FOUND",)}),
)
def replay(itemId: edge.PathId, ctx: edge.Ctx) -> Response[WorkItemResponse]:
    return edge.reply(WorkItemResponse, work.replay(ctx, itemId))


@router.post(
    "/admin/billing/dlq/<itemId>/dismiss",
    summary="Dismiss a work item",
    description="Closes a pending or parked item that will not be replayed (resolved by hand); the reason and "
    "the operator are kept on the item. Dismissing twice answers the dismissed item; a succeeded item is 409.",
    tags=["admin"],
    responses=edge.responses(WorkItemResponse, 200, {NotFound: ("WORK_ITEM_NOT_FOUND",),
                                                     Conflict: ("WORK_ITEM_SETTLED",)}),
)
def dismiss(itemId: edge.PathId, request: DismissRequest, ctx: edge.Ctx) -> Response[WorkItemResponse]:
    return edge.reply(WorkItemResponse, work.dismiss(ctx, itemId, reason=request.reason))


@router.get("/admin/billing/reconciliation", summary="The last reconciliation result", tags=["admin"],
            responses=edge.responses(ReconciliationResponse, 200, {NotFound: ("NO_RECONCILIATION_YET",)}))
def last_reconciliation() -> Response[ReconciliationResponse]:
    result = reconciler.last_result()
    if result is None:
        raise NotFound("no reconciliation has run yet", code="NO_RECONCILIATION_YET")
    return edge.reply(ReconciliationResponse, result)


@router.post(
    "/admin/billing/reconcile",
    summary="Run a reconciliation now",
    description="Runs within this request's time budget (complete: false when cut short; the nightly "
    "schedule reads everything).",
    tags=["admin"],
    responses=edge.responses(ReconciliationResponse),
)
def reconcile_now(ctx: edge.Ctx) -> Response[ReconciliationResponse]:
    return edge.reply(ReconciliationResponse, reconciler.run(actor=ctx.actor, time_budget_seconds=20.0))


lambda_handler = edge.handler(router, auth_kind="admin")
