"""POST /api/billing/topups - start a top-up for the caller's account; GET one back."""

from billing_core.api import edge as http
from billing_core.api.models.ledger import TopupRequest
from billing_core.payments import events as payments

router = http.router()


@router.post(
    "/api/billing/topups",
    summary="Create a top-up",
    description="Records a pending payment (USD, whole cents, at least 1 USD) and, when the provider's key is "
    "configured, creates its invoice (NOWPayments) or Checkout session (Stripe) and returns paymentUrl. "
    "Credit arrives with the provider's signed webhook.",
    tags=["user"],
)
def create_topup(request: TopupRequest):
    result = payments.create_topup(account_id=http.user_account(None), amount=request.amountMicro,
                                   provider=request.provider, actor=http.caller().actor)
    return http.json_response(result, 201)


@router.get("/api/billing/topups/<orderId>", summary="A top-up of the caller's account", tags=["user"])
def get_topup(orderId: str):
    return http.json_response(payments.get_topup(http.path_id(orderId, "orderId"), http.user_account(None)))


lambda_handler = http.handler(router, auth_kind="user")
