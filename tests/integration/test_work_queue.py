"""Background work in-process: a payment event that cannot be applied is queued, retried with
exponential backoff by the work-queue consumer, moved to the DLQ by the redrive policy, parked
as manual_review after N attempts by the DLQ processor, listed and replayed by an operator.
SQS is moto's (mock_aws); the consumers are the real Lambda handlers fed the SQS events Lambda
would build from the received messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from billing_core.kernel import clock
from billing_core.payments import signatures as webhook_signatures
from billing_core.work import items as work

from devserver.invoke import LambdaContext, load_handler
from tests.support.env import TEST_ENV

REGION_ARN = "arn:aws:sqs:us-east-1:123456789012"


@pytest.fixture
def queues(aws: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The template's two queues. Backoff base 0 here: the flows below do not wait out delays
    (moto's DelaySeconds is wall-clock); the backoff arithmetic has its own tests."""
    import boto3

    monkeypatch.setenv("BILLING_RETRY_BASE_SECONDS", "0")
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="DeadLetterQueue")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    main = sqs.create_queue(QueueName="WorkQueue", Attributes={
        "VisibilityTimeout": "60",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})})["QueueUrl"]
    assert main == TEST_ENV["WORK_QUEUE_URL"]
    return {"WorkQueue": main, "DeadLetterQueue": dlq, "client": sqs}


def receive_event(queues: dict, name: str) -> dict[str, Any] | None:
    """What Lambda's SQS poller would hand the function: visible messages now, as Records."""
    messages = queues["client"].receive_message(QueueUrl=queues[name], MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                                AttributeNames=["All"]).get("Messages", [])
    if not messages:
        return None
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": f"{REGION_ARN}:{name}", "awsRegion": "us-east-1",
    } for m in messages]}


def consume(queues: dict, name: str) -> dict[str, Any] | None:
    """One poll + invocation; deletes what the function did not report as failed (like Lambda)."""
    event = receive_event(queues, name)
    if event is None:
        return None
    code = {"WorkQueue": "work_queue", "DeadLetterQueue": "dead_letters"}[name]
    response = load_handler(code).lambda_handler(event, LambdaContext())
    failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    for record in event["Records"]:
        if record["messageId"] not in failed:
            queues["client"].delete_message(QueueUrl=queues[name], ReceiptHandle=record["receiptHandle"])
    return response


def signed_ipn(api: Any, order: str, amount: str = "5") -> Any:
    raw = json.dumps({"payment_id": 9, "payment_status": "finished", "order_id": order, "price_amount": amount,
                      "price_currency": "usd"}).encode()
    sig = webhook_signatures.nowpayments_signature(raw, TEST_ENV["NOWPAYMENTS_IPN_SECRET"])
    return api.call("nowpayments", raw_body=raw.decode(), headers={"x-nowpayments-sig": sig})


def visible_in(queues: dict, name: str) -> int:
    attrs = queues["client"].get_queue_attributes(QueueUrl=queues[name], AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_backoff_doubles_per_attempt_and_is_capped():
    assert [work.backoff_seconds(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert work.backoff_seconds(20) == 900


def test_a_failed_event_is_retried_by_the_work_queue_and_credits_once_it_can(api: Any, tokens: Any, queues: dict,
                                                                           monkeypatch: pytest.MonkeyPatch):
    from billing_core.ledger import lots

    user = tokens.user("acct-retry")
    order = api.call("createtopup", {"amountMicro": "5000000", "provider": "nowpayments"}, token=user).body["orderId"]
    real_mint = lots.mint
    failures = {"left": 2}

    def flaky_mint(*args: Any, **kwargs: Any):
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("simulated DynamoDB outage")
        return real_mint(*args, **kwargs)

    monkeypatch.setattr(lots, "mint", flaky_mint)
    r = signed_ipn(api, order)
    assert r.status == 202 and r.body["outcome"] == "queued"
    item_id = r.body["itemId"]
    assert api.call("balance", token=user).body["totalAvailableMicro"] == "0"

    # The message is delayed by the first backoff; make it visible and let the consumer run.
    response = None
    for _ in range(3):
        response = consume(queues, "WorkQueue")
        if response is not None and not response["batchItemFailures"]:
            break
    assert response == {"batchItemFailures": []}
    assert api.call("balance", token=user).body["totalAvailableMicro"] == "5000000"
    item = work.load(item_id)
    assert item.status == "succeeded" and item.attempts == 3  # the webhook's try + 2 retries
    # A late duplicate delivery of the same message changes nothing.
    queues["client"].send_message(QueueUrl=queues["WorkQueue"], MessageBody=json.dumps({"itemId": item_id}))
    assert consume(queues, "WorkQueue") == {"batchItemFailures": []}
    assert api.call("balance", token=user).body["totalAvailableMicro"] == "5000000"


def test_a_failed_attempt_pushes_the_message_out_by_the_backoff(api: Any, queues: dict,
                                                               monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BILLING_RETRY_BASE_SECONDS", "30")
    item_id = signed_ipn(api, "ord_missing_backoff").body["itemId"]
    assert receive_event(queues, "WorkQueue") is None  # the first retry is delayed by 30 s
    # What arrives after the delay: the item's message.
    queues["client"].send_message(QueueUrl=queues["WorkQueue"], MessageBody=json.dumps({"itemId": item_id}))
    response = consume(queues, "WorkQueue")
    assert len(response["batchItemFailures"]) == 1
    # Invisible now (postponed by 60 s for attempt 2): a poll right away finds nothing.
    assert receive_event(queues, "WorkQueue") is None
    item = work.load(work.item_id_for("payment_event", "nowpayments:9:finished"))
    assert item.attempts == 2 and item.status == "pending"
    assert clock.parse_iso(item.next_retry_at) - clock.now() == pytest.approx(60, abs=2)


def test_unfixable_work_moves_to_the_dlq_then_manual_review_then_replay(api: Any, tokens: Any, queues: dict):
    admin = tokens.admin()
    r = signed_ipn(api, "ord_not_yet_created")
    item_id = r.body["itemId"]
    # Work queue: 3 receives (maxReceiveCount) then SQS moves the message to the DLQ.
    for _ in range(3):
        assert consume(queues, "WorkQueue")["batchItemFailures"]
    assert receive_event(queues, "WorkQueue") is None
    assert visible_in(queues, "DeadLetterQueue") == 1
    # DLQ processor: keeps retrying with backoff, parks the item after 6 attempts in all.
    for _ in range(5):
        if consume(queues, "DeadLetterQueue") == {"batchItemFailures": []}:
            break
    item = work.load(item_id)
    assert item.status == "manual_review" and item.attempts == 6
    assert visible_in(queues, "DeadLetterQueue") == 0  # parked items leave the queue
    listed = api.call("listdlq", token=admin).body["items"]
    assert [i["itemId"] for i in listed] == [item_id]
    assert listed[0]["lastError"].startswith("UNKNOWN_ORDER")

    # Replay while the cause persists: still parked, attempts counted, nothing credited.
    again = api.call("replaydlq", token=admin, path={"itemId": item_id})
    assert again.status == 200 and again.body["status"] == "manual_review" and again.body["attempts"] == 7


def test_replay_after_the_cause_is_fixed_credits_once_and_is_idempotent(api: Any, tokens: Any, queues: dict,
                                                                       monkeypatch: pytest.MonkeyPatch):
    from billing_core.payments import events as payments

    admin, user = tokens.admin(), tokens.user("acct-replay")
    order = api.call("createtopup", {"amountMicro": "5000000", "provider": "nowpayments"}, token=user).body["orderId"]
    real = payments.apply_event
    monkeypatch.setattr(payments, "apply_event", lambda event: (_ for _ in ()).throw(RuntimeError("outage")))
    item_id = signed_ipn(api, order).body["itemId"]
    monkeypatch.setattr(payments, "apply_event", real)
    first = api.call("replaydlq", token=admin, path={"itemId": item_id})
    assert first.status == 200 and first.body["status"] == "succeeded" and first.body["replayed"] is True
    second = api.call("replaydlq", token=admin, path={"itemId": item_id})
    assert second.body["status"] == "succeeded" and second.body["replayed"] is False
    # The queued message arriving afterwards is a no-op too.
    assert consume(queues, "WorkQueue") == {"batchItemFailures": []}
    assert api.call("balance", token=user).body["totalAvailableMicro"] == "5000000"
    assert len(api.call("history", token=user, query={"entryType": "deposit"}).body["entries"]) == 1
    assert [i["itemId"] for i in api.call("listdlq", token=admin, query={"status": "succeeded"}).body["items"]] \
        == [item_id]


def test_dlq_listing_validates_input_and_needs_an_admin(api: Any, tokens: Any, queues: dict):
    assert api.call("listdlq", token=tokens.admin(), query={"status": "bogus"}).status == 422
    assert api.call("listdlq", token=tokens.admin(), query={"cursor": "not-a-cursor"}).status == 400
    assert api.call("listdlq", token=tokens.user("acct-x")).status in (401, 403)
    assert api.call("replaydlq", token=tokens.admin(), path={"itemId": "wk_unknown"}).status == 404


def test_a_message_without_an_item_id_is_dropped_not_retried_forever(queues: dict):
    queues["client"].send_message(QueueUrl=queues["WorkQueue"], MessageBody="not json")
    assert consume(queues, "WorkQueue") == {"batchItemFailures": []}
    assert visible_in(queues, "WorkQueue") == 0


def test_dismiss_closes_a_parked_item_with_its_reason(api: Any, tokens: Any, queues: dict):
    admin = tokens.admin("ops-dismiss")
    item_id = signed_ipn(api, "ord_handled_by_hand").body["itemId"]
    r = api.call("dismissdlq", {"reason": "refunded in the NOWPayments dashboard"}, token=admin,
                 path={"itemId": item_id})
    assert r.status == 200 and r.body["status"] == "dismissed"
    assert r.body["dismissedBy"] == "admin:ops-dismiss"
    assert api.call("listdlq", token=admin, query={"status": "pending"}).body["items"] == []
    assert [i["itemId"] for i in api.call("listdlq", token=admin, query={"status": "dismissed"}).body["items"]] \
        == [item_id]
    # Its queued message is now a no-op.
    assert consume(queues, "WorkQueue") == {"batchItemFailures": []}
    assert work.load(item_id).status == "dismissed"
    assert api.call("dismissdlq", {"reason": "again"}, token=admin, path={"itemId": item_id}).status == 200
    assert api.call("dismissdlq", {}, token=admin, path={"itemId": item_id}).status == 422


def test_a_succeeded_item_cannot_be_dismissed(api: Any, tokens: Any, queues: dict, monkeypatch: pytest.MonkeyPatch):
    from billing_core.payments import events as payments

    admin, user = tokens.admin(), tokens.user("acct-dismiss-ok")
    order = api.call("createtopup", {"amountMicro": "5000000", "provider": "nowpayments"}, token=user).body["orderId"]
    real = payments.apply_event
    monkeypatch.setattr(payments, "apply_event", lambda event: (_ for _ in ()).throw(RuntimeError("outage")))
    item_id = signed_ipn(api, order).body["itemId"]
    monkeypatch.setattr(payments, "apply_event", real)
    assert consume(queues, "WorkQueue") == {"batchItemFailures": []}
    r = api.call("dismissdlq", {"reason": "too late"}, token=admin, path={"itemId": item_id})
    assert r.status == 409 and r.code == "WORK_ITEM_SETTLED"
