"""POST /api/internal/billing/release - return a whole reservation to the account."""

from aws_lambda_powertools.event_handler import Response
from billing_core.api import edge
from billing_core.api.models.reservations import ReleaseRequest, ReleaseResponse
from billing_core.kernel.errors import Conflict, Forbidden, NotFound
from billing_core.ledger import reservations

router = edge.router()


@router.post(
    "/api/internal/billing/release",
    summary="Release a reservation",
    description="Idempotent: releasing a released reservation returns the original response.",
    tags=["internal"],
    responses=edge.responses(ReleaseResponse, 200, {
        NotFound: ("RESERVATION_NOT_FOUND",), Forbidden: ("NOT_RESERVATION_OWNER",),
        Conflict: ("ALREADY_FINALIZED", "RESERVATION_RELEASED", "RESERVATION_EXPIRED", "INVALID_STATE")}),
)
def release(request: ReleaseRequest, ctx: edge.Ctx) -> Response[ReleaseResponse]:
    return edge.reply(ReleaseResponse, reservations.release(ctx, reservation_id=request.reservationId))


lambda_handler = edge.handler(router, auth_kind="internal")
