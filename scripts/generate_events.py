"""Write events/<function>.json: one API Gateway proxy event per function, for
`sam local invoke <Function> -e events/<name>.json` and for the tests.

Tokens inside are signed with the local stack's secrets (devserver.tokens: the environment,
else the dev-only defaults). Internal tokens live at most 300 s, so run `make events` right
before invoking.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devserver import tokens  # noqa: E402
from devserver.invoke import proxy_event  # noqa: E402


def _nowpayments_ipn() -> dict:
    """A signed IPN for an order that does not exist yet: answered 202 and queued for retry."""
    import hashlib
    import hmac

    body = {"payment_id": 5077125051, "payment_status": "finished", "order_id": "ord_sample",
            "price_amount": 5, "price_currency": "usd", "pay_currency": "btc", "actually_paid": 0.00012}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    secret = tokens.dev_secrets(os.environ)["NOWPAYMENTS_IPN_SECRET"]
    signature = hmac.new(secret.encode(), canonical.encode(), hashlib.sha512).hexdigest()
    return proxy_event("POST", "/api/billing/webhooks/nowpayments", raw_body=canonical,
                       headers={"x-nowpayments-sig": signature})


def _sqs_event(queue: str) -> dict:
    return {"Records": [{
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d", "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": json.dumps({"itemId": "wk_sample"}),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183",
                       "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1545082649185"},
        "messageAttributes": {}, "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3", "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue}", "awsRegion": "us-east-1"}]}


def _stream_event() -> dict:
    """BillingTable's stream: a top-up credited (its payment item gains creditedAt)."""
    old = {"pk": {"S": "PAY#ord_sample"}, "sk": {"S": "PAY"}, "orderId": {"S": "ord_sample"},
           "accountId": {"S": "acct-demo"}, "poolId": {"S": "general"}, "provider": {"S": "nowpayments"},
           "amountMicro": {"N": "5000000"}, "status": {"S": "pending"}, "statusRank": {"N": "0"},
           "creditedMicro": {"N": "0"}}
    new = {**old, "status": {"S": "finished"}, "statusRank": {"N": "100"}, "creditedMicro": {"N": "5000000"},
           "creditedAt": {"S": "2026-01-01T00:00:00.000000Z"}}
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/BillingTable/stream/2026-01-01T00:00:00.000"
    return {"Records": [{
        "eventID": "c4ca4238a0b923820dcc509a6f75849b", "eventName": "MODIFY", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "eventSourceARN": arn,
        "dynamodb": {"ApproximateCreationDateTime": 1767225600, "Keys": {"pk": old["pk"], "sk": old["sk"]},
                     "NewImage": new, "OldImage": old, "SequenceNumber": "111100000000000000000001",
                     "SizeBytes": 420, "StreamViewType": "NEW_AND_OLD_IMAGES"}}]}


def _schedule_event(function: str) -> dict:
    return {"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
            "source": "aws.scheduler", "account": "123456789012", "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1", "resources": [f"arn:aws:scheduler:us-east-1:123456789012:schedule/{function}"],
            "detail": {}}


def events() -> dict[str, dict]:
    svc, admin, user = tokens.internal_token(), tokens.admin_token(), tokens.user_token("acct-demo")
    return {
        "reserve": proxy_event("POST", "/api/internal/billing/reserve", token=svc, body={
            "accountId": "acct-demo", "estimatedCostMicro": "250000", "reservationId": "sample-run-1"}),
        "finalize": proxy_event("POST", "/api/internal/billing/finalize", token=svc, body={
            "reservationId": "sample-run-1", "actualCostMicro": "180000"}),
        "release": proxy_event("POST", "/api/internal/billing/release", token=svc, body={
            "reservationId": "sample-run-2"}),
        "balance": proxy_event("GET", "/api/billing/balance", token=user),
        "history": proxy_event("GET", "/api/billing/history", token=user, query={"limit": "10"}),
        "pricing": proxy_event("GET", "/api/billing/pricing"),
        "admin": proxy_event("POST", "/admin/billing/accounts/{accountId}/mint", token=admin,
                             path={"accountId": "acct-demo"}, body={
                                 "amountMicro": "5000000", "sourceType": "deposit",
                                 "description": "sample credit", "idempotencyKey": "sample-mint-1"}),
        "openapi": proxy_event("GET", "/api/billing/openapi.json"),
        "topups": proxy_event("POST", "/api/billing/topups", token=user, body={
            "amountMicro": "5000000", "provider": "nowpayments"}),
        "webhooks": _nowpayments_ipn(),
        "work_queue": _sqs_event("WorkQueue"),
        "dead_letters": _sqs_event("DeadLetterQueue"),
        "sweeper": _schedule_event("SweeperFunction"),
        "reconciler": _schedule_event("ReconcilerFunction"),
        "operations": proxy_event("GET", "/admin/billing/dlq", token=admin, query={"status": "manual_review"}),
        "campaigns": proxy_event("GET", "/admin/billing/campaigns", token=admin),
        "plans": proxy_event("GET", "/api/v1/billing/plans"),
        "billing_page": proxy_event("GET", "/billing", headers={"Accept": "text/html"}),
        "org_summary": proxy_event("GET", "/api/v1/billing/org/summary", token=tokens.user_token("org-demo")),
        "org_plan": proxy_event("POST", "/api/v1/billing/org/plan", token=admin, body={
            "orgId": "org-demo", "planSlug": "growth"}),
        "quota": proxy_event("POST", "/api/v1/billing/org/check", token=svc, body={
            "orgId": "org-demo", "tokens": 12000, "runs": 1}),
        "webhook_endpoints": proxy_event("GET", "/admin/billing/webhook-endpoints", token=admin),
        "event_dispatcher": _stream_event(),
        "webhook_delivery": _sqs_event("WebhookQueue"),
        "bootstrap": {"RequestType": "Create", "LogicalResourceId": "Bootstrap", "RequestId": "sample",
                      "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/billing/sample",
                      "ResourceType": "Custom::BillingBootstrap", "ResourceProperties": {"SeedVersion": "1"}},
    }


def main() -> int:
    out = ROOT / "events"
    out.mkdir(exist_ok=True)
    for name, event in events().items():
        (out / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n")
    print(f"wrote {len(events())} events to events/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
