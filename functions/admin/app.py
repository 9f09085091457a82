"""Operator routes on accounts and config: mint, adjust/set, refund, read balance and history,
billing mode and revenue shares."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from billing_core.api import edge as http
from billing_core.api.models.ledger import AdjustRequest, MintRequest, ModeRequest, RefundRequest, RevenueSharesRequest
from billing_core.kernel import money
from billing_core.ledger import adjustments, balances, config, entries, lots
from billing_core.payments import events as payments
from billing_core.store import keys

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


@router.post(
    "/admin/billing/accounts/<accountId>/adjust",
    summary="Set or adjust a balance",
    description="balanceMicro sets the pool's balance, deltaMicro moves it (both signed; negative balances "
    "allowed). Answers previousBalanceMicro and newBalanceMicro; lifetime paid is unchanged; the reason is "
    "recorded as an `adjustment` ledger entry. Idempotent on idempotencyKey.",
    tags=["admin"],
)
def adjust(accountId: str, request: AdjustRequest):
    result = adjustments.adjust(
        account_id=http.path_id(accountId, "accountId"), pool_id=request.poolId, balance=request.balanceMicro,
        delta=request.deltaMicro, reason=request.reason, actor=http.caller().actor, rate=http.rate(),
        idempotency_key=request.idempotencyKey,
    )
    return http.json_response(result)


@router.post(
    "/admin/billing/accounts/<accountId>/refund",
    summary="Refund (audited debit)",
    description="Debits the pool (a negative balance is allowed) and records a `refund` entry. With orderId "
    "the refund counts against that top-up, so the provider's own refund event later debits nothing twice. "
    "Money leaves through the provider's dashboard; this records the ledger side.",
    tags=["admin"],
)
def refund(accountId: str, request: RefundRequest):
    result = payments.refund(
        account_id=http.path_id(accountId, "accountId"), pool_id=request.poolId, amount=request.amountMicro,
        reason=request.reason, order_id=request.orderId, actor=http.caller().actor, rate=http.rate(),
        idempotency_key=request.idempotencyKey,
    )
    return http.json_response(result)


@router.get("/admin/billing/accounts/<accountId>/balance", summary="An account's balance", tags=["admin"])
def balance(accountId: str, poolId: Annotated[str | None, Query(pattern=keys.POOL_PATTERN, max_length=64)] = None):
    account_id = http.path_id(accountId, "accountId")
    totals = adjustments.lifetime_totals(account_id)
    return http.json_response({**balances.balance(account_id, poolId),
                               "lifetimePaidMicro": money.fmt(totals["paid"]),
                               "lifetimeRefundedMicro": money.fmt(totals["refunded"])})


@router.get("/admin/billing/accounts/<accountId>/history", summary="An account's ledger entries", tags=["admin"])
def history(
    accountId: str,
    poolId: Annotated[str | None, Query(pattern=keys.POOL_PATTERN, max_length=64)] = None,
    entryType: Annotated[Literal[entries.ENTRY_TYPES] | None, Query()] = None,  # type: ignore[valid-type]
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
):
    page, next_cursor, has_more = entries.history(
        http.path_id(accountId, "accountId"), pool_id=poolId, entry_type=entryType, limit=limit, cursor=cursor)
    return http.json_response(
        {"entries": page, "pagination": {"limit": limit, "nextCursor": next_cursor, "hasMore": has_more}})


@router.get("/admin/billing/config", summary="Billing mode and revenue shares", tags=["admin"])
def get_config():
    return http.json_response(config.describe())


@router.put("/admin/billing/config/mode", summary="Set the billing mode", tags=["admin"])
def set_mode(request: ModeRequest):
    return http.json_response(config.set_mode(request.mode, actor=http.caller().actor, rate=http.rate()))


@router.put(
    "/admin/billing/config/revenue-shares",
    summary="Set the revenue shares",
    description="Basis points of each finalized amount per system account; applies to reservations made "
    "after the change.",
    tags=["admin"],
)
def set_revenue_shares(request: RevenueSharesRequest):
    return http.json_response(config.set_revenue_shares(request.shares, actor=http.caller().actor,
                                                        rate=http.rate()))


lambda_handler = http.handler(router, auth_kind="admin")
