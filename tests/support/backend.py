"""The in-process backend for a whole module: what the `aws` fixture gives one test (a patched
moto with the template's tables, seeded), and a snapshot of its tables read from moto itself."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from tests.support.engines import engine_name
from tests.support.env import TEMPLATE
from tests.support.tables import scan


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
        mp.delenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", raising=False)
        with billing_backend(TEMPLATE) as client:
            yield client


def snapshot_in_process() -> dict[tuple[str, str, str], str]:
    """Every item of both tables of the in-process backend (raw attribute values), except the
    per-minute rate counters, which count requests by design.

    On moto, read from moto's backend rather than through Scan: moto serializes scan responses
    slowly (~50 ms for a few dozen items) and the hostile-input table takes two snapshots per
    case (moto is pinned: devserver.engine refuses any other version). DynamoDB Local is scanned."""
    if engine_name() != "moto":
        from billing_core.store import dynamo

        found = {}
        for table in ("BillingTable", "LedgerTable"):
            for item in scan(dynamo.client(), table):
                pk, sk = item["pk"]["S"], item["sk"]["S"]
                if not pk.startswith("RATE#"):
                    found[(table, pk, sk)] = json.dumps(item, sort_keys=True)
        return found
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
