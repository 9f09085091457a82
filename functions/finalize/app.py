"""POST /api/internal/billing/finalize - charge the actual cost and release the rest."""

from aws_lambda_powertools.event_handler import Response
from billing_core.api import edge
from billing_core.api.models.reservations import FinalizeRequest, FinalizeResponse
from billing_core.kernel.errors import Conflict, Forbidden, NotFound
from billing_core.ledger import reservations

router = edge.router()


@router.post(
    "/api/internal/billing/finalize",
    summary="Finalize a reservation",
    description="Idempotent on reservationId: the same actualCostMicro returns the original response; "
    "another amount, a released or an expired reservation is 409.",
    tags=["internal"],
    responses=edge.responses(FinalizeResponse, 200, {
        NotFound: ("RESERVATION_NOT_FOUND",), Forbidden: ("NOT_RESERVATION_OWNER",),
        Conflict: ("ALREADY_FINALIZED", "RESERVATION_RELEASED", "RESERVATION_EXPIRED", "INVALID_STATE")}),
)
def finalize(request: FinalizeRequest, ctx: edge.Ctx) -> Response[FinalizeResponse]:
    result = reservations.finalize(ctx, reservation_id=request.reservationId, actual=request.actualCostMicro)
    return edge.reply(FinalizeResponse, result)


lambda_handler = edge.handler(router, auth_kind="internal")
