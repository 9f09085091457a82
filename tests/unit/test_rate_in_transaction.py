"""A money transaction carries the caller's rate counter as one more action. When it is
cancelled, the counter decides the answer only if it was the sole refusal: a re-sent request
whose guard (idempotency record, reservation status) also refused is answered from that guard,
not as 429 over the limit."""

from __future__ import annotations

from typing import Any

import pytest
from billing_core.kernel.context import Caller, Context
from billing_core.kernel.errors import RateLimited
from billing_core.store import dynamo, transaction
from billing_core.store.ratelimit import RateCharge


def cancelled_with(monkeypatch: pytest.MonkeyPatch, *tags: str) -> list[list[str]]:
    sent: list[list[str]] = []

    def transact(actions: Any) -> None:
        sent.append([a.tag for a in actions])
        raise dynamo.TransactionCancelled({tag: "ConditionalCheckFailed" for tag in tags})

    monkeypatch.setattr(dynamo, "transact", transact)
    return sent


def context() -> Context:
    return Context(Caller("internal", "svc"), rate=RateCharge("billing", "internal", "svc", limit=200, window=1))


def money() -> list[dynamo.Action]:
    return [dynamo.put("billing", {"pk": "A", "sk": "B"}, tag="idempotency", condition="attribute_not_exists(pk)")]


def test_the_counter_alone_refusing_is_429(monkeypatch: pytest.MonkeyPatch):
    sent = cancelled_with(monkeypatch, "rate")
    with pytest.raises(RateLimited):
        transaction.commit(money(), context())
    assert sent == [["idempotency", "rate"]]


def test_another_refusal_beside_the_counter_decides(monkeypatch: pytest.MonkeyPatch):
    cancelled_with(monkeypatch, "rate", "idempotency")
    ctx = context()
    with pytest.raises(dynamo.TransactionCancelled) as refused:
        transaction.commit(money(), ctx)
    assert refused.value.failed == {"idempotency": "ConditionalCheckFailed"}
    assert not ctx.rate.charged


def test_a_charged_request_does_not_count_twice(monkeypatch: pytest.MonkeyPatch):
    sent = cancelled_with(monkeypatch, "idempotency")
    ctx = context()
    ctx.rate.charged = True
    with pytest.raises(dynamo.TransactionCancelled):
        transaction.commit(money(), ctx)
    assert sent == [["idempotency"]]
