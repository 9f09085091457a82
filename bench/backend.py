"""The backend every measurement runs against, and the workload it serves.

One setup: devserver.inprocess.billing_backend, the tests' own (patched in-process moto, the
template's tables and queues, seeded like a new deployment). More sets of the template's tables
can live in the same engine (table_set), for the finalize-cost comparison. The workload: a live
account with plenty of credit, reserve/finalize requests of fixed sizes, warm pairs of them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import harness

ACCOUNT = "acct-bench"
POOL = "general"
ESTIMATE = 1_000
ACTUAL = 700
MINT = 100_000_000_000  # plenty for every reserve/finalize of the run (the ceiling is 1e12)


@contextlib.contextmanager
def fresh() -> Iterator[Any]:
    """A fresh in-process moto with the template's tables, seeded like a new deployment; yields
    the DynamoDB client the core uses."""
    from devserver.inprocess import billing_backend

    with billing_backend(harness.TEMPLATE) as client:
        yield client


def create_table_set(client: Any, suffix: str) -> dict[str, str]:
    """Another copy of the template's tables (named <logical id>-<suffix>) in the same engine;
    returns the environment that points the app at them."""
    from devserver.template import table_definitions

    names = {}
    for logical_id, spec in table_definitions(harness.TEMPLATE).items():
        name = f"{logical_id}-{suffix}"
        client.create_table(**{**{k: v for k, v in spec.items() if k != "TimeToLive"}, "TableName": name})
        names[logical_id] = name
    return {"BILLING_TABLE": names["BillingTable"], "LEDGER_TABLE": names["LedgerTable"]}


@contextlib.contextmanager
def table_set(names: dict[str, str]) -> Iterator[None]:
    """Point the app at another pair of tables (kernel.settings.get() follows the environment)."""
    from billing_core.ledger import config

    saved = {k: os.environ[k] for k in names}
    os.environ.update(names)
    config.invalidate()  # the config item lives in the billing table
    try:
        yield
    finally:
        os.environ.update(saved)
        config.invalidate()


def count(client: Any, **kwargs: Any) -> int:
    """Items a Query (with KeyConditionExpression) or a Scan finds, all pages (Select=COUNT)."""
    total = 0
    while True:
        page = client.query(**kwargs) if "KeyConditionExpression" in kwargs else client.scan(**kwargs)
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    logger = logging.getLogger(harness.BENCH_ENV["POWERTOOLS_SERVICE_NAME"])
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


# -- the workload ------------------------------------------------------------------------------


def go_live(account: str, amount: int = MINT) -> None:
    admin = harness.admin_token()
    harness.expect("mode", {"mode": "live"}, 200, token=admin)
    harness.expect("mint", {"amountMicro": str(amount), "poolId": POOL, "sourceType": "deposit",
                            "description": "bench credit"}, 201, token=admin, path={"accountId": account})


def reserve_body(rid: str, account: str = ACCOUNT) -> dict[str, Any]:
    return {"accountId": account, "poolId": POOL, "estimatedCostMicro": str(ESTIMATE), "reservationId": rid}


def finalize_body(rid: str) -> dict[str, Any]:
    return {"reservationId": rid, "actualCostMicro": str(ACTUAL)}


def pair(token: str, account: str = ACCOUNT) -> str:
    """One reserve and its finalize through the handlers; returns the reservation id."""
    rid = harness.new_reservation_id()
    harness.expect("reserve", reserve_body(rid, account), 201, token=token)
    harness.expect("finalize", finalize_body(rid), 200, token=token)
    return rid


def pair_events(token: str, account: str = ACCOUNT) -> tuple[dict[str, Any], dict[str, Any]]:
    """The proxy events of one reserve and its finalize, for timing the handlers directly."""
    rid = harness.new_reservation_id()
    return (harness.event("reserve", reserve_body(rid, account), token=token),
            harness.event("finalize", finalize_body(rid), token=token))
