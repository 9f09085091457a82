"""GET /api/billing/balance - the caller's balance per pool."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from billing_core.api import edge as http
from billing_core.ledger import balances
from billing_core.store import keys

router = http.router()


@router.get("/api/billing/balance", summary="Balance of the caller's account", tags=["user"])
def balance(
    poolId: Annotated[str | None, Query(pattern=keys.POOL_PATTERN, max_length=64)] = None,
    accountId: Annotated[str | None, Query(max_length=128)] = None,
):
    account_id = http.user_account(accountId)
    return http.json_response(balances.balance(account_id, poolId))


lambda_handler = http.handler(router, auth_kind="user")
