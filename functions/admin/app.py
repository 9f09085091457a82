"""Operator routes on accounts and config: mint, adjust/set, refund, read balance and history,
billing mode and revenue shares."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from billing_core.api import edge, pagination
from billing_core.api.models.ledger import (
    AdjustRequest,
    BalanceChangeResponse,
    ConfigResponse,
    HistoryResponse,
    LotResponse,
    MintRequest,
    ModeChangeResponse,
    ModeRequest,
    OperatorBalanceResponse,
    RefundResponse,
    RevenueSharesRequest,
    SharesChangeResponse,
)
from billing_core.api.models.payments import RefundRequest
from billing_core.kernel.errors import BadRequest, Conflict, InvalidInput, NotFound
from billing_core.ledger import adjustments, balances, config, lots
from billing_core.ledger import history as ledger_history
from billing_core.ledger.model import EntryType
from billing_core.payments import refunds

router = edge.router()


@router.post(
    "/admin/billing/accounts/<accountId>/mint",
    summary="Mint a credit lot",
    description="Creates a lot; outstanding soft-mode debt in the pool is settled first. "
    "Idempotent on idempotencyKey.",
    tags=["admin"],
    responses=edge.responses(LotResponse, 201, {InvalidInput: ("SYSTEM_ACCOUNT", "EXPIRY_IN_PAST"),
                                                Conflict: ("IDEMPOTENCY_KEY_REUSED",)}),
)
def mint(accountId: edge.PathAccountId, request: MintRequest, ctx: edge.Ctx) -> Response[LotResponse]:
    lot = lots.mint(ctx, account_id=accountId, pool_id=request.poolId,
                    amount=request.amountMicro, source_type=request.sourceType, description=request.description,
                    expires_at=request.expiresAt, idempotency_key=request.idempotencyKey)
    return edge.reply(LotResponse, lot, 201)


@router.post(
    "/admin/billing/accounts/<accountId>/adjust",
    summary="Set or adjust a balance",
    description="balanceMicro sets the pool's balance, deltaMicro moves it (both signed; negative balances "
    "allowed). Answers previousBalanceMicro and newBalanceMicro; lifetime paid is unchanged; the reason is "
    "recorded as an `adjustment` ledger entry. Idempotent on idempotencyKey.",
    tags=["admin"],
    responses=edge.responses(BalanceChangeResponse, 200, {
        InvalidInput: ("SYSTEM_ACCOUNT", "INVALID_ADJUSTMENT", "TOO_MANY_LOTS", "CEILING_EXCEEDED"),
        Conflict: ("IDEMPOTENCY_KEY_REUSED",)}),
)
def adjust(accountId: edge.PathAccountId, request: AdjustRequest, ctx: edge.Ctx) -> Response[BalanceChangeResponse]:
    result = adjustments.adjust(ctx, account_id=accountId, pool_id=request.poolId,
                                balance=request.balanceMicro, delta=request.deltaMicro, reason=request.reason,
                                idempotency_key=request.idempotencyKey)
    return edge.reply(BalanceChangeResponse, result)


@router.post(
    "/admin/billing/accounts/<accountId>/refund",
    summary="Refund (audited debit)",
    description="Debits the pool (a negative balance is allowed) and records a `refund` entry. With orderId "
    "the refund counts against that top-up, so the provider's own refund event later debits nothing twice, "
    "and it debits the pool the top-up credited (another poolId is 422 REFUND_POOL_MISMATCH). "
    "Money leaves through the provider's dashboard; this records the ledger side.",
    tags=["admin"],
    responses=edge.responses(RefundResponse, 200, {
        NotFound: ("TOPUP_NOT_FOUND",),
        InvalidInput: ("SYSTEM_ACCOUNT", "TOO_MANY_LOTS", "CEILING_EXCEEDED", "REFUND_POOL_MISMATCH"),
        Conflict: ("REFUND_EXCEEDS_PAYMENT", "REFUND_CONFLICT", "IDEMPOTENCY_KEY_REUSED")}),
)
def refund(accountId: edge.PathAccountId, request: RefundRequest, ctx: edge.Ctx) -> Response[RefundResponse]:
    result = refunds.refund(ctx, account_id=accountId, pool_id=request.poolId,
                            amount=request.amountMicro, reason=request.reason, order_id=request.orderId,
                            idempotency_key=request.idempotencyKey)
    return edge.reply(RefundResponse, result)


@router.get("/admin/billing/accounts/<accountId>/balance", summary="An account's balance", tags=["admin"],
            responses=edge.responses(OperatorBalanceResponse))
def balance(accountId: edge.PathId, poolId: edge.QueryPool = None) -> Response[OperatorBalanceResponse]:
    return edge.reply(OperatorBalanceResponse, balances.operator_balance(accountId, poolId))


@router.get("/admin/billing/accounts/<accountId>/history", summary="An account's ledger entries", tags=["admin"],
            responses=edge.responses(HistoryResponse, 200, {BadRequest: ("INVALID_CURSOR",)}))
def history(
    accountId: edge.PathId,
    poolId: edge.QueryPool = None,
    entryType: Annotated[EntryType | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=pagination.MAX_LENGTH)] = None,
) -> Response[HistoryResponse]:
    filters = [poolId, entryType]
    page = ledger_history.page(accountId, pool_id=poolId, entry_type=entryType,
                               limit=limit, start=pagination.decode(cursor, filters))
    return edge.reply(HistoryResponse, {"entries": page.entries,
                                        "pagination": pagination.info(limit, page.next_start, filters)})


@router.get("/admin/billing/config", summary="Billing mode and revenue shares", tags=["admin"],
            responses=edge.responses(ConfigResponse))
def get_config() -> Response[ConfigResponse]:
    return edge.reply(ConfigResponse, config.current())


@router.put("/admin/billing/config/mode", summary="Set the billing mode", tags=["admin"],
            responses=edge.responses(ModeChangeResponse, 200, {InvalidInput: ("INVALID_MODE",)}))
def set_mode(request: ModeRequest, ctx: edge.Ctx) -> Response[ModeChangeResponse]:
    return edge.reply(ModeChangeResponse, config.set_mode(ctx, request.mode))


@router.put(
    "/admin/billing/config/revenue-shares",
    summary="Set the revenue shares",
    description="Basis points of each finalized amount per system account; applies to reservations made "
    "after the change.",
    tags=["admin"],
    responses=edge.responses(SharesChangeResponse, 200, {InvalidInput: ("INVALID_REVENUE_SHARES",)}),
)
def set_revenue_shares(request: RevenueSharesRequest, ctx: edge.Ctx) -> Response[SharesChangeResponse]:
    return edge.reply(SharesChangeResponse, config.set_revenue_shares(ctx, request.shares))


lambda_handler = edge.handler(router, auth_kind="admin")
