"""Helpers shared by the integration tests: API Gateway proxy events, table snapshots, lot and
ledger reads, and a worker-process entry point that runs one handler invocation per call (the
way Lambda gives every concurrent request its own execution environment).

Nothing here imports the billing core at module level, so spawned worker processes can import
this module cheaply and set their environment before the core is loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from devserver.invoke import event, invoke, reply

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "billing_core"
TEMPLATE = ROOT / "template.yaml"

SECRET_NAMES = (
    "BILLING_INTERNAL_JWT_SECRET",
    "BILLING_ADMIN_JWT_SECRET",
    "BILLING_ADMIN_JWT_SECRET_PREV",
    "BILLING_USER_JWT_SECRET",
)


T = TypeVar("T")


@contextlib.contextmanager
def worker_pool(workers: int = 8) -> Iterator[tuple[Any, Any]]:
    """(engine, runner): the serialized moto server with the template's queues and tables (or, on
    DynamoDB Local, the tables there: support.Engines), seeded
    like a new deployment, and `workers` spawned Lambda worker processes (one invocation each at a
    time) with the test environment. Concurrency tests interleave requests through it."""
    from devserver.runner import WorkerPoolRunner
    from tests.conftest import TEST_ENV

    environ = {k: v for k, v in TEST_ENV.items() if not k.startswith("AWS_")}
    with engines() as engine:
        runner = WorkerPoolRunner(TEMPLATE, workers=workers, moto_url=engine.url, environ=environ,
                                  secrets={k: TEST_ENV[k] for k in SECRET_NAMES}, log_errors=True,
                                  dynamodb_url=engine.dynamodb_url)
        runner.start()
        try:
            runner.call("billing_core.ledger.bootstrap:seed")
            yield engine, runner
        finally:
            runner.stop()


def engine_name() -> str:
    """The DynamoDB engine of this test run: BILLING_LOCAL_ENGINE (moto unless it says dynamodb-local)."""
    from devserver.dynamodb_local import selected_engine

    return selected_engine()


class Engines:
    """The servers of one test: moto's (SQS, and DynamoDB unless the run is on DynamoDB Local)
    and, on DynamoDB Local, its URL. `client(service)` reaches where that service lives."""

    def __init__(self, moto: Any, dynamodb_url: str | None) -> None:
        self.moto = moto
        self.url = moto.url
        self.dynamodb_url = dynamodb_url

    def client(self, service: str = "dynamodb") -> Any:
        if service == "dynamodb" and self.dynamodb_url is not None:
            from devserver.dynamodb_local import shared_instance

            return shared_instance().client()
        return self.moto.client(service)

    def environment(self) -> dict[str, str]:
        """The endpoint variables of a process that should use these servers."""
        env = {"AWS_ENDPOINT_URL": self.url}
        if self.dynamodb_url is not None:
            env["AWS_ENDPOINT_URL_DYNAMODB"] = self.dynamodb_url
        return env


@contextlib.contextmanager
def engines() -> Iterator[Engines]:
    """Moto's serialized server with the template's queues, and the template's tables, empty, on
    the engine of this run (moto's server, or this process's DynamoDB Local)."""
    from devserver import dynamodb_local
    from devserver.engine import serialized_engine

    with serialized_engine() as engine:
        engine.create_queues(TEMPLATE)
        if engine_name() == dynamodb_local.DYNAMODB_LOCAL:
            local = dynamodb_local.shared_instance()
            local.reset(TEMPLATE)
            yield Engines(engine, local.url)
        else:
            engine.create_tables(TEMPLATE)
            yield Engines(engine, None)


def together(calls: list[Callable[[], T]]) -> list[T]:
    """Release all calls at once, each from its own thread (a barrier), and collect the results in order."""
    barrier = threading.Barrier(len(calls))

    def one(call: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))


@contextlib.contextmanager
def in_process_moto(env: Mapping[str, str]) -> Iterator[Any]:
    """What the `aws` fixture gives, for a whole module: a patched in-process moto with the
    template's tables, seeded (shadow mode). Yields the DynamoDB client the core uses."""
    import pytest

    from devserver.inprocess import billing_backend

    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        mp.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
        with billing_backend(TEMPLATE) as client:
            yield client


# -- state reads (any DynamoDB client: in-process moto or the engine) ------------------------


def scan(client: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def snapshot_in_process() -> dict[tuple[str, str, str], str]:
    """Every item of both tables of the in-process backend (raw attribute values), except the
    per-minute rate counters, which count requests by design.

    On moto, read from moto's backend rather than through Scan: moto serializes scan responses
    slowly (~50 ms for a few dozen items) and the hostile-input table takes two snapshots per
    case (moto is pinned: devserver.engine refuses any other version). DynamoDB Local is scanned."""
    if engine_name() != "moto":
        from billing_core.store import dynamo

        state = {}
        for table in ("BillingTable", "LedgerTable"):
            for item in scan(dynamo.client(), table):
                pk, sk = item["pk"]["S"], item["sk"]["S"]
                if not pk.startswith("RATE#"):
                    state[(table, pk, sk)] = json.dumps(item, sort_keys=True)
        return state
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    state = {}
    for table in ("BillingTable", "LedgerTable"):
        for item in backend.get_table(table).all_items():
            attributes = item.to_json()["Attributes"]
            pk, sk = attributes["pk"]["S"], attributes["sk"]["S"]
            if pk.startswith("RATE#"):
                continue
            state[(table, pk, sk)] = json.dumps(attributes, sort_keys=True)
    return state


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


# -- worker processes (multiprocessing, spawn) ------------------------------------------------

def worker_init(env: dict[str, str], clock_offset: float = 0.0) -> None:
    """Runs once in each worker process: the function's environment, the layer on sys.path."""
    os.environ.update(env)
    for entry in (str(LAYER), str(ROOT)):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    from billing_core.kernel import clock

    clock.reset()
    clock.advance(clock_offset)


def worker_invoke(route: str, kwargs: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str], int]:
    """One handler invocation in this worker process: (status, body, headers, pid)."""
    status, body, headers = reply(invoke(route, event(route, **kwargs)))
    return status, body, headers, os.getpid()


def worker_seed() -> dict[str, list[str]]:
    """Seed the tables from a worker, as the bootstrap custom resource would."""
    from billing_core.ledger import bootstrap

    return bootstrap.seed()
