"""Write capacity of the reserve and finalize transactions: every item a TransactWriteItems
touches is read before and after it (with a side client), and priced by bench/capacity.py."""

from __future__ import annotations

import math
from typing import Any

import capacity
import harness
from backend import finalize_body, pair, reserve_body
from harness import Recorder, expect, new_reservation_id, say


class WriteCapture:
    """Before/after images of every item a TransactWriteItems touches (read with a side client);
    fed by harness.Recorder's on_params."""

    def __init__(self, side: Any, table_keys: dict[str, tuple[str, ...]]) -> None:
        self.side = side
        self.table_keys = table_keys
        self.actions: list[dict[str, Any]] = []

    def on_params(self, op: str, params: dict[str, Any]) -> None:
        if op != "TransactWriteItems":
            return
        for wrapped in params["TransactItems"]:
            (kind, body), = wrapped.items()
            table = body["TableName"]
            key = {k: body["Item"][k] for k in self.table_keys[table]} if kind == "Put" else body["Key"]
            self.actions.append({"kind": kind, "table": table, "key": key, "before": self._get(table, key)})

    def _get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        return self.side.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    def finish(self) -> list[dict[str, Any]]:
        for action in self.actions:
            action["after"] = self._get(action["table"], action["key"])
        done, self.actions = self.actions, []
        return done


def _label(action: dict[str, Any]) -> str:
    pk, sk = action["key"]["pk"]["S"], action["key"]["sk"]["S"]
    item = action.get("after") or action.get("before") or {}
    if action["table"] == "LedgerTable":
        kind = item.get("entryType", {}).get("S", "?")
        return f"entry {kind} ({pk.split('#')[1]}{' shard' if pk.count('#') > 1 else ''})"
    if pk.startswith("RES#"):
        return "reservation"
    if pk.startswith("RATE#"):
        return "rate counter"
    if pk.startswith("IDEM#"):
        return "idempotency record"
    if "#LOT#" in sk:
        return "lot"
    if sk.endswith("#DEBT"):
        return "debt"
    return f"{pk}/{sk}"


def _transaction_cost(actions: list[dict[str, Any]], indexes: dict) -> list[capacity.ActionCost]:
    return [capacity.action_cost(a["kind"], a["table"], _label(a), a["before"], a["after"], indexes)
            for a in actions]


READS: dict[str, float] = {}  # read request units of each operation of the last live pair


def _read_units(responses: dict[str, dict[str, Any]]) -> float:
    """Read request units of the reads a request made: a strongly consistent read costs one unit
    per 4 KB of the items it returned (rounded up, at least one)."""
    total = 0.0
    for op in ("Query", "GetItem"):
        response = responses.get(op)
        if response is None:
            continue
        items = response.get("Items") or ([response["Item"]] if response.get("Item") else [])
        total += max(1, math.ceil(sum(capacity.item_size(i) for i in items) / 4096))
    return total


def measure_wcu(client: Any) -> dict[str, int]:
    import boto3

    from devserver.template import table_definitions

    defs = table_definitions(harness.TEMPLATE)
    table_keys = {name: tuple(k["AttributeName"] for k in spec["KeySchema"]) for name, spec in defs.items()}
    indexes = capacity.indexes_from_template(harness.TEMPLATE)
    capture = WriteCapture(boto3.client("dynamodb"), table_keys)
    token = harness.internal_token()
    admin = harness.admin_token()

    def one_pair() -> dict[str, list[capacity.ActionCost]]:
        pair(token)  # warm
        rid = new_reservation_id()
        out = {}
        with Recorder(client, on_params=capture.on_params) as rec:
            expect("reserve", reserve_body(rid), 201, token=token)
            out["reserve"] = _transaction_cost(capture.finish(), indexes)
            READS["reserve"] = _read_units(rec.responses)
            rec.responses.clear()
            expect("finalize", finalize_body(rid), 200, token=token)
            out["finalize"] = _transaction_cost(capture.finish(), indexes)
            READS["finalize"] = _read_units(rec.responses)
        return out

    live = one_pair()
    expect("mode", {"mode": "shadow"}, 200, token=admin)
    shadow = one_pair()
    expect("mode", {"mode": "live"}, 200, token=admin)

    say()
    say("== Write capacity per transaction (live mode; captured TransactItems + item images) ==")
    say("   item size = sum(len(attr name) + value size); N = ceil(significant digits/2)+1 bytes;")
    say("   M/L = 3 + 1 per element; each write billed on max(size before, size after) in 1 KB units,")
    say("   x2 for a transactional write. GSI: one write per index entry added/changed/removed, in 1 KB")
    say("   units of the projected entry, not doubled: LedgerTable by-pool (ALL) for every entry and")
    say("   by-type (ALL) for the rare types (not reserve/finalize), and BillingTable pending-by-expiry")
    say("   (KEYS_ONLY): reserve adds the reservation's")
    say("   entry, finalize removes it (REMOVE pendingPk). Both are included in the totals below.")
    totals: dict[str, int] = {}
    for op, costs in live.items():
        say(f"   {op}: {len(costs)} actions")
        for c in costs:
            gsi = ", ".join(f"{k} {v}" for k, v in c.gsi.items()) or "-"
            say(f"     {c.kind:<7} {c.table:<12} {c.label:<44} {c.before:>5} -> {c.after:>5} B  "
                f"{c.base_wcu} WCU  GSI: {gsi}")
        base = sum(c.base_wcu for c in costs)
        ledger_gsi = sum(v for c in costs if c.table == "LedgerTable" for v in c.gsi.values())
        other_gsi = sum(v for c in costs if c.table != "LedgerTable" for v in c.gsi.values())
        totals[op] = base + ledger_gsi + other_gsi
        say(f"     total {totals[op]} WCU = {base} transactional + {ledger_gsi} LedgerTable GSI + "
            f"{other_gsi} pending-by-expiry GSI   (LedgerTable GSIs only: {base + ledger_gsi})")
    for op, costs in shadow.items():
        say(f"   informational, shadow mode {op}: {sum(c.total for c in costs)} WCU "
            f"({len(costs)} actions: {', '.join(c.label for c in costs)})")
    return totals
