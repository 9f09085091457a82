"""The one bounded retry holds every request to a known number of DynamoDB calls: a table that
refuses every write (transaction conflicts, throttling) costs at most retry.ATTEMPTS attempts,
then the caller gets 503 CONTENTION and nothing moved. No moto: a fake DynamoDB client that
counts what it is asked."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from billing_core.kernel import retry
from billing_core.kernel.errors import Contention
from billing_core.store import dynamo
from botocore.exceptions import ClientError

from tests.support.handlers import Api
from tests.support.tokens import Tokens


class RefusingTable:
    """Reads find nothing; every write is refused for a passing reason."""

    def __init__(self, refusal: str) -> None:
        self.refusal = refusal
        self.calls: Counter[str] = Counter()

    def _refuse(self, operation: str, **kwargs: Any) -> Any:
        self.calls[operation] += 1
        if self.refusal == "conflict" and operation == "TransactWriteItems":
            reasons = [{"Code": "TransactionConflict"} for _ in kwargs["TransactItems"]]
            raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                               "CancellationReasons": reasons}, operation)
        code = {"conflict": "TransactionConflictException",
                "throttle": "ProvisionedThroughputExceededException"}[self.refusal]
        raise ClientError({"Error": {"Code": code, "Message": self.refusal}}, operation)

    def transact_write_items(self, **kwargs: Any) -> Any:
        return self._refuse("TransactWriteItems", **kwargs)

    def update_item(self, **kwargs: Any) -> Any:
        return self._refuse("UpdateItem", **kwargs)

    def put_item(self, **kwargs: Any) -> Any:
        return self._refuse("PutItem", **kwargs)

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls["GetItem"] += 1
        return {}

    def query(self, **kwargs: Any) -> dict[str, Any]:
        self.calls["Query"] += 1
        return {"Items": []}


@pytest.fixture(params=["conflict", "throttle"])
def table(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> RefusingTable:
    fake = RefusingTable(request.param)
    monkeypatch.setattr(dynamo, "_client", fake)
    monkeypatch.setattr(retry, "BASE_PAUSE_SECONDS", 0.0)
    return fake


def test_an_attempt_runs_at_most_attempts_times_then_contention():
    runs = []

    def attempt() -> None:
        runs.append(1)
        raise retry.Again("moved")

    with pytest.raises(Contention):
        retry.bounded(attempt, what="the thing")
    assert len(runs) == retry.ATTEMPTS


def test_nested_retries_do_not_multiply():
    inner_runs, outer_runs = [], []

    def inner() -> None:
        inner_runs.append(1)
        raise retry.Again("inner state moved")

    def outer() -> None:
        outer_runs.append(1)
        retry.bounded(inner, what="inner")

    with pytest.raises(Contention):
        retry.bounded(outer, what="outer")
    assert len(outer_runs) == len(inner_runs) == retry.ATTEMPTS  # not ATTEMPTS ** 2


def test_reserve_on_a_refusing_table_is_503_after_the_stated_number_of_calls(table: RefusingTable):
    """reserve: one GetItem of the config, then per attempt one Query of the pool and one
    TransactWriteItems (the rate counter rides inside it): 1 + 2 x ATTEMPTS calls."""
    reply = Api().call("reserve", {"accountId": "acct-bound", "estimatedCostMicro": "1000"},
                       token=Tokens.internal("svc-bound"))
    assert (reply.status, reply.code) == (503, "CONTENTION"), reply.body
    assert table.calls == {"GetItem": 1, "Query": retry.ATTEMPTS, "TransactWriteItems": retry.ATTEMPTS}


def test_a_read_only_request_charges_its_rate_counter_within_the_bound(table: RefusingTable):
    """An admin read counts its rate counter with one UpdateItem, which one of the same admin's
    transactions can refuse on real DynamoDB: sent again at most ATTEMPTS times, then 503, never 500."""
    reply = Api().call("config", token=Tokens.admin("ops-bound"))
    assert (reply.status, reply.code) == (503, "CONTENTION"), reply.body
    assert table.calls == {"GetItem": 1, "UpdateItem": retry.ATTEMPTS}
