"""POST /api/internal/billing/reserve - hold the estimated cost before expensive work."""

from aws_lambda_powertools.event_handler import Response
from billing_core.api import edge
from billing_core.api.models.reservations import INSUFFICIENT_CREDIT_402, ReserveRequest, ReserveResponse
from billing_core.kernel.errors import Conflict, InvalidInput
from billing_core.ledger import reservations

router = edge.router()


@router.post(
    "/api/internal/billing/reserve",
    summary="Reserve credit",
    description="Moves the estimate from available to reserved. Idempotent on reservationId. "
    "402 in live mode when the balance is insufficient, with requiredMicro, availableMicro, shortfallMicro and "
    "topUpUrl in its details.",
    tags=["internal"],
    responses={
        **edge.responses(ReserveResponse, 201, {Conflict: ("IDEMPOTENCY_KEY_REUSED",),
                                                InvalidInput: ("SYSTEM_ACCOUNT", "INVALID_TTL", "TOO_MANY_LOTS")}),
        **INSUFFICIENT_CREDIT_402,
    },
)
def reserve(request: ReserveRequest, ctx: edge.Ctx) -> Response[ReserveResponse]:
    result = reservations.reserve(ctx, account_id=request.accountId, pool_id=request.poolId,
                                  estimate=request.estimatedCostMicro, reservation_id=request.reservationId,
                                  ttl_seconds=request.ttlSeconds)
    return edge.reply(ReserveResponse, result, 201)


lambda_handler = edge.handler(router, auth_kind="internal")
