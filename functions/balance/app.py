"""GET /api/billing/balance - the caller's balance per pool."""

from aws_lambda_powertools.event_handler import Response
from billing_core.api import edge
from billing_core.api.models.ledger import BalanceResponse
from billing_core.kernel.errors import Forbidden
from billing_core.ledger import balances

router = edge.router()


@router.get("/api/billing/balance", summary="Balance of the caller's account", tags=["user"],
            responses=edge.responses(BalanceResponse, 200, {Forbidden: ("ACCOUNT_SCOPE",)}))
def balance(poolId: edge.QueryPool = None, accountId: edge.QueryId = None) -> Response[BalanceResponse]:
    return edge.reply(BalanceResponse, balances.balance(edge.own_account(accountId), poolId))


lambda_handler = edge.handler(router, auth_kind="user")
