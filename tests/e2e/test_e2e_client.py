"""billing_client (clients/python, installed by `make install`) against the whole local stack:
the reservation block, typed 402s, quotas, an expired hold, the async client, and an answer lost
after a committed finalize (a proxy drops it): the client retries with the same reservation id and
money moves once."""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from billing_client import (
    AsyncBillingClient,
    BillingClient,
    InsufficientCredit,
    QuotaExceeded,
    ReservationExpired,
    estimate_tokens,
)

from tests.support.http import Caller, unique


def billing_client(api: Caller, url: str | None = None, **options: Any) -> BillingClient:
    return BillingClient(url or api.url, internal_secret=api.stack.secrets["BILLING_INTERNAL_JWT_SECRET"],
                         service_id=api.service, **options)


def figures(api: Caller, account: str) -> dict[str, int]:
    pool = api.pool(account)
    return {k: pool[k] for k in ("availableMicro", "reservedMicro", "consumedMicro")}


def test_reserve_and_finalize_in_a_with_block(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=1_000_000)
    with billing_client(api) as client, client.reservation(account, 250_000) as r:
        assert r.reserved_micro == 250_000 and r.billing_mode == "live"
        assert api.pool(account)["reservedMicro"] == 250_000
        result = r.finalize(180_000)
    assert (result.finalized_micro, result.released_micro, result.overrun_micro, result.billing_mode) == (
        180_000, 70_000, 0, "live")
    assert figures(api, account) == {"availableMicro": 820_000, "reservedMicro": 0, "consumedMicro": 180_000}


def test_an_exception_in_the_block_releases_the_hold(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=1_000_000)
    client = billing_client(api)
    with pytest.raises(TimeoutError), client.reservation(account, 400_000) as r:
        assert api.pool(account)["reservedMicro"] == 400_000
        raise TimeoutError("the model did not answer")
    assert r.released is not None and r.released.released_micro == 400_000
    with client.reservation(account, 100_000):
        pass  # not finalized: released too
    assert figures(api, account) == {"availableMicro": 1_000_000, "reservedMicro": 0, "consumedMicro": 0}
    assert [e["entryType"] for e in api.all_entries(account)][:2] == ["release", "reserve"]


def test_insufficient_credit_says_how_much_is_missing_and_where_to_pay(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=300_000)
    with pytest.raises(InsufficientCredit) as short, billing_client(api).reservation(account, 1_000_000):
        pytest.fail("the block must not run")
    e = short.value
    assert (e.available_micro, e.required_micro, e.shortfall_micro) == (300_000, 1_000_000, 700_000)
    assert e.top_up_url == f"{api.url}/billing#topup"
    assert e.details["requestedMicro"] == "1000000" and e.account_id == account
    assert api.pool(account)["reservedMicro"] == 0


def test_an_expired_reservation_is_a_typed_error(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=1_000_000)
    with pytest.raises(ReservationExpired) as expired, billing_client(api).reservation(account, 50_000,
                                                                                      ttl_seconds=1) as r:
        time.sleep(2.2)
        r.finalize(10_000)
    assert expired.value.reservation_id == r.reservation_id
    assert figures(api, account) == {"availableMicro": 1_000_000, "reservedMicro": 0, "consumedMicro": 0}


def test_quota_helpers(api: Caller) -> None:
    org = unique("org-client")
    client = billing_client(api)
    tokens = estimate_tokens("You are terse.", "Summarize the report.", max_completion_tokens=256)
    check = client.check_quota(org, tokens=tokens)
    assert check.allowed and check.requested.tokens == tokens and check.limits.tokens > tokens
    recorded = client.record_usage(org, tokens=tokens, runs=1, request_id="run-1")
    again = client.record_usage(org, tokens=tokens, runs=1, request_id="run-1")
    assert recorded.recorded and again.recorded_at == recorded.recorded_at
    assert client.check_quota(org, runs=1).usage == check.usage.__class__(tokens, 1, 0)
    with pytest.raises(QuotaExceeded) as over:
        client.record_usage(org, runs=check.limits.runs)
    q = over.value
    assert (q.quota_type, q.current_usage, q.limit, q.requested) == ("runs", 1, check.limits.runs, check.limits.runs)
    assert q.period_start == check.period_start and q.period_end == check.period_end


def test_the_async_client(api: Caller) -> None:
    api.set_mode("live")
    account = api.new_account(funded=500_000)

    async def scenario() -> int:
        async with AsyncBillingClient(api.url, internal_secret=api.stack.secrets["BILLING_INTERNAL_JWT_SECRET"],
                                      service_id=api.service) as client:
            async with client.reservation(account, 200_000) as r:
                finalized = await r.finalize(150_000)
            with pytest.raises(InsufficientCredit):
                await client.reserve(account, 10_000_000)
            return finalized.finalized_micro

    assert asyncio.run(scenario()) == 150_000
    assert api.total_available(account) == 350_000


class DroppingProxy:
    """Forwards to the stack; the first finalize is forwarded (it commits) and its answer dropped:
    the connection closes without a response, as when a load balancer or a network loses it."""

    def __init__(self, target: str) -> None:
        self.target = urlsplit(target)
        self.finalizes = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream = http.client.HTTPConnection(proxy.target.hostname, proxy.target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request("POST", self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
                upstream.close()
                if self.path.endswith("/finalize"):
                    proxy.finalizes += 1
                    if proxy.finalizes == 1:
                        self.close_connection = True  # committed upstream; the caller never hears
                        return
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(api: Caller) -> Iterator[DroppingProxy]:
    running = DroppingProxy(api.url)
    try:
        yield running
    finally:
        running.close()


def test_a_lost_finalize_answer_is_retried_and_money_moves_once(api: Caller, proxy: DroppingProxy) -> None:
    api.set_mode("live")
    account = api.new_account(funded=1_000_000)
    with billing_client(api, proxy.url, backoff_base=0.05) as client, client.reservation(account, 300_000) as r:
        result = r.finalize(120_000)
    assert proxy.finalizes == 2  # the dropped one (committed) and the retry (answered from the record)
    assert (result.finalized_micro, result.released_micro) == (120_000, 180_000)
    assert figures(api, account) == {"availableMicro": 880_000, "reservedMicro": 0, "consumedMicro": 120_000}
    entries = [e["entryType"] for e in api.all_entries(account)]
    assert entries.count("finalize") == 1 and "release" not in entries
