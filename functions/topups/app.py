"""POST /api/billing/topups - start a top-up for the caller's account; GET one back."""

from aws_lambda_powertools.event_handler import Response
from billing_core.api import edge
from billing_core.api.models.payments import TopupRequest, TopupResponse
from billing_core.kernel.errors import InvalidInput, NotFound, UpstreamUnavailable
from billing_core.payments import topups

router = edge.router()


@router.post(
    "/api/billing/topups",
    summary="Create a top-up",
    description="Records a pending payment (USD, whole cents, at least 1 USD) and, when the provider's key is "
    "configured, creates its invoice (NOWPayments) or Checkout session (Stripe) and returns paymentUrl. "
    "Credit arrives with the provider's signed webhook.",
    tags=["user"],
    responses=edge.responses(TopupResponse, 201, {
        InvalidInput: ("SYSTEM_ACCOUNT", "INVALID_TOPUP_AMOUNT", "INVALID_PROVIDER"),
        UpstreamUnavailable: ("PROVIDER_UNAVAILABLE",)}),
)
def create_topup(request: TopupRequest, ctx: edge.Ctx) -> Response[TopupResponse]:
    result = topups.create(ctx, account_id=edge.own_account(None), amount=request.amountMicro,
                           provider=request.provider)
    return edge.reply(TopupResponse, result, 201)


@router.get("/api/billing/topups/<orderId>", summary="A top-up of the caller's account", tags=["user"],
            responses=edge.responses(TopupResponse, 200, {NotFound: ("TOPUP_NOT_FOUND",)}))
def get_topup(orderId: edge.PathId) -> Response[TopupResponse]:
    return edge.reply(TopupResponse, topups.get(orderId, edge.own_account(None)))


lambda_handler = edge.handler(router, auth_kind="user")
