"""The customer's billing page at /billing, in headless Chromium against the local stack.

Each test makes its own account (= org) through the API, opens /billing#token=<its user token>
and reads the page as a person would see it: text, roles and ARIA attributes.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from playwright.sync_api import expect

from devserver.tokens import user_token
from tests.support.browser import PHONE, Browsing, Setup, screenshot

TOKEN_KEY = "billing.token"


def bars(page: Any) -> dict[str, dict[str, str]]:
    """Each usage bar's ARIA label, value and level, by quota."""
    return page.eval_on_selector_all('[role="progressbar"]', """nodes => Object.fromEntries(nodes.map(n => [
        n.dataset.quota, {label: n.getAttribute('aria-label'), now: n.getAttribute('aria-valuenow'),
                          level: n.dataset.level}]))""")


def wait_loaded(page: Any) -> None:
    expect(page.locator("#balance-total")).not_to_be_empty()
    expect(page.locator('[role="progressbar"]')).to_have_count(3)
    expect(page.locator("#chart svg")).to_have_count(1)
    expect(page.locator("#history-card")).to_have_attribute("aria-busy", "false")


# -- sign-in -------------------------------------------------------------------------------------


def test_sign_in_from_the_fragment_keeps_the_token_only_in_session_storage(setup: Setup, browsing: Browsing):
    account = setup.account()
    setup.mint_as(account, 12_345_678_901)  # $12,345.678901
    token = browsing.stack.token("user", account)

    page = browsing.open(account, token=token)
    wait_loaded(page)

    assert page.url == f"{browsing.stack.url}/billing"  # the fragment is gone from the address bar
    assert token not in page.url and page.evaluate("location.hash") == ""
    page.go_back()  # the entry was replaced, not pushed: no history entry holds the token
    assert page.url == "about:blank"
    page.go_forward()
    assert page.url == f"{browsing.stack.url}/billing"
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") == token
    expect(page.locator("#account-id")).to_have_text(account)
    expect(page.locator("#balance-total")).to_have_text("$12,345.678901")

    page.reload()  # the session survives a reload, from sessionStorage
    expect(page.locator("#balance-total")).to_have_text("$12,345.678901")
    assert page.url == f"{browsing.stack.url}/billing"

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
    expect(page.locator("#dashboard")).to_be_hidden()
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None


def test_without_a_token_the_page_asks_for_one_and_signs_in_by_keyboard(setup: Setup, browsing: Browsing):
    account = setup.account()
    setup.mint_as(account, 3_000_000)
    page = browsing.page()
    page.goto("/billing")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#dashboard")).to_be_hidden()

    field = page.get_by_label("Access token")
    field.fill("not a token")
    field.press("Enter")
    expect(page.locator("#token-error")).to_contain_text("three parts")

    field.fill(browsing.stack.token("user", account))
    field.press("Enter")
    expect(page.locator("#balance-total")).to_have_text("$3.00")
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')")


def test_an_expired_token_shows_session_expired_not_a_blank_page(setup: Setup, browsing: Browsing):
    account = setup.account()
    expired = user_token(account, environ=browsing.stack.environ, lifetime=-3600)
    page = browsing.open(account, token=expired, failed_responses_expected=True)  # the API's 401s
    expect(page.get_by_role("heading", name="Your session has expired")).to_be_visible()
    expect(page.locator("#session-text")).to_contain_text("fresh billing link")
    expect(page.get_by_label("Access token")).to_be_visible()
    expect(page.locator("#dashboard")).to_be_hidden()
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None  # a dead token is not kept
    assert "#token" not in page.url
    assert "Traceback" not in page.content() and "TOKEN_EXPIRED" not in page.inner_text("body")
    screenshot(page, "expired-desktop")

    page.get_by_label("Access token").fill(browsing.stack.token("user", account))  # and back in
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#balance-total")).to_have_text("$0.00")


# -- usage bars and the quota alert ---------------------------------------------------------------


def test_usage_bars_are_green_yellow_red_at_0_85_and_100_percent_with_an_upgrade_alert(
        setup: Setup, browsing: Browsing):
    org = setup.account("org-page")
    setup.limits(org, tokens=1000, runs=20, seats=4)
    setup.usage(org, runs=17)  # 85 %
    setup.usage(org, seats=4)  # 100 %

    page = browsing.open(org)
    expect(page.locator('[role="progressbar"]')).to_have_count(3)
    assert bars(page) == {
        "tokens": {"label": "Tokens used this period", "now": "0", "level": "green"},
        "runs": {"label": "Runs used this period", "now": "85", "level": "yellow"},
        "seats": {"label": "Seats used this period", "now": "100", "level": "red"},
    }
    expect(page.locator('[data-quota="runs"] .quota-figures')).to_have_text("17 of 20 85 %")
    alert = page.get_by_role("alert")
    expect(alert).to_have_count(1)
    expect(alert).to_contain_text("You have reached your plan's limit for seats.")
    upgrade = alert.get_by_role("link", name="Upgrade your plan")
    upgrade.click()
    expect(page.locator("#plans")).to_be_focused()  # the plans, with the current one marked
    expect(page.locator(".plan-item.current")).to_contain_text("Current plan")

    # An operator lowers the runs limit below this period's usage: 170 %, still red.
    setup.limits(org, tokens=1000, runs=10, seats=4)
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator('[data-quota="runs"][role="progressbar"]')).to_have_attribute("aria-valuenow", "170")
    assert bars(page)["runs"]["level"] == "red"
    expect(page.get_by_role("alert")).to_contain_text("Over your plan's limit for runs and seats.")


def test_no_alert_while_every_quota_is_under_its_limit(setup: Setup, browsing: Browsing):
    org = setup.account("org-page")
    setup.limits(org, tokens=1000, runs=100, seats=10)
    setup.usage(org, tokens=799, runs=80)  # 79 % green, 80 % yellow
    page = browsing.open(org)
    expect(page.locator('[role="progressbar"]')).to_have_count(3)
    assert {q: (b["now"], b["level"]) for q, b in bars(page).items()} == {
        "tokens": ("79", "green"), "runs": ("80", "yellow"), "seats": ("0", "green")}
    expect(page.locator("#plan-name")).to_have_text("Starter")
    expect(page.locator("#plan-price")).to_have_text("$49.00 / month")
    expect(page.locator("#plan-status")).to_have_text("Trial")
    expect(page.locator("#plan-period")).to_contain_text("Current period:")
    expect(page.get_by_role("alert")).to_have_count(0)


# -- credit, in dollars ---------------------------------------------------------------------------


def test_pools_and_the_total_in_exact_dollars(setup: Setup, browsing: Browsing):
    account = setup.account()
    setup.mint_as(account, 1_234_567_891)  # $1,234.567891
    setup.mint_as(account, 500_000, pool="promo")  # $0.50
    page = browsing.open(account)
    expect(page.locator("#balance-total")).to_have_text("$1,235.067891")
    general = page.locator('#pool-rows tr[data-pool="general"] td')
    expect(general).to_have_text(["$1,234.567891", "$0.00", "$0.00"])
    expect(page.locator('#pool-rows tr[data-pool="promo"] td')).to_have_text(["$0.50", "$0.00", "$0.00"])
    align = page.eval_on_selector('#pool-rows tr[data-pool="general"] td', "n => getComputedStyle(n).textAlign")
    assert align == "right"

    # The page's conversion is exact where a float is not (2^53 + 1 micro-units and beyond).
    convert = page.evaluate("""() => ["9007199254740993", "123456789012345678901", "1", "-1500000", "0"]
        .map(v => BillingPage.microToDollars(v))""")
    assert convert == ["$9,007,199,254.740993", "$123,456,789,012,345.678901", "$0.000001", "\u2212$1.50", "$0.00"]
    parsed = page.evaluate("""() => ["1,000.50", "$25", "0.1", "1.234", "abc"]
        .map(v => { const r = BillingPage.dollarsToMicro(v); return r.error ? 'error' : r.micro.toString(); })""")
    assert parsed == ["1000500000", "25000000", "100000", "error", "error"]


# -- history and the chart ------------------------------------------------------------------------


def test_history_pages_with_load_more_and_filters_by_type_and_the_chart_draws_today(
        setup: Setup, browsing: Browsing):
    account = setup.account()
    setup.mint_as(account, 20_000_000)
    costs = [110_000 + 1_000 * i for i in range(12)]  # 12 charges: 24 entries + the deposit = 25
    for cost in costs:
        setup.charge(account, cost, estimate=cost + 5_000)

    page = browsing.open(account)
    rows = page.locator("#history-rows tr")
    expect(rows).to_have_count(20)
    expect(rows.first).to_have_attribute("data-entry-type", "finalize")  # newest first
    expect(rows.first.locator(".amount")).to_have_text("\u2212$0.121")
    more = page.get_by_role("button", name="Load more")
    more.focus()
    page.keyboard.press("Enter")
    expect(rows).to_have_count(25)
    expect(more).to_be_hidden()
    expect(rows.last).to_have_attribute("data-entry-type", "deposit")
    expect(rows.last.locator(".amount")).to_have_text("+$20.00")
    expect(page.locator("#history-count")).to_have_text("Showing 25 entries")

    page.get_by_label("Show").select_option("deposit")
    expect(rows).to_have_count(1)
    page.get_by_label("Show").select_option("finalize")
    expect(rows).to_have_count(12)
    expect(more).to_be_hidden()

    # The daily spend chart: today's bar is the sum of the 12 charges.
    chart = page.locator("#chart svg[role='img']")
    expect(chart).to_have_count(1)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    bar = chart.locator(f"rect.chart-bar[data-date='{today}']")
    expect(bar).to_have_attribute("data-amount-micro", str(sum(costs)))
    assert float(bar.get_attribute("height")) > 10
    expect(chart.locator("rect.chart-bar")).to_have_count(1)
    expect(page.locator("#chart-summary")).to_have_text("Total this period: $1.386 in 12 charges.")


# -- top-up ---------------------------------------------------------------------------------------


def test_top_up_validates_dollars_then_shows_the_pending_order(setup: Setup, browsing: Browsing):
    account = setup.account()
    page = browsing.open(account)
    expect(page.locator("#balance-total")).to_have_text("$0.00")
    amount = page.get_by_label("Amount in US dollars")

    amount.fill("0.50")
    amount.press("Enter")
    expect(page.locator("#topup-error")).to_have_text("The smallest top-up is $1.00.")
    amount.fill("10.505")
    page.get_by_role("button", name="Start top-up").click()
    expect(page.locator("#topup-error")).to_contain_text("whole cents")
    expect(page.locator("#topup-order")).to_have_count(0)

    amount.fill("1,010.50")
    page.get_by_label("Pay with").select_option("nowpayments")
    page.get_by_role("button", name="Start top-up").click()
    order = page.locator("#topup-order")
    expect(order).to_have_attribute("data-status", "pending")
    expect(order).to_contain_text("Top-up of $1,010.50 is pending.")
    expect(order).to_contain_text("no provider invoice")  # locally: no provider keys
    expect(page.locator("#topup-error")).to_be_hidden()
    order_id = order.get_attribute("data-order-id")
    stored = setup.request("GET", f"/api/billing/topups/{order_id}", token=setup.user_token(account)).json()
    assert stored["status"] == "pending" and stored["amountMicro"] == "1010500000", stored
    assert stored["provider"] == "nowpayments", stored

    page.get_by_role("button", name="Check status").click()
    expect(order).to_have_attribute("data-status", "pending")


def test_top_up_with_a_provider_link_offers_it(setup: Setup, browsing: Browsing):
    """With provider keys configured the API answers a paymentUrl (stubbed here: the local stack
    has no provider keys, so the answer is the real one with a link added)."""
    account = setup.account()
    page = browsing.open(account)
    expect(page.locator("#balance-total")).to_have_text("$0.00")

    def with_link(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        body["paymentUrl"] = "https://checkout.stripe.com/c/pay/cs_test_page"
        body["providerInvoiceCreated"] = True
        body.pop("message", None)
        route.fulfill(response=response, body=json.dumps(body))

    page.route(re.compile(r"/api/billing/topups$"), with_link)
    page.get_by_label("Amount in US dollars").fill("25")
    page.get_by_role("button", name="Start top-up").click()
    link = page.get_by_role("link", name="Continue to payment")
    expect(link).to_have_attribute("href", "https://checkout.stripe.com/c/pay/cs_test_page")
    expect(page.locator("#topup-order")).to_contain_text("Top-up of $25.00 started.")


# -- errors ---------------------------------------------------------------------------------------


def test_402_429_and_5xx_show_messages_never_a_stack_trace(setup: Setup, browsing: Browsing):
    account = setup.account()
    setup.mint_as(account, 7_000_000)
    page = browsing.page(failed_responses_expected=True)

    def answer(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Any:
        body = json.dumps({"error": {"code": code, "message": message, "details": {}}})
        return lambda route: route.fulfill(status=status, body=body, content_type="application/json",
                                           headers=headers or {})

    balance = re.compile(r"/api/billing/balance$")
    page.route(balance, answer(503, "INTERNAL_ERROR", "internal error"))
    page.route(re.compile(r"/api/billing/history\?"),
               answer(429, "RATE_LIMITED", "too many requests", {"Retry-After": "7"}))
    page.route(re.compile(r"/api/v1/billing/org/summary$"),
               answer(402, "BILLING_CANCELED", "the org's billing is canceled"))
    page.route(re.compile(r"/api/billing/topups$"), lambda route: route.fulfill(
        status=500, content_type="text/html", body="Traceback (most recent call last):\n  File \"app.py\""))
    page.goto(f"/billing#token={browsing.stack.token('user', account)}")

    expect(page.locator("#balance-state")).to_have_text(
        "The billing service is having trouble (HTTP 503). Try again in a moment. Try again")
    expect(page.locator("#history-state")).to_contain_text("Too many requests right now. Try again in 7 s.")
    expect(page.locator("#plan-state")).to_contain_text("Payment required: the org's billing is canceled.")
    page.get_by_label("Amount in US dollars").fill("5")
    page.get_by_role("button", name="Start top-up").click()
    expect(page.locator("#topup-error")).to_have_text(
        "The billing service is having trouble (HTTP 500). Try again in a moment.")
    text = page.inner_text("body")
    assert "Traceback" not in text and "app.py" not in text and "undefined" not in text

    page.unroute(balance)
    page.locator("#balance-state").get_by_role("button", name="Try again").click()
    expect(page.locator("#balance-total")).to_have_text("$7.00")


# -- how it looks ---------------------------------------------------------------------------------


def _contrast(foreground: str, background: str) -> float:
    def luminance(rgb: str) -> float:
        channels = [int(x) / 255 for x in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _busy_account(setup: Setup) -> str:
    org = setup.account("acct-look")
    setup.limits(org, tokens=2_000_000, runs=1000, seats=5)
    setup.usage(org, tokens=1_240_000, runs=870)
    setup.usage(org, seats=5)
    setup.mint_as(org, 50_000_000)
    setup.mint_as(org, 2_500_000, pool="promo")
    for i in range(11):
        setup.charge(org, 137_000 + 29_713 * i, estimate=600_000)
    return org


def test_desktop_and_phone_screenshots_readable_and_without_overflow(setup: Setup, browsing: Browsing):
    org = _busy_account(setup)
    for name, viewport in (("desktop", None), ("phone", PHONE)):
        page = browsing.open(org, viewport=viewport)
        wait_loaded(page)
        expect(page.get_by_role("alert")).to_be_visible()
        page.wait_for_timeout(200)  # the chart redraws once for the final width
        shot = screenshot(page, f"billing-{name}")
        assert shot.stat().st_size > 10_000
        width = (viewport or {"width": 1280})["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{name}: horizontal scroll"
        for selector in ('[data-quota="tokens"] .bar', "#balance-total", "#chart svg", "#topup-form button",
                         "#history-rows tr"):
            box = page.locator(selector).first.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (name, selector, box)
        pairs = page.evaluate("""() => {
            const color = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop];
            const bg = (sel) => { let n = document.querySelector(sel);
                while (n && getComputedStyle(n).backgroundColor === 'rgba(0, 0, 0, 0)') n = n.parentElement;
                return n ? getComputedStyle(n).backgroundColor : 'rgb(255, 255, 255)'; };
            return [['body text', color('.quota-name', 'color'), bg('.quota-name')],
                    ['muted text', color('#plan-period', 'color'), bg('#plan-period')],
                    ['yellow level', color('.quota-note[data-level="yellow"]', 'color'), bg('.quota-note')],
                    ['red level', color('.quota-note[data-level="red"]', 'color'), bg('.quota-note')],
                    ['alert', color('#quota-alert', 'color'), bg('#quota-alert')],
                    ['alert action', color('.alert-cta', 'color'), bg('.alert-cta')],
                    ['status badge', color('#plan-status', 'color'), bg('#plan-status')],
                    ['button', color('#topup-submit', 'color'), bg('#topup-submit')],
                    ['yellow bar', color('.bar[data-level="yellow"] .bar-fill', 'backgroundColor'), bg('.bar')],
                    ['red bar', color('.bar[data-level="red"] .bar-fill', 'backgroundColor'), bg('.bar')]];
        }""")
        for label, foreground, background in pairs:
            minimum = 3.0 if label.endswith("bar") else 4.5
            assert _contrast(foreground, background) >= minimum, (name, label, foreground, background)


def test_everything_is_reachable_with_the_keyboard(setup: Setup, browsing: Browsing):
    org = _busy_account(setup)
    page = browsing.open(org)
    wait_loaded(page)
    reached = []
    for _ in range(30):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("""() => { const n = document.activeElement;
            return n.id || n.getAttribute('aria-label') || n.textContent.trim(); }"""))
    for control in ("Skip to content", "refresh", "sign-out", "Upgrade your plan", "topup-amount", "topup-provider",
                    "topup-submit", "history-type", "history-more"):
        assert control in reached, (control, reached)
    page.keyboard.press("Shift+Tab")  # and back; the focused control shows a focus ring
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
