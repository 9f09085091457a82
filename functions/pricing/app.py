"""GET /api/billing/pricing - public pricing and the billing mode; defaults if config is unreadable."""

from aws_lambda_powertools.event_handler import Response
from billing_core.api import edge
from billing_core.api.models.ledger import PricingResponse
from billing_core.ledger import config

router = edge.router()


@router.get("/api/billing/pricing", summary="Public pricing", tags=["public"],
            responses=edge.responses(PricingResponse))
def pricing() -> Response[PricingResponse]:
    return edge.reply(PricingResponse, config.pricing())


lambda_handler = edge.handler(router, auth_kind=None)
