"""Quota routes for internal services: check usage against an org's monthly limits, and record
it atomically (402 QUOTA_EXCEEDED when hard limits are on and a limit would be crossed)."""

from billing_core.api import edge as http
from billing_core.api.models.quotas import QuotaRequest, UsageRequest
from billing_core.quotas import usage as quotas

router = http.router()


@router.post("/api/v1/billing/org/check", summary="Check usage against an org's limits", tags=["internal"])
def check(request: QuotaRequest):
    return http.json_response(quotas.check(request.orgId, request.amounts()))


@router.post("/api/v1/billing/org/usage", summary="Record usage against an org's limits", tags=["internal"])
def usage(request: UsageRequest):
    return http.json_response(quotas.record(request.orgId, request.amounts(), request_id=request.requestId,
                                            rate=http.rate(), enforce=request.enforce))


lambda_handler = http.handler(router, auth_kind="internal")
