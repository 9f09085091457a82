"""The tables' state as plain Python, through any DynamoDB client (in-process moto or the
engine): lots and their invariant, ledger entries, reservations."""

from __future__ import annotations

from typing import Any


def scan(client: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, av in item.items():
        (kind, raw), = av.items()
        if kind == "N":
            out[name] = int(raw)
        elif kind == "S":
            out[name] = raw
        elif kind == "M":
            out[name] = _plain(raw)
        elif kind == "L":
            out[name] = [_plain({"v": v})["v"] for v in raw]
        elif kind == "NULL":
            out[name] = None
        else:
            out[name] = raw
    return out


def lots(client: Any, account: str, pool: str = "general") -> list[dict[str, Any]]:
    page = client.query(
        TableName="BillingTable", ConsistentRead=True,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={":pk": {"S": f"ACCT#{account}"}, ":p": {"S": f"BAL#{pool}#LOT#"}},
    )
    return [_plain(i) for i in page["Items"]]


def lot_totals(client: Any, account: str, pool: str = "general") -> dict[str, int]:
    found = lots(client, account, pool)
    totals = {f: sum(lot[f] for lot in found) for f in ("original", "available", "reserved", "consumed")}
    totals["count"] = len(found)
    return totals


def assert_lot_invariant(client: Any, account: str, pool: str = "general") -> None:
    for lot in lots(client, account, pool):
        assert lot["original"] == lot["available"] + lot["reserved"] + lot["consumed"], lot
        assert min(lot["available"], lot["reserved"], lot["consumed"]) >= 0, lot


def ledger(client: Any) -> list[dict[str, Any]]:
    return [_plain(i) for i in scan(client, "LedgerTable")]


def entries_for(client: Any, reservation_id: str) -> list[dict[str, Any]]:
    return [e for e in ledger(client) if e.get("reservationId") == reservation_id]


def revenue_shares(client: Any, reservation_id: str) -> dict[str, int]:
    """System account -> share of one finalized reservation, as the ledger records it: the
    finalize entry's `revenueShares` (or, written by earlier deployments, one entry per share)."""
    shares: dict[str, int] = {}
    for entry in entries_for(client, reservation_id):
        if entry["entryType"] in ("revenue_share", "commons_contribution"):
            assert entry["accountId"] not in shares, entry
            shares[entry["accountId"]] = entry["amountMicro"]
        for account, share in (entry.get("revenueShares") or {}).items():
            assert account not in shares, entry
            shares[account] = share["amountMicro"]
    return shares


def reservation(client: Any, reservation_id: str) -> dict[str, Any] | None:
    item = client.get_item(TableName="BillingTable", ConsistentRead=True,
                           Key={"pk": {"S": f"RES#{reservation_id}"}, "sk": {"S": "RES"}}).get("Item")
    return _plain(item) if item else None
