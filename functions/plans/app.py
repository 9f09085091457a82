"""GET /api/v1/billing/plans - the active plans with their monthly limits and overage prices.
Public; the seeded defaults when the table holds no plans yet (or cannot be read)."""

from billing_core.api import edge
from billing_core.quotas import plans

router = edge.router()


@router.get("/api/v1/billing/plans", summary="Active plans", tags=["public"])
def list_plans():
    current, unreadable = plans.catalogue_or_defaults()
    return edge.json_response({
        "plans": [plan.to_wire() for plan in current.active()],
        "source": "table" if current.from_table else "defaults",
        **({"degraded": True} if unreadable else {}),
    })


lambda_handler = edge.handler(router, auth_kind=None)
