"""Write events/<function>.json: one API Gateway proxy event per function, for
`sam local invoke <Function> -e events/<name>.json` and for the tests.

Tokens inside are signed with the local stack's secrets (devserver.tokens: the environment,
else the dev-only defaults). Internal tokens live at most 300 s, so run `make events` right
before invoking.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devserver import tokens  # noqa: E402
from devserver.invoke import proxy_event  # noqa: E402


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
