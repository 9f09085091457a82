"""Operator routes: mint credit into an account, switch the billing mode."""

from billing_core import config, http, lots
from billing_core.models import MintRequest, ModeRequest

router = http.router()


@router.post(
    "/admin/billing/accounts/<accountId>/mint",
    summary="Mint a credit lot",
    description="Creates a lot; outstanding soft-mode debt in the pool is settled first. "
    "Idempotent on idempotencyKey.",
    tags=["admin"],
)
def mint(accountId: str, request: MintRequest):
    lot = lots.mint(
        account_id=http.path_id(accountId, "accountId"),
        pool_id=request.poolId,
        amount=request.amountMicro,
        source_type=request.sourceType,
        description=request.description,
        expires_at=request.expiresAt,
        idempotency_key=request.idempotencyKey,
        actor=http.caller().actor,
        rate=http.rate(),
    )
    return http.json_response(lot, 201)


@router.put("/admin/billing/config/mode", summary="Set the billing mode", tags=["admin"])
def set_mode(request: ModeRequest):
    return http.json_response(config.set_mode(request.mode, actor=http.caller().actor, rate=http.rate()))


lambda_handler = http.handler(router, auth_kind="admin")
