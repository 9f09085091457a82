"""GET /api/billing/history - the caller's ledger entries, newest first."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from billing_core.api import edge as http
from billing_core.ledger import entries
from billing_core.store import keys

router = http.router()


@router.get("/api/billing/history", summary="Ledger history of the caller's account", tags=["user"])
def history(
    poolId: Annotated[str | None, Query(pattern=keys.POOL_PATTERN, max_length=64)] = None,
    entryType: Annotated[Literal[entries.ENTRY_TYPES] | None, Query()] = None,  # type: ignore[valid-type]
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    accountId: Annotated[str | None, Query(max_length=128)] = None,
):
    account_id = http.user_account(accountId)
    page, next_cursor, has_more = entries.history(
        account_id, pool_id=poolId, entry_type=entryType, limit=limit, cursor=cursor
    )
    return http.json_response(
        {"entries": page, "pagination": {"limit": limit, "nextCursor": next_cursor, "hasMore": has_more}}
    )


lambda_handler = http.handler(router, auth_kind="user")
