"""GET /api/v1/billing/plans - the active plans with their monthly limits and overage prices.
Public; the seeded defaults when the table holds no plans yet (or cannot be read)."""

from aws_lambda_powertools.event_handler import Response
from billing_core.api import edge
from billing_core.api.models.quotas import PlansResponse
from billing_core.quotas import plans

router = edge.router()


@router.get("/api/v1/billing/plans", summary="Active plans", tags=["public"], responses=edge.responses(PlansResponse))
def list_plans() -> Response[PlansResponse]:
    return edge.reply(PlansResponse, plans.listing())


lambda_handler = edge.handler(router, auth_kind=None)
