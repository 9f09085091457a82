"""Low-balance alert items (BillingTable, beside an account's balance but outside its BAL# prefix):

- `ACCT#<account>` / `ALERTS`: the account's own threshold (`lowBalanceMicro`), set by an operator;
- `ACCT#<account>` / `LOWBAL#<pool>`: whether the pool was last seen below it (`low`) and how many
  times it went below (`crossings`). Written only when that changes, conditioned on what was read,
  so each crossing is claimed once however often the dispatcher sees it.
"""

from __future__ import annotations

from typing import Any

from billing_core.kernel import settings
from billing_core.store import dynamo, keys


def _table() -> str:
    return settings.get().billing_table


def threshold(account_id: str) -> int | None:
    item = dynamo.get(_table(), keys.alerts_key(account_id))
    value = (item or {}).get("lowBalanceMicro")
    return int(value) if value is not None else None


def set_threshold(account_id: str, micro: int | None, at: str, by: str) -> None:
    if micro is None:
        dynamo.update_item(_table(), keys.alerts_key(account_id), "REMOVE lowBalanceMicro SET updatedAt = :now, "
                           "updatedBy = :by, accountId = :acct", values={":now": at, ":by": by, ":acct": account_id})
        return
    dynamo.update_item(_table(), keys.alerts_key(account_id),
                       "SET lowBalanceMicro = :m, updatedAt = :now, updatedBy = :by, accountId = :acct",
                       values={":m": micro, ":now": at, ":by": by, ":acct": account_id})


def read(account_id: str, pool_id: str) -> tuple[int | None, dict[str, Any]]:
    """(the account's own threshold, the pool's low-balance state) in one BatchGetItem."""
    alerts, state = keys.alerts_key(account_id), keys.low_balance_key(account_id, pool_id)
    found, complete = dynamo.batch_get(_table(), [alerts, state])
    if not complete:
        raise dynamo.Refused("UnprocessedKeys")
    own = found.get((alerts["pk"], alerts["sk"]), {}).get("lowBalanceMicro")
    return (int(own) if own is not None else None), found.get((state["pk"], state["sk"]), {})


def claim(account_id: str, pool_id: str, *, low: bool, seen_crossings: int, available: int, limit: int,
          at: str) -> bool:
    """Record that the pool went below its threshold (low=True: crossings + 1) or back above it,
    if its state is still what was read. False: another run recorded this change first."""
    if low:
        condition = "attribute_not_exists(crossings)" if seen_crossings == 0 else "crossings = :seen AND low = :no"
    else:
        condition = "crossings = :seen AND low = :yes"
    values: dict[str, Any] = {":low": low, ":n": seen_crossings + (1 if low else 0), ":a": available, ":t": limit,
                              ":now": at, ":acct": account_id, ":pool": pool_id}
    if seen_crossings or not low:
        values[":seen"] = seen_crossings
        values[":no" if low else ":yes"] = not low
    try:
        dynamo.update_item(
            _table(), keys.low_balance_key(account_id, pool_id),
            "SET low = :low, crossings = :n, availableMicro = :a, thresholdMicro = :t, updatedAt = :now, "
            "accountId = :acct, poolId = :pool", condition=condition, values=values)
    except dynamo.ConditionFailed:
        return False
    return True
