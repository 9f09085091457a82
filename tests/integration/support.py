"""Helpers shared by the integration tests: API Gateway proxy events, table snapshots, lot and
ledger reads, and a worker-process entry point that runs one handler invocation per call (the
way Lambda gives every concurrent request its own execution environment).

Nothing here imports the billing core at module level, so spawned worker processes can import
this module cheaply and set their environment before the core is loaded.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "billing_core"
TEMPLATE = ROOT / "template.yaml"

# route -> (functions/<dir>, template logical id, method, resource path)
ROUTES: dict[str, tuple[str, str, str, str]] = {
    "reserve": ("reserve", "ReserveFunction", "POST", "/api/internal/billing/reserve"),
    "finalize": ("finalize", "FinalizeFunction", "POST", "/api/internal/billing/finalize"),
    "release": ("release", "ReleaseFunction", "POST", "/api/internal/billing/release"),
    "balance": ("balance", "BalanceFunction", "GET", "/api/billing/balance"),
    "history": ("history", "HistoryFunction", "GET", "/api/billing/history"),
    "pricing": ("pricing", "PricingFunction", "GET", "/api/billing/pricing"),
    "mint": ("admin", "AdminFunction", "POST", "/admin/billing/accounts/{accountId}/mint"),
    "mode": ("admin", "AdminFunction", "PUT", "/admin/billing/config/mode"),
}

SECRET_NAMES = (
    "BILLING_INTERNAL_JWT_SECRET",
    "BILLING_ADMIN_JWT_SECRET",
    "BILLING_ADMIN_JWT_SECRET_PREV",
    "BILLING_USER_JWT_SECRET",
)


def event(route: str, body: Any = None, *, token: str | None = None, query: dict | None = None,
          path: dict | None = None, raw_body: str | None = None, headers: dict | None = None) -> dict[str, Any]:
    """An API Gateway REST proxy event for `route`, as the Lambda service would pass it."""
    _, _, method, resource = ROUTES[route]
    concrete = resource
    for name, value in (path or {}).items():
        concrete = concrete.replace("{" + name + "}", value)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    return {
        "resource": resource, "path": concrete, "httpMethod": method, "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path, "stageVariables": None,
        "requestContext": {"requestId": uuid.uuid4().hex, "stage": "v1", "httpMethod": method,
                           "resourcePath": resource, "path": concrete},
        "body": raw_body if raw_body is not None else (json.dumps(body) if body is not None else None),
        "isBase64Encoded": False,
    }


def reply(result: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, parsed body, headers) of a proxy response."""
    body = json.loads(result["body"]) if result.get("body") else {}
    headers = dict(result.get("headers") or {})
    for name, values in (result.get("multiValueHeaders") or {}).items():  # API Gateway sends both maps
        headers.setdefault(name, values[-1])
    return result["statusCode"], body, headers


@contextlib.contextmanager
def in_process_moto(env: Mapping[str, str]) -> Iterator[Any]:
    """What the `aws` fixture gives, for a whole module: a patched in-process moto with the
    template's tables, seeded (shadow mode). Yields the DynamoDB client the core uses."""
    import pytest
    from billing_core import bootstrap, clock, config, dynamo
    from moto import mock_aws

    from devserver.engine import apply_moto_patches
    from devserver.template import create_tables

    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        mp.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
        apply_moto_patches()
        with mock_aws():
            dynamo.reset_client()
            config.invalidate()
            clock.reset()
            create_tables(dynamo.client(), TEMPLATE)
            bootstrap.seed()
            try:
                yield dynamo.client()
            finally:
                dynamo.reset_client()
                config.invalidate()
                clock.reset()


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
    """Every item of both tables of the in-process moto (raw attribute values), except the
    per-minute rate counters, which count requests by design.

    Read from moto's backend rather than through Scan: moto serializes scan responses slowly
    (~50 ms for a few dozen items) and the hostile-input table takes two snapshots per case.
    moto is pinned (devserver.engine refuses any other version)."""
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


def reservation(client: Any, reservation_id: str) -> dict[str, Any] | None:
    item = client.get_item(TableName="BillingTable", ConsistentRead=True,
                           Key={"pk": {"S": f"RES#{reservation_id}"}, "sk": {"S": "RES"}}).get("Item")
    return _plain(item) if item else None


# -- worker processes (multiprocessing, spawn) ------------------------------------------------

_handlers: dict[str, Any] = {}


def worker_init(env: dict[str, str], clock_offset: float = 0.0) -> None:
    """Runs once in each worker process: the function's environment, the layer on sys.path."""
    os.environ.update(env)
    for entry in (str(LAYER), str(ROOT)):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    from billing_core import clock

    clock.reset()
    clock.advance(clock_offset)


def _handler(directory: str) -> Any:
    if directory not in _handlers:
        spec = importlib.util.spec_from_file_location(f"handler_{directory}", ROOT / "functions" / directory / "app.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        _handlers[directory] = module.lambda_handler
    return _handlers[directory]


class _Context:
    function_name = "integration-worker"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:integration-worker"

    def __init__(self) -> None:
        self.aws_request_id = uuid.uuid4().hex

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def worker_invoke(route: str, kwargs: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str], int]:
    """One handler invocation in this worker process: (status, body, headers, pid)."""
    directory = ROUTES[route][0]
    status, body, headers = reply(_handler(directory)(event(route, **kwargs), _Context()))
    return status, body, headers, os.getpid()


def worker_seed() -> dict[str, list[str]]:
    """Seed the tables from a worker, as the bootstrap custom resource would."""
    from billing_core import bootstrap

    return bootstrap.seed()
