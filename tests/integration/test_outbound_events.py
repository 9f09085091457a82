"""Outbound event webhooks in-process: BillingTable's stream (moto's) -> the dispatcher handler ->
one delivery work item per endpoint on the webhook queue -> the delivery handler, which signs and
POSTs to a receiver on loopback. Every event is verified with the `standardwebhooks` library."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from billing_core.kernel import clock
from billing_core.payments import signatures as webhook_signatures
from billing_core.work import items as work
from standardwebhooks.webhooks import Webhook

from devserver.invoke import LambdaContext, load_handler
from devserver.receiver import Receiver
from tests.support.env import TEST_ENV

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:WebhookQueue"


class Pipeline:
    """The stream poller and the queue poller Lambda would run, one step at a time."""

    def __init__(self, aws: Any) -> None:
        self.dynamodb = aws
        self.streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.arn = aws.describe_table(TableName="BillingTable")["Table"]["LatestStreamArn"]
        shard = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]["ShardId"]
        self.iterator = self.streams.get_shard_iterator(StreamArn=self.arn, ShardId=shard,
                                                        ShardIteratorType="LATEST")["ShardIterator"]
        self.queue = TEST_ENV["WEBHOOK_QUEUE_URL"]
        self.seen: list[dict[str, Any]] = []

    def records(self) -> list[dict[str, Any]]:
        got = self.streams.get_records(ShardIterator=self.iterator, Limit=1000)
        self.iterator = got["NextShardIterator"]
        out = []
        for record in got["Records"]:
            data = dict(record["dynamodb"])
            data["ApproximateCreationDateTime"] = int(data["ApproximateCreationDateTime"].timestamp())
            out.append({**record, "dynamodb": data, "eventSourceARN": self.arn})
        self.seen += out
        return out

    def dispatch(self, records: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        event = {"Records": self.records() if records is None else records}
        return load_handler("event_dispatcher").lambda_handler(event, LambdaContext())

    def deliver(self) -> dict[str, Any] | None:
        messages = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                            AttributeNames=["All"]).get("Messages", [])
        if not messages:
            return None
        event = {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": QUEUE_ARN, "awsRegion": "us-east-1"} for m in messages]}
        response = load_handler("webhook_delivery").lambda_handler(event, LambdaContext())
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        for record in event["Records"]:
            if record["messageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=record["receiptHandle"])
        return response

    def run(self) -> None:
        self.dispatch()
        while self.deliver() is not None:
            pass


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def pipeline(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    monkeypatch.setenv("BILLING_WEBHOOK_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("BILLING_WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("BILLING_RETRY_BASE_SECONDS", "0")  # moto's visibility is wall-clock
    from billing_core.outbound import endpoints

    endpoints.invalidate()
    return Pipeline(aws)


def register(api: Any, tokens: Any, receiver: Receiver, events: list[str]) -> dict[str, Any]:
    r = api.call("createwebhookendpoint", {"url": receiver.url, "events": events, "description": "test"},
                 token=tokens.admin())
    assert r.status == 201, r.body
    receiver.secret = r.body["secret"]
    return r.body


def signed_ipn(api: Any, order: str, amount: str = "5", payment_id: int = 9) -> Any:
    raw = json.dumps({"payment_id": payment_id, "payment_status": "finished", "order_id": order,
                      "price_amount": amount, "price_currency": "usd"}).encode()
    sig = webhook_signatures.nowpayments_signature(raw, TEST_ENV["NOWPAYMENTS_IPN_SECRET"])
    return api.call("nowpayments", raw_body=raw.decode(), headers={"x-nowpayments-sig": sig})


def verified(receiver: Receiver, event_type: str) -> list[dict[str, Any]]:
    found = []
    for delivery in receiver.of_type(event_type):
        assert delivery.verified is True
        found.append(Webhook(receiver.secret or "").verify(delivery.body, delivery.headers))
    return found


# -- endpoints -------------------------------------------------------------------------------------


def test_register_shows_the_secret_once_and_lists_without_it(api: Any, tokens: Any, pipeline: Pipeline,
                                                             receiver: Receiver):
    created = register(api, tokens, receiver, ["topup.credited", "quota.threshold"])
    assert created["secret"].startswith("whsec_") and created["endpointId"].startswith("we_")
    assert created["events"] == ["topup.credited", "quota.threshold"] and created["status"] == "enabled"
    listed = api.call("listwebhookendpoints", token=tokens.admin()).body["endpoints"]
    assert [e["endpointId"] for e in listed] == [created["endpointId"]]
    assert created["secret"] not in json.dumps(listed) and "secret" not in listed[0]
    one = api.call("getwebhookendpoint", token=tokens.admin(), path={"endpointId": created["endpointId"]})
    assert one.status == 200 and "secret" not in one.body
    assert api.call("getwebhookendpoint", token=tokens.admin(), path={"endpointId": "we_nope"}).code \
        == "WEBHOOK_ENDPOINT_NOT_FOUND"


@pytest.mark.parametrize(("url", "allow"), [
    ("http://example.com/hooks", {}),  # http needs the development setting
    ("https://169.254.169.254/latest/meta-data", {}),  # link-local: the instance metadata service
    ("https://10.1.2.3/hooks", {}),
    ("https://192.168.0.10/hooks", {}),
    ("https://127.0.0.1/hooks", {}),
    ("https://localhost:8443/hooks", {}),
    ("https://[::1]/hooks", {}),
    ("https://[::ffff:10.0.0.1]/hooks", {}),
    ("https://[2002:7f00:1::1]/hooks", {}),  # 6to4 carrying 127.0.0.1
    ("https://[2002:a9fe:a9fe::1]/hooks", {}),  # 6to4 carrying the metadata address
    ("https://[64:ff9b::a00:1]/hooks", {}),  # NAT64 carrying 10.0.0.1
    ("https://192.0.0.192/hooks", {}),  # IETF protocol assignments
    ("https://[fec0::1]/hooks", {}),  # IPv6 site-local
    ("https://0.0.0.0/hooks", {"BILLING_WEBHOOK_ALLOW_LOOPBACK": "true", "BILLING_WEBHOOK_ALLOW_PRIVATE": "true"}),
    ("https://user:pw@example.com/hooks", {}),
    ("ftp://example.com/hooks", {}),
    ("https:///nohost", {}),
])
def test_private_loopback_link_local_and_insecure_targets_are_refused(api: Any, tokens: Any, aws: Any, url: str,
                                                                      allow: dict, monkeypatch: pytest.MonkeyPatch):
    for name in ("BILLING_WEBHOOK_ALLOW_LOOPBACK", "BILLING_WEBHOOK_ALLOW_PRIVATE", "BILLING_WEBHOOK_ALLOW_HTTP"):
        monkeypatch.setenv(name, allow.get(name, "false"))
    r = api.call("createwebhookendpoint", {"url": url, "events": ["topup.credited"]}, token=tokens.admin())
    assert r.status == 422, (url, r.body)
    assert r.code in ("WEBHOOK_URL_REFUSED", "VALIDATION_ERROR")
    assert api.call("listwebhookendpoints", token=tokens.admin()).body["endpoints"] == []


def test_a_public_https_url_is_accepted_and_unknown_events_are_refused(api: Any, tokens: Any, aws: Any):
    ok = api.call("createwebhookendpoint", {"url": "https://hooks.example.com/billing", "events": ["work.parked"]},
                  token=tokens.admin())
    assert ok.status == 201
    bad = api.call("createwebhookendpoint", {"url": "https://hooks.example.com/x", "events": ["topup.nope"]},
                   token=tokens.admin())
    assert bad.status == 422
    none = api.call("createwebhookendpoint", {"url": "https://hooks.example.com/x", "events": []},
                    token=tokens.admin())
    assert none.status == 422


# -- events ----------------------------------------------------------------------------------------


def test_topup_credited_after_a_signed_nowpayments_top_up(api: Any, tokens: Any, pipeline: Pipeline,
                                                          receiver: Receiver):
    register(api, tokens, receiver, ["topup.credited"])
    user = tokens.user("acct-hook")
    order = api.call("createtopup", {"amountMicro": "5000000", "provider": "nowpayments"}, token=user).body["orderId"]
    assert signed_ipn(api, order).body["outcome"] == "credited"
    pipeline.run()
    (event,) = verified(receiver, "topup.credited")
    assert event["data"] == {"accountId": "acct-hook", "orderId": order, "poolId": "general",
                             "creditedMicro": "5000000", "provider": "nowpayments",
                             "creditedAt": event["data"]["creditedAt"]}
    assert set(event) == {"type", "timestamp", "data"}
    (delivery,) = receiver.deliveries
    assert delivery.headers["webhook-id"].startswith("evt_")
    assert delivery.headers["content-type"] == "application/json"
    # The provider redelivers; the stream is read again from the start: still one delivery.
    assert signed_ipn(api, order).body["outcome"] == "duplicate"
    pipeline.dispatch(pipeline.seen)  # a stream batch handed over twice
    pipeline.run()
    assert len(receiver.deliveries) == 1


def test_quota_threshold_at_80_and_100_percent_once_per_period(api: Any, tokens: Any, pipeline: Pipeline,
                                                                receiver: Receiver):
    register(api, tokens, receiver, ["quota.threshold"])
    svc = tokens.internal()
    limit = api.call("summary", token=tokens.user("org-q")).body["limits"]["runs"]
    assert api.call("usage", {"orgId": "org-q", "runs": limit * 80 // 100 - 1}, token=svc).status == 200
    pipeline.run()
    assert receiver.deliveries == []  # 79 %
    assert api.call("usage", {"orgId": "org-q", "runs": 1}, token=svc).status == 200
    pipeline.run()
    (event,) = verified(receiver, "quota.threshold")
    data = event["data"]
    assert (data["orgId"], data["quotaType"], data["threshold"], data["limit"]) == ("org-q", "runs", 80, limit)
    assert data["currentUsage"] == limit * 80 // 100
    assert {"period", "periodStart", "periodEnd", "planSlug"} <= set(data)
    assert api.call("usage", {"orgId": "org-q", "runs": 1}, token=svc).status == 200
    pipeline.run()
    assert len(receiver.deliveries) == 1  # still above 80 %: no second event
    rest = limit - data["currentUsage"] - 1
    assert api.call("usage", {"orgId": "org-q", "runs": rest}, token=svc).status == 200
    pipeline.run()
    assert [e["data"]["threshold"] for e in verified(receiver, "quota.threshold")] == [80, 100]


def test_reservation_expired(api: Any, tokens: Any, pipeline: Pipeline, receiver: Receiver):
    from billing_core.ledger import sweeper

    register(api, tokens, receiver, ["reservation.expired"])
    admin, svc = tokens.admin(), tokens.internal("svc-exp")
    api.set_mode("live", token=admin)
    api.mint("acct-exp", 5_000_000, token=admin)
    api.call("reserve", {"accountId": "acct-exp", "estimatedCostMicro": "1000", "reservationId": "r-exp",
                         "ttlSeconds": 1}, token=svc)
    clock.advance(5)
    assert sweeper.sweep().expired == 1
    pipeline.run()
    (event,) = verified(receiver, "reservation.expired")
    assert event["data"]["reservationId"] == "r-exp" and event["data"]["releasedMicro"] == "1000"
    assert event["data"]["serviceId"] == "svc-exp" and event["data"]["accountId"] == "acct-exp"


def test_balance_low_once_per_crossing_with_the_account_threshold(api: Any, tokens: Any, pipeline: Pipeline,
                                                                  receiver: Receiver):
    register(api, tokens, receiver, ["balance.low"])
    admin, svc = tokens.admin(), tokens.internal()
    api.set_mode("live", token=admin)
    put = api.call("setbalancealert", {"lowBalanceMicro": "2000000"}, token=admin, path={"accountId": "acct-low"})
    assert put.status == 200 and put.body == {"accountId": "acct-low", "lowBalanceMicro": "2000000",
                                              "source": "account"}
    api.mint("acct-low", 5_000_000, token=admin)
    pipeline.run()
    assert receiver.deliveries == []
    api.call("reserve", {"accountId": "acct-low", "estimatedCostMicro": "3500000", "reservationId": "lw-1"},
             token=svc)
    pipeline.run()
    (event,) = verified(receiver, "balance.low")
    assert event["data"] == {"accountId": "acct-low", "poolId": "general", "availableMicro": "1500000",
                             "thresholdMicro": "2000000"}
    api.call("reserve", {"accountId": "acct-low", "estimatedCostMicro": "500000", "reservationId": "lw-2"},
             token=svc)
    pipeline.run()
    assert len(list(receiver.of_type("balance.low"))) == 1  # still below: not again
    api.mint("acct-low", 5_000_000, token=admin)  # back above: re-armed
    pipeline.run()
    api.call("reserve", {"accountId": "acct-low", "estimatedCostMicro": "5000000", "reservationId": "lw-3"},
             token=svc)
    pipeline.run()
    events = verified(receiver, "balance.low")
    assert [e["data"]["availableMicro"] for e in events] == ["1500000", "1000000"]
    assert len({d.headers["webhook-id"] for d in receiver.deliveries}) == 2
    default = api.call("setbalancealert", {"lowBalanceMicro": None}, token=admin, path={"accountId": "acct-low"})
    assert default.body == {"accountId": "acct-low", "lowBalanceMicro": "1000000", "source": "default"}


def test_work_parked_but_never_for_a_webhook_delivery(api: Any, tokens: Any, pipeline: Pipeline,
                                                       receiver: Receiver, monkeypatch: pytest.MonkeyPatch):
    register(api, tokens, receiver, ["work.parked"])
    monkeypatch.setenv("BILLING_MAX_WORK_ATTEMPTS", "1")
    item_id = signed_ipn(api, "ord_never_created").body["itemId"]
    work.attempt(item_id, actor="test")  # attempt 2 of 1: parked
    assert work.load(item_id).status == "manual_review"
    pipeline.run()
    (event,) = verified(receiver, "work.parked")
    assert event["data"]["itemId"] == item_id and event["data"]["operation"] == "payment_event"
    assert event["data"]["lastError"].startswith("UNKNOWN_ORDER")


def test_a_delivery_answered_500_is_retried_with_the_same_webhook_id_then_parked_and_replayed(
        api: Any, tokens: Any, pipeline: Pipeline, receiver: Receiver, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BILLING_MAX_WORK_ATTEMPTS", "3")
    register(api, tokens, receiver, ["topup.credited", "work.parked"])
    receiver.statuses = [500, 503, 500]
    user = tokens.user("acct-retry-hook")
    order = api.call("createtopup", {"amountMicro": "5000000", "provider": "nowpayments"}, token=user).body["orderId"]
    signed_ipn(api, order)
    pipeline.run()  # three attempts (backoff 0 here), then parked
    assert [d.status for d in receiver.deliveries] == [500, 503, 500]
    ids = {d.headers["webhook-id"] for d in receiver.deliveries}
    bodies = {d.body for d in receiver.deliveries}
    assert len(ids) == 1 and len(bodies) == 1
    assert all(d.verified for d in receiver.deliveries)
    admin = tokens.admin()
    parked = api.call("listdlq", token=admin).body["items"]
    assert [(i["operation"], i["attempts"]) for i in parked] == [("webhook_delivery", 3)]
    assert parked[0]["lastError"] == "DeliveryFailed at deliver: the endpoint answered HTTP 500"
    pipeline.run()
    assert list(receiver.of_type("work.parked")) == []  # a parked delivery is not announced by webhook
    replay = api.call("replaydlq", token=admin, path={"itemId": parked[0]["itemId"]})
    assert replay.status == 200 and replay.body["status"] == "succeeded", replay.body
    assert receiver.deliveries[-1].status == 200
    assert receiver.deliveries[-1].headers["webhook-id"] in ids


def test_disabled_and_deleted_endpoints_get_nothing(api: Any, tokens: Any, pipeline: Pipeline,
                                                    receiver: Receiver):
    created = register(api, tokens, receiver, ["topup.credited"])
    admin, user = tokens.admin(), tokens.user("acct-off")
    endpoint = {"endpointId": created["endpointId"]}
    off = api.call("disablewebhookendpoint", token=admin, path=endpoint)
    assert off.status == 200 and off.body["status"] == "disabled"
    order = api.call("createtopup", {"amountMicro": "5000000", "provider": "nowpayments"}, token=user).body["orderId"]
    signed_ipn(api, order)
    pipeline.run()
    assert receiver.deliveries == []
    assert api.call("enablewebhookendpoint", token=admin, path=endpoint).body["status"] == "enabled"
    order = api.call("createtopup", {"amountMicro": "5000000", "provider": "nowpayments"}, token=user).body["orderId"]
    signed_ipn(api, order, payment_id=10)
    pipeline.dispatch()  # delivery created; the endpoint goes away before it is sent
    gone = api.call("deletewebhookendpoint", token=admin, path=endpoint)
    assert gone.status == 200 and gone.body == {"endpointId": created["endpointId"], "deleted": True}
    while pipeline.deliver() is not None:
        pass
    assert receiver.deliveries == []
    assert api.call("deletewebhookendpoint", token=admin, path=endpoint).status == 404


def test_rotation_signs_with_both_secrets_during_the_grace_period(api: Any, tokens: Any, pipeline: Pipeline,
                                                                  receiver: Receiver):
    created = register(api, tokens, receiver, ["topup.credited"])
    old = created["secret"]
    rotated = api.call("rotatewebhooksecret", token=tokens.admin(), path={"endpointId": created["endpointId"]})
    assert rotated.status == 200 and rotated.body["secret"] != old and rotated.body["previousSecretExpiresAt"]
    user = tokens.user("acct-rot")
    order = api.call("createtopup", {"amountMicro": "5000000", "provider": "nowpayments"}, token=user).body["orderId"]
    signed_ipn(api, order)
    pipeline.run()
    (delivery,) = receiver.deliveries
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, rotated.body["secret"]):
        Webhook(secret).verify(delivery.body, delivery.headers)


def test_without_endpoints_the_dispatcher_writes_nothing(api: Any, tokens: Any, pipeline: Pipeline):
    admin = tokens.admin()
    api.set_mode("live", token=admin)
    api.mint("acct-quiet", 5_000_000, token=admin)
    api.call("reserve", {"accountId": "acct-quiet", "estimatedCostMicro": "4500000"}, token=tokens.internal())
    before = pipeline.dynamodb.scan(TableName="BillingTable", Select="COUNT")["Count"]
    pipeline.run()
    assert pipeline.dynamodb.scan(TableName="BillingTable", Select="COUNT")["Count"] == before


class Calls:
    """DynamoDB API calls made through the core's client (botocore 'before-call' events)."""

    def __init__(self) -> None:
        from billing_core.store import dynamo

        self.client = dynamo.client()
        self.names: list[str] = []
        self.transact_sizes: list[int] = []

    def _before(self, model: Any, params: Any = None, **_: Any) -> None:
        self.names.append(model.name)

    def _params(self, params: dict, model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems":
            self.transact_sizes.append(len(params["TransactItems"]))

    def __enter__(self) -> Calls:
        self.client.meta.events.register("before-call.dynamodb", self._before)
        self.client.meta.events.register("provide-client-params.dynamodb", self._params)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.meta.events.unregister("before-call.dynamodb", self._before)
        self.client.meta.events.unregister("provide-client-params.dynamodb", self._params)

    def take(self) -> list[str]:
        taken, self.names = self.names, []
        return taken


def test_the_money_path_makes_the_same_calls_and_writes_with_every_event_subscribed(
        api: Any, tokens: Any, pipeline: Pipeline, receiver: Receiver, capsys: pytest.CaptureFixture):
    """Streams: no outbox item, no extra call on reserve, finalize or a payment's credit. What the
    dispatcher then spends per event (off the request path) is counted here, for docs/events.md."""
    admin, svc, user = tokens.admin(), tokens.internal(), tokens.user("acct-cost")
    api.set_mode("live", token=admin)
    api.mint("acct-cost", 10_000_000, token=admin)
    api.call("reserve", {"accountId": "acct-cost", "estimatedCostMicro": "1000", "reservationId": "warm"}, token=svc)
    api.call("finalize", {"reservationId": "warm", "actualCostMicro": "1000"}, token=svc)
    pipeline.run()

    def money_path() -> tuple[list[str], list[str], list[int]]:
        with Calls() as calls:
            rid = f"cost-{len(receiver.deliveries)}-{clock.now()}"
            api.call("reserve", {"accountId": "acct-cost", "estimatedCostMicro": "1000", "reservationId": rid},
                     token=svc)
            reserve = calls.take()
            api.call("finalize", {"reservationId": rid, "actualCostMicro": "500"}, token=svc)
            return reserve, calls.take(), calls.transact_sizes

    without = money_path()
    register(api, tokens, receiver, ["topup.credited", "balance.low", "quota.threshold", "reservation.expired",
                                     "work.parked"])
    with_endpoint = money_path()
    assert without == with_endpoint
    # (+ the config item's GetItem: the tests run with BILLING_CONFIG_CACHE_SECONDS=0)
    assert without[0][-2:] == ["Query", "TransactWriteItems"] and without[1][-2:] == ["GetItem", "TransactWriteItems"]

    counts: dict[str, list[str]] = {}
    pipeline.records()  # skip what happened so far
    with Calls() as calls:
        order = api.call("createtopup", {"amountMicro": "5000000", "provider": "nowpayments"},
                         token=user).body["orderId"]
        signed_ipn(api, order, payment_id=77)
        records = pipeline.records()
        calls.take()
        pipeline.dispatch(records)
        counts["topup.credited (dispatch)"] = calls.take()
        pipeline.deliver()
        counts["delivery (one attempt, 2xx)"] = calls.take()
        api.call("reserve", {"accountId": "acct-cost", "estimatedCostMicro": "5000000", "reservationId": "low"},
                 token=svc)
        records = pipeline.records()
        calls.take()
        pipeline.dispatch(records)
        counts["reserve, no crossing (dispatch)"] = calls.take()
        api.call("reserve", {"accountId": "acct-cost", "estimatedCostMicro": "9500000", "reservationId": "low2"},
                 token=svc)
        records = pipeline.records()
        calls.take()
        pipeline.dispatch(records)
        counts["reserve crossing balance.low (dispatch)"] = calls.take()
        limit = api.call("summary", token=tokens.user("org-cost")).body["limits"]["runs"]
        api.call("usage", {"orgId": "org-cost", "runs": limit * 8 // 10}, token=svc)
        records = pipeline.records()
        calls.take()
        pipeline.dispatch(records)
        counts["usage crossing 80 % (dispatch)"] = calls.take()
    with capsys.disabled():
        for label, names in counts.items():
            print(f"\n  dispatcher cost, {label}: {len(names)} calls: {' + '.join(names)}", end="")
    endpoints = ["Query"]  # the endpoints, once per batch (cached for 5 s when deployed; 0 s in the tests)
    # The credit's payment item (the event: one delivery work item) and its new lot (the pool is read:
    # a deposit may end a low balance).
    assert counts["topup.credited (dispatch)"] == [*endpoints, "BatchGetItem", "Query", "PutItem"]
    assert counts["delivery (one attempt, 2xx)"] == ["GetItem", "GetItem", "UpdateItem"]
    assert counts["reserve, no crossing (dispatch)"] == [*endpoints, "BatchGetItem", "Query"]
    assert counts["reserve crossing balance.low (dispatch)"] == [*endpoints, "BatchGetItem", "Query", "PutItem",
                                                                 "UpdateItem"]
    # The org's state, the plan catalogue (cached when deployed), the delivery.
    assert counts["usage crossing 80 % (dispatch)"] == [*endpoints, "GetItem", "Query", "PutItem"]
