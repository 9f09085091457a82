"""GET /api/billing/pricing - public pricing and the billing mode; defaults if config is unreadable."""

from billing_core.api import edge as http
from billing_core.ledger import config

router = http.router()


@router.get("/api/billing/pricing", summary="Public pricing", tags=["public"])
def pricing():
    current, from_defaults = config.current_or_defaults()
    return http.json_response({
        "billingMode": current.mode,
        "pools": current.pricing.get("pools", []),
        "rates": current.pricing.get("rates", []),
        "tiers": current.pricing.get("tiers", []),
        "source": "defaults" if from_defaults else "config",
    })


lambda_handler = http.handler(router, auth_kind=None)
