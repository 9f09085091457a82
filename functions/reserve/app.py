"""POST /api/internal/billing/reserve - hold the estimated cost before expensive work."""

from billing_core import http
from billing_core.ledger import reservations
from billing_core.models import ReserveRequest

router = http.router()


@router.post(
    "/api/internal/billing/reserve",
    summary="Reserve credit",
    description="Moves the estimate from available to reserved. Idempotent on reservationId. "
    "402 in live mode when the balance is insufficient.",
    tags=["internal"],
)
def reserve(request: ReserveRequest):
    result = reservations.reserve(
        account_id=request.accountId,
        pool_id=request.poolId,
        estimate=request.estimatedCostMicro,
        reservation_id=request.reservationId,
        ttl_seconds=request.ttlSeconds,
        caller=http.caller(),
        rate=http.rate(),
    )
    return http.json_response(result, 201)


lambda_handler = http.handler(router, auth_kind="internal")
