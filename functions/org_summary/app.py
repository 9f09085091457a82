"""GET /api/v1/billing/org/summary - the caller's org: plan, billing status, this month's limits,
usage, percent used and overage owed so far. The org is the user token's subject; a new org is
seeded on a 30-day trial of the default plan."""

from aws_lambda_powertools.event_handler import Response
from billing_core.api import edge
from billing_core.api.models.quotas import SummaryResponse
from billing_core.kernel.errors import Forbidden
from billing_core.quotas import usage as quotas

router = edge.router()


@router.get("/api/v1/billing/org/summary", summary="Billing summary of the caller's org", tags=["user"],
            responses=edge.responses(SummaryResponse, 200, {Forbidden: ("ACCOUNT_SCOPE",)}))
def summary(orgId: edge.QueryId = None) -> Response[SummaryResponse]:
    org_id = edge.path_id(edge.own_account(orgId), "orgId")
    return edge.reply(SummaryResponse, quotas.summary(org_id))


lambda_handler = edge.handler(router, auth_kind="user")
