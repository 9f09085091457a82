"""An account's history: its ledger entries, newest first, one page at a time (one Query;
filters by pool or type use the ledger's indexes)."""

from __future__ import annotations

from typing import Any

from billing_core.ledger.model import HistoryPage
from billing_core.store import entries as entry_store


def page(account_id: str, *, pool_id: str | None, entry_type: str | None, limit: int,
         start: dict[str, Any] | None) -> HistoryPage:
    return entry_store.history(account_id, pool_id=pool_id, entry_type=entry_type, limit=limit, start=start)
