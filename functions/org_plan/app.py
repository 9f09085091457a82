"""POST /api/v1/billing/org/plan - operators change an org's plan, billing status, limit
overrides, seats (member count) or trial end; an org never seen before is created."""

from aws_lambda_powertools.event_handler import Response
from billing_core.api import edge
from billing_core.api.models.quotas import OrgBillingResponse, OrgPlanRequest
from billing_core.kernel.errors import InvalidInput, NotFound
from billing_core.quotas import orgs

router = edge.router()


@router.post("/api/v1/billing/org/plan", summary="Change an org's plan or billing state", tags=["admin"],
             responses=edge.responses(OrgBillingResponse, 200, {NotFound: ("PLAN_NOT_FOUND",),
                                                                InvalidInput: ("PLAN_INACTIVE",)}))
def set_plan(request: OrgPlanRequest, ctx: edge.Ctx) -> Response[OrgBillingResponse]:
    result = orgs.set_billing(
        ctx,
        request.orgId,
        plan_slug=request.planSlug,
        billing_status=request.billingStatus,
        overrides=request.overrides.as_map() if request.overrides is not None else None,
        seats=request.seats,
        trial_ends_at=request.trialEndsAt,
    )
    return edge.reply(OrgBillingResponse, result)


lambda_handler = edge.handler(router, auth_kind="admin")
