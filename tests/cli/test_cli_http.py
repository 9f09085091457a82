"""The CLI against a fake API over real HTTP: error mapping, 429 with Retry-After, redirects,
pagination, `history --follow`, and every command's route and body."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from billing_admin.client import retry_after_seconds
from tests.support.fakeapi import FakeApi, Reply, Request, error

MINT = ["--source-type", "deposit", "--description", "welcome"]


# -- errors ------------------------------------------------------------------------------------------
def test_api_errors_exit_1_with_code_and_message(cli, fake: FakeApi) -> None:
    fake.route("POST", r"/admin/billing/accounts/acct-1/refund",
               error(402, "INSUFFICIENT_CREDIT", "not enough credit", {"availableMicro": "5"}))
    ran = cli("refund", "acct-1", "10", "--reason", "r")
    assert ran.code == 1
    assert "INSUFFICIENT_CREDIT" in ran.err and "not enough credit" in ran.err and "HTTP 402" in ran.err
    assert '"availableMicro": "5"' in ran.err
    assert ran.out == ""


def test_json_mode_prints_the_error_body_on_stdout(cli, fake: FakeApi) -> None:
    fake.route("GET", r"/admin/billing/accounts/acct-1/balance", error(403, "WRONG_AUDIENCE", "not an admin token"))
    ran = cli("balance", "acct-1", "--json")
    assert ran.code == 1
    assert ran.json() == {"error": {"code": "WRONG_AUDIENCE", "message": "not an admin token", "details": {}}}


def test_validation_errors_list_their_fields(cli, fake: FakeApi) -> None:
    fake.route("POST", r"/admin/billing/accounts/acct-1/mint", error(
        422, "VALIDATION_ERROR", "request is invalid", {"errors": [{"field": "poolId", "message": "bad pool"}]}))
    ran = cli("mint", "acct-1", "5", *MINT, "--pool", "BAD")
    assert ran.code == 1 and "- poolId: bad pool" in ran.err


def test_route_not_found_explains_itself(cli, fake: FakeApi) -> None:
    ran = cli("dlq", "list")
    assert ran.code == 1 and "ROUTE_NOT_FOUND" in ran.err and "GET /admin/billing/dlq" in ran.err


@pytest.mark.parametrize(("reply", "code", "text"), [
    (Reply(502, {"message": "Internal server error"}), "HTTP_502", "Internal server error"),
    (Reply(503, "<html><body>upstream down</body></html>", {"Content-Type": "text/html"}), "HTTP_503", "upstream"),
    (Reply(500, b""), "HTTP_500", "Internal Server Error"),
])
def test_errors_that_are_not_the_contracts_shape(cli, fake: FakeApi, reply: Reply, code: str, text: str) -> None:
    fake.route("GET", r"/admin/billing/accounts/acct-1/balance", reply)
    ran = cli("balance", "acct-1", "--json")
    assert ran.code == 1 and code in ran.err and text in ran.err
    assert ran.json()["error"]["code"] == code


def test_a_success_that_is_not_json_is_an_error(cli, fake: FakeApi) -> None:
    fake.route("GET", r"/admin/billing/accounts/acct-1/balance", Reply(200, "<html>login</html>"))
    ran = cli("balance", "acct-1")
    assert ran.code == 1 and "INVALID_RESPONSE" in ran.err


def test_unreachable_api_is_retried_for_reads_then_exit_1(cli) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ran = cli("balance", "acct-1", "--url", f"http://127.0.0.1:{port}", "--max-retries", "2")
    assert ran.code == 1 and "CONNECTION_FAILED" in ran.err and "make run" in ran.err
    assert ran.sleeps == [1.0, 2.0]


def test_redirects_are_not_followed(cli, fake: FakeApi) -> None:
    other = FakeApi().start()
    try:
        fake.route("GET", r"/admin/billing/accounts/acct-1/balance",
                   Reply(302, {}, {"Location": f"{other.url}/steal"}))
        ran = cli("balance", "acct-1")
        assert ran.code == 1 and "HTTP_302" in ran.err and "redirect" in ran.err
        assert other.requests == []  # the token went nowhere else
    finally:
        other.stop()


def test_ids_are_one_path_segment(cli, fake: FakeApi) -> None:
    cli("balance", "../../config")
    cli("dlq", "replay", "a/b?c")
    assert [r.path for r in fake.requests] == ["/admin/billing/accounts/..%2F..%2Fconfig/balance",
                                               "/admin/billing/dlq/a%2Fb%3Fc/replay"]


# -- 429 -----------------------------------------------------------------------------------------------
def limited_then(count: int, final: Reply, retry_after: str | list[str] = "7"):
    """A handler answering 429 (with the given Retry-After values, "" for none) `count` times, then `final`."""
    calls = []
    waits = retry_after if isinstance(retry_after, list) else [retry_after] * count

    def handler(request: Request) -> Reply:
        calls.append(request)
        if len(calls) <= count:
            refused = error(429, "RATE_LIMITED", "30 requests a minute")
            if waits[len(calls) - 1]:
                refused.headers["Retry-After"] = waits[len(calls) - 1]
            return refused
        return final

    return handler, calls


def test_429_waits_for_retry_after_and_retries(cli, fake: FakeApi) -> None:
    handler, calls = limited_then(2, Reply(201, {"lotId": "lot-1"}), ["7", "3"])
    fake.route("POST", r"/admin/billing/accounts/acct-1/mint", handler)
    ran = cli("mint", "acct-1", "5", *MINT)
    assert ran.code == 0, ran.err
    assert ran.sleeps == [7.0, 3.0]
    assert "rate limited" in ran.err and "waiting 7s" in ran.err and "retry 1 of 5" in ran.err
    assert len(calls) == 3
    assert len({json.dumps(c.body, sort_keys=True) for c in calls}) == 1  # the same request, same key


def test_429_without_retry_after_backs_off(cli, fake: FakeApi) -> None:
    handler, _ = limited_then(2, Reply(200, {"accountId": "a", "pools": []}), ["", ""])
    fake.route("GET", r"/admin/billing/accounts/a/balance", handler)
    ran = cli("balance", "a")
    assert ran.code == 0 and ran.sleeps == [1.0, 2.0]


def test_429_gives_up_after_max_retries(cli, fake: FakeApi) -> None:
    handler, calls = limited_then(10, Reply(200, {}))
    fake.route("GET", r"/admin/billing/accounts/a/balance", handler)
    ran = cli("balance", "a", "--max-retries", "2")
    assert ran.code == 1 and "RATE_LIMITED" in ran.err and len(calls) == 3 and ran.sleeps == [7.0, 7.0]


def test_503_contention_is_retried(cli, fake: FakeApi) -> None:
    calls = []

    def handler(request: Request) -> Reply:
        calls.append(request)
        return error(503, "CONTENTION", "try again") if len(calls) == 1 else Reply(201, {"lotId": "l"})

    fake.route("POST", r"/admin/billing/accounts/a/mint", handler)
    ran = cli("mint", "a", "5", *MINT)
    assert ran.code == 0 and len(calls) == 2 and calls[0].body == calls[1].body


def test_retry_after_forms() -> None:
    now = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-5") is None


# -- pagination ----------------------------------------------------------------------------------------
def ledger(count: int, account: str = "acct-1") -> list[dict]:
    """`count` entries, newest first (entry-<count> is the newest)."""
    start = datetime(2026, 5, 1, tzinfo=UTC)
    return [{"entryId": f"entry-{i}", "accountId": account, "poolId": "general", "entryType": "deposit",
             "amountMicro": str(i), "actor": "admin:ops", "description": f"credit {i}",
             "createdAt": (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")}
            for i in range(count, 0, -1)]


def paged(entries: list[dict], key: str = "entries"):
    """A handler serving `entries` with the contract's cursor pagination (cursor = an offset here)."""

    def handler(request: Request) -> Reply:
        limit = int(request.query.get("limit", 50))
        assert 1 <= limit <= 100, limit
        offset = int(request.query.get("cursor", 0))
        page = entries[offset:offset + limit]
        more = offset + limit < len(entries)
        cursor = str(offset + limit) if more else None
        return Reply(200, {key: page, "pagination": {"limit": limit, "nextCursor": cursor, "hasMore": more}})

    return handler


def test_history_follows_cursors_up_to_the_limit(cli, fake: FakeApi) -> None:
    fake.route("GET", r"/admin/billing/accounts/acct-1/history", paged(ledger(250)))
    ran = cli("history", "acct-1", "--limit", "120", "--json")
    assert ran.code == 0
    body = ran.json()
    assert [e["entryId"] for e in body["entries"]] == [f"entry-{i}" for i in range(250, 130, -1)]
    assert body["pagination"]["hasMore"] is True
    assert [(r.query.get("limit"), r.query.get("cursor")) for r in fake.requests] == [("100", None), ("20", "100")]


def test_history_passes_filters_and_shows_oldest_first(cli, fake: FakeApi) -> None:
    fake.route("GET", r"/admin/billing/accounts/acct-1/history", paged(ledger(3)))
    ran = cli("history", "acct-1", "--pool", "promo", "--type", "refund")
    assert ran.code == 0
    assert fake.requests[0].query == {"poolId": "promo", "entryType": "refund", "limit": "20"}
    assert ran.out.index("entry-1") < ran.out.index("entry-2") < ran.out.index("entry-3")
    assert "3 ($0.000003)" in ran.out


def test_history_shows_the_direction_of_unsigned_adjustments(cli, fake: FakeApi) -> None:
    entries = ledger(2)
    entries[0].update(entryType="adjustment", amountMicro="250000", metadata={"direction": "debit"})
    entries[1].update(entryType="adjustment", metadata={"direction": "credit"})
    fake.route("GET", r"/admin/billing/accounts/acct-1/history", paged(entries))
    ran = cli("history", "acct-1")
    assert "adjustment (debit)" in ran.out and "adjustment (credit)" in ran.out


def test_history_stops_when_the_last_page_says_so(cli, fake: FakeApi) -> None:
    fake.route("GET", r"/admin/billing/accounts/acct-1/history", paged(ledger(30)))
    ran = cli("history", "acct-1", "--limit", "500", "--json")
    assert len(ran.json()["entries"]) == 30 and len(fake.requests) == 1


def test_follow_prints_only_new_entries_oldest_first(cli, fake: FakeApi) -> None:
    entries = ledger(40)
    fake.route("GET", r"/admin/billing/accounts/acct-1/history", lambda request: paged(entries)(request))
    polls = []

    def sleep(seconds: float) -> None:  # between polls: new entries arrive, then stop after three polls
        polls.append(seconds)
        if len(polls) == 1:
            entries[:0] = ledger(43)[:3]  # entry-43, 42, 41 (newest first)
        elif len(polls) == 3:
            entries.insert(0, ledger(44)[0])
        elif len(polls) > 3:
            raise KeyboardInterrupt

    ran = cli("history", "acct-1", "-f", "-n", "5", sleep=sleep)
    assert ran.code == 0, ran.err
    shown = [line.split("[")[-1].rstrip("]") for line in ran.out.splitlines() if line.strip()]
    assert shown == ["entry-36", "entry-37", "entry-38", "entry-39", "entry-40",  # the tail
                     "entry-41", "entry-42", "entry-43", "entry-44"]  # then only what is new, in order
    assert polls == [2.0, 2.0, 2.0, 2.0]
    assert "following" in ran.err


def test_follow_json_prints_one_entry_per_line(cli, fake: FakeApi) -> None:
    entries = ledger(2)
    fake.route("GET", r"/admin/billing/accounts/acct-1/history", lambda request: paged(entries)(request))

    def sleep(seconds: float) -> None:
        if len(entries) == 2:
            entries.insert(0, ledger(3)[0])
        else:
            raise KeyboardInterrupt

    ran = cli("history", "acct-1", "--follow", "--json", "--interval", "0.5", sleep=sleep)
    assert [json.loads(line)["entryId"] for line in ran.out.splitlines()] == ["entry-1", "entry-2", "entry-3"]


def test_follow_keeps_going_when_the_api_blips(cli, fake: FakeApi) -> None:
    entries = ledger(1)
    state = {"polls": 0}
    fake.route("GET", r"/admin/billing/accounts/acct-1/history", lambda request: paged(entries)(request))

    def sleep(seconds: float) -> None:
        state["polls"] += 1
        if state["polls"] == 1:
            fake.stop()  # the next poll cannot connect (and its retries sleep here too)
        if state["polls"] > 3:
            raise KeyboardInterrupt

    ran = cli("history", "acct-1", "-f", "--max-retries", "1", sleep=sleep)
    assert ran.code == 0 and "still following" in ran.err


# -- the other commands' routes and bodies -------------------------------------------------------------
def test_balance_table_shows_micro_and_usd(cli, fake: FakeApi) -> None:
    fake.route("GET", r"/admin/billing/accounts/acct-1/balance", {
        "accountId": "acct-1", "totalAvailableMicro": "4820000", "lifetimePaidMicro": "5000000",
        "pools": [{"poolId": "general", "availableMicro": "4820000", "reservedMicro": "0", "consumedMicro": "180000",
                   "expiredMicro": "0", "debtMicro": "0"}]})
    ran = cli("balance", "acct-1")
    assert ran.code == 0
    assert "4820000 ($4.82)" in ran.out and "180000 ($0.18)" in ran.out and "5000000 ($5.00)" in ran.out


def test_descriptions_are_not_markup(cli, fake: FakeApi) -> None:
    fake.route("POST", r"/admin/billing/accounts/a/mint",
               Reply(201, {"lotId": "l", "description": "[bold]x[/] \x1b[31m"}))
    ran = cli("mint", "a", "5", *MINT)
    assert "[bold]x[/]" in ran.out and "\x1b" not in ran.out and "\\x1b[31m" in ran.out


def test_refund_and_grant_bodies(cli, fake: FakeApi) -> None:
    fake.route("POST", r"/admin/billing/accounts/a/refund", Reply(200, {"refundedMicro": "2000000"}))
    fake.route("POST", r"/admin/billing/campaigns/launch/grants", Reply(201, {"lotId": "l"}))
    ran = cli("refund", "a", "--usd", "2", "--reason", "dup", "--order-id", "ord-1", "--idempotency-key", "r1")
    assert ran.code == 0
    assert cli("campaigns", "grant", "launch", "a", "250000", "--description", "hi").code == 0
    refund, grant = fake.sent("POST")
    # No --pool: the server debits the top-up's own pool.
    assert refund.body == {"amountMicro": "2000000", "reason": "dup", "idempotencyKey": "r1", "orderId": "ord-1"}
    assert (grant.body["accountId"], grant.body["amountMicro"], grant.body["description"]) == ("a", "250000", "hi")
    assert grant.body["idempotencyKey"].startswith("billing-admin:grant:")


def test_campaign_commands(cli, fake: FakeApi) -> None:
    campaign = {"campaignId": "launch", "name": "Launch", "status": "active", "budgetMicro": "1000000000",
                "grantedMicro": "0", "remainingMicro": "1000000000", "perAccountCapMicro": "10000000",
                "poolId": "general", "grantExpiresAt": None, "createdAt": "2026-05-01T00:00:00Z"}
    fake.route("POST", r"/admin/billing/campaigns", Reply(201, campaign))
    fake.route("GET", r"/admin/billing/campaigns", {"campaigns": [campaign]})
    fake.route("GET", r"/admin/billing/campaigns/launch", campaign)
    fake.route("POST", r"/admin/billing/campaigns/launch/(pause|resume)", lambda r: Reply(
        200, {**campaign, "status": "paused" if r.match and r.match[1] == "pause" else "active"}))
    ran = cli("campaigns", "create", "--name", "Launch", "--budget-usd", "1000", "--per-account-cap", "10000000",
              "--id", "launch", "--grant-expires-at", "2030-01-01T00:00:00Z")
    assert ran.code == 0, ran.err
    assert fake.requests[-1].body == {"name": "Launch", "budgetMicro": "1000000000", "perAccountCapMicro": "10000000",
                                      "campaignId": "launch", "grantExpiresAt": "2030-01-01T00:00:00Z"}
    ran = cli("campaigns", "list")
    assert ran.code == 0 and "launch" in ran.out and "1000000000 ($1,000.00)" in ran.out
    assert cli("campaigns", "show", "launch", "--json").json() == campaign
    assert "paused" in cli("campaigns", "pause", "launch").out
    assert "active" in cli("campaigns", "resume", "launch").out


def test_dlq_list_and_replay(cli, fake: FakeApi) -> None:
    items = [{"itemId": f"item-{i}", "operation": "credit_payment", "status": "manual_review", "attempts": 5,
              "lastError": "boom", "nextRetryAt": None, "reference": {"orderId": f"o-{i}"},
              "createdAt": "2026-05-01T00:00:00Z", "updatedAt": "2026-05-01T00:10:00Z"} for i in range(130)]
    fake.route("GET", r"/admin/billing/dlq", paged(items, key="items"))
    fake.route("POST", r"/admin/billing/dlq/item-1/replay",
               {"itemId": "item-1", "status": "succeeded", "attempts": 6, "result": {"ok": True}})
    ran = cli("dlq", "list", "--status", "manual_review", "--limit", "120")
    assert ran.code == 0 and "item-119" in ran.out and "item-120" not in ran.out
    assert fake.requests[0].query["status"] == "manual_review"
    ran = cli("dlq", "replay", "item-1")
    assert ran.code == 0 and "succeeded" in ran.out


@pytest.mark.parametrize("status", ["manual_review", "pending"])
def test_dlq_replay_that_failed_again_exits_1(cli, fake: FakeApi, status: str) -> None:
    fake.route("POST", r"/admin/billing/dlq/item-2/replay",
               {"itemId": "item-2", "status": status, "attempts": 7, "lastError": "UnknownOrder: still unknown",
                "replayed": True, "result": None})
    ran = cli("dlq", "replay", "item-2")
    assert ran.code == 1, ran.out + ran.err
    assert "failed again" in ran.err and "still unknown" in ran.err
    assert cli("--json", "dlq", "replay", "item-2").code == 1


def test_ids_in_tables_are_never_wrapped_or_cut(cli, fake: FakeApi, monkeypatch) -> None:
    long_id = "work_" + "0123456789abcdef" * 3
    items = [{"itemId": long_id, "operation": "payment_event", "status": "manual_review", "attempts": 6,
              "lastError": "UnknownOrder: no top-up with orderId ord_0123456789abcdef and more words here",
              "nextRetryAt": None, "reference": "nowpayments:5077125051:finished",
              "createdAt": "2026-05-01T00:00:00Z", "updatedAt": "2026-05-01T00:10:00Z"}]
    fake.route("GET", r"/admin/billing/dlq", paged(items, key="items"))
    for columns in ("60", "120", "200"):
        monkeypatch.setenv("COLUMNS", columns)
        ran = cli("dlq", "list")
        assert ran.code == 0
        assert long_id in ran.out and "nowpayments:5077125051:finished" in ran.out, ran.out
        assert "2026-05-01 00:00:00Z" in ran.out and "manual_review" in ran.out, ran.out


RUN = {"runId": "run-1", "startedAt": "2026-05-01T00:00:00Z", "finishedAt": "2026-05-01T00:00:03Z",
       "lotsChecked": 12, "accountsChecked": 4, "driftRatio": "0"}


def test_reconcile_ok_and_violations_exit_codes(cli, fake: FakeApi) -> None:
    fake.route("GET", r"/admin/billing/reconciliation",
               {**RUN, "status": "ok", "invariantViolations": [], "driftedAccounts": []})
    fake.route("POST", r"/admin/billing/reconcile", {
        **RUN, "status": "violations",
        "invariantViolations": [{"lotId": "lot-9", "accountId": "a", "availableMicro": "5", "originalMicro": "4"}],
        "driftedAccounts": [{"accountId": "a", "driftMicro": "-1"}]})
    ran = cli("reconcile")
    assert ran.code == 0 and "run-1" in ran.out and fake.requests[-1].method == "GET"
    ran = cli("reconcile", "--now")
    assert ran.code == 3 and fake.requests[-1].method == "POST"
    assert "lot-9" in ran.out and "-1 (-$0.000001)" in ran.out and "violations" in ran.err
    ran = cli("reconcile", "--now", "--json")
    assert ran.code == 3 and ran.json()["status"] == "violations"


def test_revenue_shares_show_and_replace(cli, fake: FakeApi) -> None:
    fake.route("GET", r"/admin/billing/config", {"mode": "live", "revenueShares": {"sys-foundation": 1000}})
    fake.route("PUT", r"/admin/billing/config/revenue-shares", lambda r: Reply(200, {
        "revenueShares": r.body["shares"], "previousRevenueShares": {"sys-foundation": 1000},
        "updatedAt": "2026-05-01T00:00:00Z"}))
    ran = cli("revenue-shares")
    assert ran.code == 0 and "sys-foundation" in ran.out and "10.00%" in ran.out
    ran = cli("revenue-shares", "sys-foundation=1500", "sys-commons=500")
    assert ran.code == 0 and "15.00%" in ran.out
    assert fake.requests[-1].body == {"shares": {"sys-foundation": 1500, "sys-commons": 500}}
    assert cli("revenue-shares", "--clear").code == 0
    assert fake.requests[-1].body == {"shares": {}}


def test_mode_shows_the_config(cli, fake: FakeApi) -> None:
    fake.route("GET", r"/admin/billing/config", {"mode": "soft", "revenueShares": {"sys-commons": 500},
                                                 "updatedAt": "2026-05-01T00:00:00Z"})
    ran = cli("mode")
    assert ran.code == 0 and "soft" in ran.out and "sys-commons" in ran.out
    assert cli("mode", "--json").json()["mode"] == "soft"
