"""GET /api/billing/balance - the caller's balance per pool."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from billing_core.api import edge
from billing_core.api.models.ledger import BalanceResponse
from billing_core.kernel import ids
from billing_core.ledger import balances

router = edge.router()


@router.get("/api/billing/balance", summary="Balance of the caller's account", tags=["user"])
def balance(
    poolId: Annotated[str | None, Query(pattern=ids.POOL_PATTERN, max_length=ids.POOL_MAX)] = None,
    accountId: Annotated[str | None, Query(max_length=ids.ID_MAX)] = None,
) -> Response[BalanceResponse]:
    return edge.reply(BalanceResponse, balances.balance(edge.own_account(accountId), poolId))


lambda_handler = edge.handler(router, auth_kind="user")
