"""Outbound event webhooks against the whole local stack: an endpoint registered over the admin
API receives topup.credited after a signed NOWPayments top-up and quota.threshold at 80 %, each
verified with the `standardwebhooks` library; a delivery answered 500 comes back (after the first
backoff, 30 s) with the same webhook-id. The stack reads BillingTable's stream itself and runs the
webhook queue's consumer (devserver.background)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from devserver.receiver import Receiver
from tests.support.http import Caller, assert_status, unique
from tests.support.webhooks import np_paid

ENDPOINTS = "/admin/billing/webhook-endpoints"


@pytest.fixture
def receiver(api: Caller) -> Iterator[tuple[Receiver, dict[str, Any]]]:
    """A receiver on loopback and its endpoint (deleted afterwards, so later tests send it nothing)."""
    with Receiver() as running:
        body = assert_status(api.request("POST", ENDPOINTS, token=api.admin_token(), json_body={
            "url": running.url, "events": ["topup.credited", "quota.threshold"], "description": "e2e"}), 201)
        running.secret = body["secret"]
        try:
            yield running, body
        finally:
            api.request("DELETE", f"{ENDPOINTS}/{body['endpointId']}", token=api.admin_token())


def _wait(running: Receiver, match: Any, count: int = 1, timeout: float = 30.0) -> list[Any]:
    """Deliveries whose body `match`es, once there are `count` of them."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = [d for d in running.wait_for(len(running.deliveries) + 1, 0.5) if match(d.json())]
        if len(found) >= count or time.monotonic() > deadline:
            return found


def test_topup_credited_after_a_signed_nowpayments_top_up(api: Caller, receiver) -> None:
    running, endpoint = receiver
    account = api.new_account()
    order_id, _ = np_paid(api, account, 5_000_000)
    (delivery,) = _wait(running, lambda b: b["type"] == "topup.credited" and b["data"]["orderId"] == order_id)
    event = Webhook(endpoint["secret"]).verify(delivery.body, delivery.headers)
    assert event["data"] == {"accountId": account, "orderId": order_id, "poolId": "general",
                             "creditedMicro": "5000000", "provider": "nowpayments",
                             "creditedAt": event["data"]["creditedAt"]}
    assert delivery.headers["webhook-id"].startswith("evt_") and delivery.verified


def test_quota_threshold_at_80_percent(api: Caller, receiver) -> None:
    running, endpoint = receiver
    org = unique("org-events")
    summary = assert_status(api.request("GET", "/api/v1/billing/org/summary", token=api.user_token(org)), 200)
    limit = summary["limits"]["runs"]
    assert_status(api.request("POST", "/api/v1/billing/org/usage", token=api.internal_token(),
                              json_body={"orgId": org, "runs": limit * 8 // 10}), 200)
    (delivery,) = _wait(running, lambda b: b["type"] == "quota.threshold" and b["data"]["orgId"] == org)
    event = Webhook(endpoint["secret"]).verify(delivery.body, delivery.headers)
    assert (event["data"]["quotaType"], event["data"]["threshold"], event["data"]["limit"]) == ("runs", 80, limit)
    assert event["data"]["currentUsage"] == limit * 8 // 10


def test_a_delivery_answered_500_is_retried_with_the_same_webhook_id(api: Caller, receiver) -> None:
    running, endpoint = receiver
    account = api.new_account()
    # 500 to this account's event only: another test's event may reach this receiver first.
    running.answering = lambda b: isinstance(b, dict) and (b.get("data") or {}).get("accountId") == account
    running.statuses = [500]
    order_id, _ = np_paid(api, account, 2_000_000)
    tries = _wait(running, lambda b: b["type"] == "topup.credited" and b["data"]["orderId"] == order_id, count=2,
                  timeout=75.0)  # the first retry comes after the first backoff (30 s)
    assert [d.status for d in tries] == [500, 200]
    assert tries[0].headers["webhook-id"] == tries[1].headers["webhook-id"]
    assert tries[0].body == tries[1].body
    for delivery in tries:
        Webhook(endpoint["secret"]).verify(delivery.body, delivery.headers)
