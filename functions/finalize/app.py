"""POST /api/internal/billing/finalize - charge the actual cost and release the rest."""

from billing_core.api import edge as http
from billing_core.api.models.ledger import FinalizeRequest
from billing_core.ledger import reservations

router = http.router()


@router.post(
    "/api/internal/billing/finalize",
    summary="Finalize a reservation",
    description="Idempotent on reservationId: the same actualCostMicro returns the original response; "
    "another amount, a released or an expired reservation is 409.",
    tags=["internal"],
)
def finalize(request: FinalizeRequest):
    result = reservations.finalize(
        reservation_id=request.reservationId,
        actual=request.actualCostMicro,
        caller=http.caller(),
        rate=http.rate(),
    )
    return http.json_response(result, 200)


lambda_handler = http.handler(router, auth_kind="internal")
