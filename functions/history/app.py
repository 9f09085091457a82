"""GET /api/billing/history - the caller's ledger entries, newest first."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from billing_core.api import edge, pagination
from billing_core.api.models.ledger import HistoryResponse
from billing_core.kernel.errors import BadRequest, Forbidden
from billing_core.ledger import history as ledger_history
from billing_core.ledger.model import EntryType

router = edge.router()


@router.get("/api/billing/history", summary="Ledger history of the caller's account", tags=["user"],
            responses=edge.responses(HistoryResponse, 200, {Forbidden: ("ACCOUNT_SCOPE",),
                                                            BadRequest: ("INVALID_CURSOR",)}))
def history(
    poolId: edge.QueryPool = None,
    entryType: Annotated[EntryType | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=pagination.MAX_LENGTH)] = None,
    accountId: edge.QueryId = None,
) -> Response[HistoryResponse]:
    filters = [poolId, entryType]
    page = ledger_history.page(edge.own_account(accountId), pool_id=poolId, entry_type=entryType, limit=limit,
                               start=pagination.decode(cursor, filters))
    return edge.reply(HistoryResponse, {"entries": page.entries,
                                        "pagination": pagination.info(limit, page.next_start, filters)})


lambda_handler = edge.handler(router, auth_kind="user")
