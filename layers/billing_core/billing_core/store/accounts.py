"""Account-level items (BillingTable, partition `ACCT#<account>`): the system account marker
(`ACCOUNT`) and lifetime totals (`TOTALS`: lifetimePaid, lifetimeRefunded), outside the `BAL#`
prefix so balance reads never see them. Only payments and refunds move the totals."""

from __future__ import annotations

from billing_core.kernel import settings
from billing_core.store import dynamo, keys


def _table() -> str:
    return settings.get().billing_table


def seed_system_account(account_id: str, at: str) -> bool:
    return dynamo.put_item(_table(), {**keys.system_account_key(account_id), "accountId": account_id,
                                      "entityType": "system", "createdAt": at}, condition="attribute_not_exists(pk)")


def lifetime_totals(account_id: str) -> tuple[int, int]:
    """(lifetime paid, lifetime refunded): one GetItem."""
    item = dynamo.get(_table(), keys.account_totals_key(account_id)) or {}
    return int(item.get("lifetimePaid", 0)), int(item.get("lifetimeRefunded", 0))


def add_paid(account_id: str, amount: int) -> dynamo.Action:
    return dynamo.update(_table(), keys.account_totals_key(account_id), "ADD lifetimePaid :a",
                         values={":a": amount}, tag="totals")


def add_refunded(account_id: str, amount: int) -> dynamo.Action:
    return dynamo.update(_table(), keys.account_totals_key(account_id), "ADD lifetimeRefunded :d",
                         values={":d": amount}, tag="totals")
