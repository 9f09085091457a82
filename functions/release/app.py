"""POST /api/internal/billing/release - return a whole reservation to the account."""

from billing_core.api import edge as http
from billing_core.api.models.ledger import ReleaseRequest
from billing_core.ledger import reservations

router = http.router()


@router.post(
    "/api/internal/billing/release",
    summary="Release a reservation",
    description="Idempotent: releasing a released reservation returns the original response.",
    tags=["internal"],
)
def release(request: ReleaseRequest):
    result = reservations.release(reservation_id=request.reservationId, caller=http.caller(), rate=http.rate())
    return http.json_response(result, 200)


lambda_handler = http.handler(router, auth_kind="internal")
