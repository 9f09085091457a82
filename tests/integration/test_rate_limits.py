"""Per-caller limits: 200 requests a minute per internal service, 30 per admin, counted in
DynamoDB so they hold across every Lambda instance. The request over the limit is answered 429
with Retry-After and moves no money; other callers are unaffected; the next minute starts over."""

from __future__ import annotations

import importlib.util
import json
import math
import multiprocessing
import time
from collections import Counter
from typing import Any

import pytest
from billing_core.kernel import clock

from devserver.invoke import LambdaContext, event
from tests.support.engines import engines
from tests.support.env import ROOT, TEST_ENV
from tests.support.handlers import handler_module
from tests.support.tables import entries_for, ledger, lot_totals, lots, reservation, scan
from tests.support.tokens import Tokens
from tests.support.workers import worker_init, worker_invoke, worker_seed

ACCOUNT = "acct-rate"


def start_of_next_minute() -> None:
    """Move this process's clock to second 1 of the next minute window, so a burst of requests
    cannot straddle a window boundary (the clock is per process)."""
    now = clock.now()
    clock.advance(math.floor(now / 60) * 60 + 61 - now)


class Result:
    def __init__(self, proxy: dict[str, Any]) -> None:
        self.status = proxy["statusCode"]
        self.body = json.loads(proxy["body"]) if proxy.get("body") else {}
        # API Gateway sends both maps; Powertools' REST resolver fills multiValueHeaders.
        self.headers = {k.lower(): v for k, v in (proxy.get("headers") or {}).items()}
        for name, values in (proxy.get("multiValueHeaders") or {}).items():
            self.headers.setdefault(name.lower(), values[-1])

    @property
    def code(self) -> str | None:
        return (self.body.get("error") or {}).get("code")


def invoke(route: str, body: Any = None, *, token: str, module: Any = None, **kwargs: Any) -> Result:
    directory = {"mint": "admin", "mode": "admin"}.get(route, route)
    module = module or handler_module(directory)
    return Result(module.lambda_handler(event(route, body, token=token, **kwargs), LambdaContext()))


def assert_rate_limited(reply: Result, limit: int) -> None:
    assert (reply.status, reply.code) == (429, "RATE_LIMITED"), reply.body
    assert reply.body["error"]["details"].get("limitPerMinute") == limit
    retry_after = reply.headers.get("retry-after")
    assert retry_after is not None and retry_after.isdigit(), reply.headers
    seconds_left = (math.floor(clock.now() / 60) + 1) * 60 - clock.now()
    assert 1 <= int(retry_after) <= 60
    assert abs(int(retry_after) - seconds_left) <= 2, (retry_after, seconds_left)


@pytest.fixture
def funded(api, tokens, monkeypatch):
    # The deployed value (template.yaml): each environment reads the config item at most every
    # 5 s. These tests never switch the mode, and hundreds of config reads would dominate them.
    monkeypatch.setenv("BILLING_CONFIG_CACHE_SECONDS", "5")
    admin = tokens.admin("ops-rate-setup")
    assert api.set_mode("live", token=admin).status == 200
    assert api.mint(ACCOUNT, 100_000_000, token=admin).status == 201


def test_the_201st_internal_request_in_a_minute_is_refused(funded, aws, tokens):
    start_of_next_minute()
    svc = tokens.internal("svc-rate-a")
    statuses: Counter[int] = Counter()
    for i in range(200):
        if i % 4:  # requests that write nothing count too (one UpdateItem each)
            reply = invoke("finalize", {"reservationId": f"res-none-{i}", "actualCostMicro": "1"}, token=svc)
        else:
            reply = invoke("reserve", {"accountId": ACCOUNT, "estimatedCostMicro": "1000"}, token=svc)
        statuses[reply.status] += 1
    assert statuses == {201: 50, 404: 150}
    before = lot_totals(aws, ACCOUNT)
    entries_before = len(ledger(aws))

    over = invoke("reserve", {"accountId": ACCOUNT, "estimatedCostMicro": "1000", "reservationId": "res-over"},
                  token=svc)

    assert_rate_limited(over, 200)
    assert lot_totals(aws, ACCOUNT) == before, "the refused request moved money"
    assert (before["reserved"], before["available"]) == (50_000, 100_000_000 - 50_000)
    assert reservation(aws, "res-over") is None
    assert len(ledger(aws)) == entries_before
    # A non-money request over the limit is refused the same way.
    assert_rate_limited(invoke("finalize", {"reservationId": "res-none", "actualCostMicro": "1"}, token=svc), 200)

    other = invoke("reserve", {"accountId": ACCOUNT, "estimatedCostMicro": "1000"}, token=tokens.internal("svc-rate-b"))
    assert other.status == 201, other.body

    clock.advance(60)  # the next minute window
    again = invoke("reserve", {"accountId": ACCOUNT, "estimatedCostMicro": "1000", "reservationId": "res-over"},
                   token=tokens.internal("svc-rate-a"))
    assert again.status == 201, again.body
    assert lot_totals(aws, ACCOUNT)["reserved"] == 52_000


def test_settling_over_the_limit_moves_no_money(funded, aws, tokens):
    start_of_next_minute()
    svc = tokens.internal("svc-rate-settle")
    made = [invoke("reserve", {"accountId": ACCOUNT, "estimatedCostMicro": "5000"}, token=svc) for _ in range(2)]
    assert [m.status for m in made] == [201, 201]
    for _ in range(198):
        assert invoke("finalize", {"reservationId": "res-none", "actualCostMicro": "1"}, token=svc).status == 404
    before = lot_totals(aws, ACCOUNT)

    finalized = invoke("finalize", {"reservationId": made[0].body["reservationId"], "actualCostMicro": "4000"},
                       token=svc)
    released = invoke("release", {"reservationId": made[1].body["reservationId"]}, token=svc)

    assert_rate_limited(finalized, 200)
    assert_rate_limited(released, 200)
    assert lot_totals(aws, ACCOUNT) == before
    for res in made:
        assert reservation(aws, res.body["reservationId"])["status"] == "pending"
        assert Counter(e["entryType"] for e in entries_for(aws, res.body["reservationId"])) == {"reserve": 1}

    clock.advance(60)
    assert invoke("finalize", {"reservationId": made[0].body["reservationId"], "actualCostMicro": "4000"},
                  token=svc).status == 200
    assert lot_totals(aws, ACCOUNT)["consumed"] == 4000


def test_the_31st_admin_request_in_a_minute_is_refused(funded, aws, tokens):
    start_of_next_minute()
    admin = tokens.admin("ops-rate-a")
    body = {"amountMicro": "1000", "sourceType": "admin_mint", "description": "rate test"}
    statuses = Counter(invoke("mint", body, token=admin, path={"accountId": "acct-rate-admin"}).status
                       for _ in range(30))
    assert statuses == {201: 30}

    over = invoke("mint", {**body, "idempotencyKey": "over-the-limit"}, token=admin,
                  path={"accountId": "acct-rate-admin"})
    assert_rate_limited(over, 30)
    assert len(lots(aws, "acct-rate-admin")) == 30
    assert_rate_limited(invoke("mode", {"mode": "soft"}, token=admin), 30)
    assert invoke("pricing", token=admin).body["billingMode"] == "live"

    other = invoke("mint", body, token=tokens.admin("ops-rate-b"), path={"accountId": "acct-rate-admin"})
    assert other.status == 201
    # The admin limit is the admin's own: a service is not affected by it.
    assert invoke("reserve", {"accountId": ACCOUNT, "estimatedCostMicro": "1"},
                  token=tokens.internal("svc-rate-c")).status == 201

    clock.advance(60)
    assert invoke("mint", body, token=admin, path={"accountId": "acct-rate-admin"}).status == 201
    assert len(lots(aws, "acct-rate-admin")) == 32


def test_an_admin_write_outside_a_transaction_over_the_limit_changes_nothing(funded, api, tokens):
    """Registering a webhook endpoint is one PutItem, not a money transaction: the counter is
    charged before it, so the 31st request is refused before anything is stored."""
    start_of_next_minute()
    admin = tokens.admin("ops-rate-single")
    endpoints = handler_module("webhook_endpoints")
    for _ in range(30):
        assert invoke("listwebhookendpoints", token=admin, module=endpoints).status == 200
    body = {"url": "https://hooks.example.com/billing", "events": ["topup.credited"]}

    over = invoke("createwebhookendpoint", body, token=admin, module=endpoints)

    assert_rate_limited(over, 30)
    assert api.call("listwebhookendpoints", token=tokens.admin("ops-rate-reader")).body["endpoints"] == []
    clock.advance(60)
    again = invoke("createwebhookendpoint", body, token=admin, module=endpoints)
    assert again.status == 201, again.body


def _fresh_copy(directory: str, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / directory / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_limit_holds_across_two_fresh_handler_instances(funded, aws, tokens):
    """Two freshly imported copies of a handler (as two Lambda instances would hold): the count
    is shared, and it is the service's count, not one function's."""
    start_of_next_minute()
    first, second = _fresh_copy("finalize", "finalize_instance_1"), _fresh_copy("finalize", "finalize_instance_2")
    assert first.lambda_handler is not second.lambda_handler
    svc = tokens.internal("svc-rate-instances")
    results = [invoke("finalize", {"reservationId": f"res-none-{i}", "actualCostMicro": "1"}, token=svc,
                      module=first if i % 2 else second) for i in range(204)]
    assert [r.status for r in results] == [404] * 200 + [429] * 4
    reserve_instance = _fresh_copy("reserve", "reserve_instance_3")
    over = invoke("reserve", {"accountId": ACCOUNT, "estimatedCostMicro": "10"}, token=svc, module=reserve_instance)
    assert_rate_limited(over, 200)
    assert lot_totals(aws, ACCOUNT)["reserved"] == 0


def test_limit_holds_across_two_processes(tokens):
    """Two Lambda execution environments (processes) against one DynamoDB (the serialized
    engine): 220 requests of one service, interleaved, stop at exactly 200."""
    now = time.time()
    offset = math.floor(now / 60) * 60 + 61 - now  # both processes at second 1 of the next minute
    with engines() as engine:
        env = {**TEST_ENV, **engine.environment(), "BILLING_CONFIG_CACHE_SECONDS": "5"}
        context = multiprocessing.get_context("spawn")
        with context.Pool(2, initializer=worker_init, initargs=(env, offset)) as pool:
            svc = Tokens.internal("svc-rate-procs")
            assert pool.apply(worker_invoke, ("pricing", {}))[0] == 200
            pool.apply(worker_seed)
            body = {"accountId": ACCOUNT, "estimatedCostMicro": "10"}
            results = pool.starmap(worker_invoke, [("reserve", {"body": body, "token": svc})] * 220, chunksize=1)
        db = engine.client()
        statuses = Counter(status for status, *_ in results)
        assert statuses == {201: 200, 429: 20}, statuses
        assert len({pid for *_, pid in results}) == 2, "both processes served requests"
        assert len({pid for status, _, _, pid in results if status == 201}) == 2
        retry_after = [headers.get("Retry-After") for status, _, headers, _ in results if status == 429]
        assert all(value is not None and 1 <= int(value) <= 60 for value in retry_after), retry_after
        reservations = [i for i in scan(db, "BillingTable") if i["pk"]["S"].startswith("RES#")]
        assert len(reservations) == 200
