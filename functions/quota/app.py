"""Quota routes for internal services: check usage against an org's monthly limits, and record
it atomically (402 QUOTA_EXCEEDED when hard limits are on and a limit would be crossed)."""

from aws_lambda_powertools.event_handler import Response
from billing_core.api import edge
from billing_core.api.models.quotas import (
    QUOTA_EXCEEDED_402,
    CheckResponse,
    QuotaRequest,
    UsageRequest,
    UsageResponse,
)
from billing_core.kernel.errors import Conflict
from billing_core.quotas import usage as quotas

router = edge.router()


@router.post("/api/v1/billing/org/check", summary="Check usage against an org's limits", tags=["internal"],
             responses={**edge.responses(CheckResponse), **QUOTA_EXCEEDED_402})
def check(request: QuotaRequest) -> Response[CheckResponse]:
    return edge.reply(CheckResponse, quotas.check(request.orgId, request.amounts()))


@router.post("/api/v1/billing/org/usage", summary="Record usage against an org's limits", tags=["internal"],
             responses={**edge.responses(UsageResponse, 200, {Conflict: ("IDEMPOTENCY_KEY_REUSED",)}),
                        **QUOTA_EXCEEDED_402})
def usage(request: UsageRequest, ctx: edge.Ctx) -> Response[UsageResponse]:
    result = quotas.record(ctx, request.orgId, request.amounts(), request_id=request.requestId,
                           enforce=request.enforce)
    return edge.reply(UsageResponse, result)


lambda_handler = edge.handler(router, auth_kind="internal")
