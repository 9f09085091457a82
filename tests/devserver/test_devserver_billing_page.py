"""`make run` prints a ready link to the billing page; `make demo` (--demo) gives acct-demo data to show."""

import time
from datetime import UTC, datetime

import jwt

from devserver.tokens import DEV_SECRET_DEFAULTS
from tests.support.banner import fake_stack

ROUTES = [("GET", "/api/billing/pricing", "PricingFunction"), ("GET", "/billing", "BillingPageFunction")]


def test_banner_links_the_billing_page_signed_in_as_acct_demo():
    from devserver.__main__ import banner

    text = banner(fake_stack(ROUTES))
    line = next(line for line in text.splitlines() if "/billing#token=" in line)
    url, _, token = line.strip().partition("#token=")
    assert url == "http://127.0.0.1:3000/billing"
    claims = jwt.decode(token, DEV_SECRET_DEFAULTS["BILLING_USER_JWT_SECRET"], algorithms=["HS256"])
    assert claims["sub"] == "acct-demo" and claims["exp"] > time.time() + 3600
    assert "make demo" in text

    demo = {"charges": 31, "chargedMicro": "1", "depositedMicro": "1", "usage": {}}
    assert "demo data (dev only, --demo): live mode, 31 charges" in banner(fake_stack(ROUTES), demo=demo)
    assert "/billing#token=" not in banner(fake_stack(ROUTES[:1]))  # a template without the page


def test_demo_flag():
    from devserver.__main__ import _parser

    assert _parser().parse_args(["--demo"]).demo is True
    assert _parser().parse_args([]).demo is False


def test_demo_data_fills_the_page_for_acct_demo(api, tokens):
    from billing_core.kernel import clock

    from devserver import demo

    result = demo.seed()
    assert abs(clock.now() - time.time()) < 5  # the worker's clock is back to now
    user = tokens.user("acct-demo")
    assert api.call("pricing").body["billingMode"] == "live"

    balance = api.call("balance", token=user).body
    expected = int(result["depositedMicro"]) - int(result["chargedMicro"])
    assert int(balance["totalAvailableMicro"]) == expected > 0

    entries, cursor = [], None
    while True:
        page = api.call("history", token=user, query={"limit": "100", **({"cursor": cursor} if cursor else {})}).body
        entries += page["entries"]
        cursor = page["pagination"]["nextCursor"]
        if not cursor:
            break
    charges = [e for e in entries if e["entryType"] == "finalize"]
    assert len(charges) == result["charges"] >= 1
    assert len(entries) > 20  # more than one page of the page's history
    now = datetime.now(UTC)
    month = now.strftime("%Y-%m")
    assert all(e["createdAt"].startswith(month) and e["createdAt"] <= clock.iso(clock.now()) for e in entries)
    assert [e["createdAt"] for e in entries] == sorted((e["createdAt"] for e in entries), reverse=True)
    if now.day >= 3:
        assert len({e["createdAt"][:10] for e in charges}) >= 2  # the chart has days to draw

    summary = api.call("summary", token=user).body
    assert summary["percentUsed"] == {"tokens": 62, "runs": 87, "seats": 100}, summary
