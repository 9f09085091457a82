"""POST /api/internal/billing/release - return a whole reservation to the account."""

from billing_core import http
from billing_core.ledger import reservations
from billing_core.models import ReleaseRequest

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
