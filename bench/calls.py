"""DynamoDB calls per operation: the money path (reserve, finalize, balance, history page; warm,
20 requests each, steady state = the most common count) and, one warm request each, the money-in,
background and quota operations. Counted with harness.Recorder on the core's client."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import harness
from backend import ACCOUNT, POOL, finalize_body, pair, quiet_logs, reserve_body
from harness import Recorder, expect, new_reservation_id, say

OPS = ("reserve", "finalize", "balance", "history_page")


def measure_calls(client: Any) -> dict[str, int]:
    from billing_core.ledger import config

    token = harness.internal_token()
    user = harness.user_token(ACCOUNT)
    for _ in range(30):  # warm: handlers loaded, client created, config cached, > 1 history page
        pair(token)
    expect("balance", None, 200, token=user)
    expect("history", None, 200, token=user)

    seen: dict[str, list[tuple[str, ...]]] = {op: [] for op in OPS}
    extra: dict[str, list[tuple[str, ...]]] = {}
    cold: dict[str, tuple[str, ...]] = {}
    with Recorder(client) as rec:
        for _ in range(20):
            rid = new_reservation_id()
            rec.take()
            expect("reserve", reserve_body(rid), 201, token=token)
            seen["reserve"].append(tuple(rec.take()))
            expect("finalize", finalize_body(rid), 200, token=token)
            seen["finalize"].append(tuple(rec.take()))
            expect("balance", None, 200, token=user)
            seen["balance"].append(tuple(rec.take()))
            page = expect("history", None, 200, token=user)
            seen["history_page"].append(tuple(rec.take()))
            if not page["pagination"]["hasMore"]:
                raise RuntimeError("the history page should be a full one (hasMore)")

        # Informational: other shapes of the same routes.
        variants = {
            "history page 2 (cursor)": {"cursor": page["pagination"]["nextCursor"]},
            "history ?poolId": {"poolId": POOL},
            "history ?entryType=finalize": {"entryType": "finalize"},
            "history ?poolId&entryType=finalize": {"poolId": POOL, "entryType": "finalize"},
            "balance ?poolId": {"poolId": POOL},
        }
        for label, query in variants.items():
            route = label.split()[0]
            expect(route, None, 200, token=user, query=query)
            extra[label] = [tuple(rec.take())]
        rid = new_reservation_id()
        expect("reserve", reserve_body(rid), 201, token=token)
        rec.take()
        expect("release", {"reservationId": rid}, 200, token=token)
        extra["release"] = [tuple(rec.take())]
        rid = pair(token)
        rec.take()
        expect("finalize", finalize_body(rid), 200, token=token)
        extra["finalize replay (same amount)"] = [tuple(rec.take())]
        rid = new_reservation_id()
        expect("reserve", reserve_body(rid), 201, token=token)
        rec.take()
        expect("reserve", reserve_body(rid), 201, token=token)
        extra["reserve replay (same reservationId)"] = [tuple(rec.take())]
        with quiet_logs():  # a refusal logs one INFO line (Powertools logger, production level)
            expect("reserve", reserve_body(new_reservation_id(), "acct-empty"), 402, token=token)
        extra["reserve refused (402, live)"] = [tuple(rec.take())]

        # Cold config cache: the first request an execution environment serves.
        rid = new_reservation_id()
        for op, run in (
            ("reserve", lambda: expect("reserve", reserve_body(rid), 201, token=token)),
            ("finalize", lambda: expect("finalize", finalize_body(rid), 200, token=token)),
            ("balance", lambda: expect("balance", None, 200, token=user)),
            ("history_page", lambda: expect("history", None, 200, token=user)),
        ):
            config.invalidate()
            rec.take()
            run()
            cold[op] = tuple(rec.take())

    say("== DynamoDB calls per operation (botocore 'before-call' events on billing_core.store.dynamo.client()) ==")
    say("   warm handler, config cache warm (BILLING_CONFIG_CACHE_SECONDS=5), live mode, 20 requests each")
    steady: dict[str, int] = {}
    for op, runs in seen.items():
        counts = Counter(len(r) for r in runs)
        steady[op] = counts.most_common(1)[0][0]
        shape = Counter(runs).most_common(1)[0][0]
        dist = ", ".join(f"{n} calls x{c}" for n, c in sorted(counts.items()))
        say(f"   {op:<13} {steady[op]}  ({' + '.join(shape)})   [{dist}]")
    say("   informational:")
    for label, runs in extra.items():
        say(f"   {label:<36} {len(runs[0])}  ({' + '.join(runs[0]) or '-'})")
    say("   cold config cache (first request in a process; config.invalidate() before each):")
    for op, names in cold.items():
        say(f"   {op:<13} {len(names)}  ({' + '.join(names)})")
    say("   note: with a 5 s cache a warm reserve also re-reads the config item once per 5 s per instance.")
    return steady


def measure_other_calls(client: Any) -> dict[str, int]:
    """One warm request each (handlers already loaded by a first run), calls counted the same way."""
    from billing_core.kernel import clock
    from billing_core.ledger import sweeper
    from billing_core.payments import signatures as webhook_signatures

    os.environ.setdefault("NOWPAYMENTS_IPN_SECRET", "bench-nowpayments-secret-0123456789abcdef")
    secret = os.environ["NOWPAYMENTS_IPN_SECRET"]
    admin, svc = harness.admin_token(), harness.internal_token()
    user = harness.user_token("acct-bench-pay")

    def ipn(order: str, payment_id: int) -> dict[str, Any]:
        raw = json.dumps({"payment_id": payment_id, "payment_status": "finished", "order_id": order,
                          "price_amount": "5", "price_currency": "usd"})
        sig = webhook_signatures.nowpayments_signature(raw.encode(), secret)
        return {"raw_body": raw, "headers": {"x-nowpayments-sig": sig}}

    ops: dict[str, Callable[[int], None]] = {
        "topup_create": lambda i: expect("createtopup", {"amountMicro": "5000000", "provider": "nowpayments"}, 201,
                                         token=user),
        "adjust_delta": lambda i: expect("adjust", {"deltaMicro": "-1000", "reason": "bench"}, 200, token=admin,
                                         path={"accountId": ACCOUNT}),
        "quota_check": lambda i: expect("check", {"orgId": "org-bench", "tokens": 10}, 200, token=svc),
        "quota_usage_record": lambda i: expect("usage", {"orgId": "org-bench", "tokens": 10}, 200, token=svc),
        "campaign_grant": lambda i: expect("grant", {"accountId": f"acct-grant-{i}", "amountMicro": "1000"}, 201,
                                           token=admin, path={"campaignId": "bench-campaign"}),
    }
    expect("createcampaign", {"campaignId": "bench-campaign", "name": "bench", "budgetMicro": "1000000000"}, 201,
           token=admin)
    counts: dict[str, int] = {}
    with Recorder(client) as rec:
        for name, run in ops.items():
            run(0)  # warm: handler loaded, org seeded
            rec.take()
            run(1)
            counts[name] = len(rec.take())
        orders = [expect("createtopup", {"amountMicro": "5000000", "provider": "nowpayments"}, 201,
                         token=user)["orderId"] for _ in range(2)]
        expect("nowpayments", None, 200, **ipn(orders[0], 1))  # warm
        rec.take()
        expect("nowpayments", None, 200, **ipn(orders[1], 2))
        counts["webhook_credit"] = len(rec.take())
        expect("nowpayments", None, 200, **ipn(orders[1], 2))
        counts["webhook_redelivery"] = len(rec.take())
        for _ in range(10):
            expect("reserve", {**reserve_body(new_reservation_id()), "ttlSeconds": 1}, 201, token=svc)
        clock.advance(2)
        rec.take()
        expired = sweeper.sweep().expired
        counts["sweeper_10_expired"] = len(rec.take()) if expired == 10 else -1
        clock.reset()
    say()
    say("== DynamoDB calls, money in / background / quotas (one warm request each) ==")
    for name, n in counts.items():
        say(f"   {name:<22} {n}")
    say("   sweeper: 8 index Queries (one per shard) + per expired reservation one GetItem and one transaction")
    return counts
