"""Argument parsing: what each command accepts, and usage errors (exit 2) that send nothing."""

from __future__ import annotations

import pytest

from billing_admin.cli import build_parser
from tests.support.cli import Tty
from tests.support.fakeapi import FakeApi, Reply

MINT = ["--source-type", "deposit", "--description", "welcome"]


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_mint_parses_micro_and_options() -> None:
    args = parse("mint", "acct-1", "5000000", *MINT, "--pool", "promo", "--expires-at", "2030-01-01T00:00:00Z",
                 "--idempotency-key", "k1")
    assert (args.account, args.amount, args.usd, args.pool) == ("acct-1", 5_000_000, None, "promo")
    assert (args.source_type, args.description, args.expires_at, args.idempotency_key) == (
        "deposit", "welcome", "2030-01-01T00:00:00Z", "k1")
    assert args.json is False


def test_mint_usd_option() -> None:
    args = parse("mint", "acct-1", "--usd", "0.1", *MINT)
    assert (args.amount, args.usd) == (None, 100_000)


def test_common_options_go_before_or_after_the_command() -> None:
    before = parse("--json", "--url", "http://x:1", "balance", "acct-1")
    after = parse("balance", "acct-1", "--json", "--url", "http://x:1")
    for args in (before, after):
        assert args.json is True and args.url == "http://x:1" and args.account == "acct-1"
    assert parse("balance", "a").timeout == 30.0
    assert parse("--timeout", "5", "balance", "a").timeout == 5.0  # not reset by the subcommand


def test_nested_commands_parse() -> None:
    args = parse("campaigns", "grant", "launch", "acct-1", "250000", "--idempotency-key", "g1", "--json")
    assert (args.campaign, args.account, args.amount, args.idempotency_key, args.json) == (
        "launch", "acct-1", 250_000, "g1", True)
    assert parse("dlq", "list", "--status", "pending").status == "pending"
    assert parse("dlq", "replay", "item-1").item == "item-1"
    assert parse("reconcile", "--now").now is True
    assert parse("history", "acct-1", "-f", "-n", "5").follow is True
    assert parse("revenue-shares", "sys-foundation=1000", "sys-commons=0").shares == [
        ("sys-foundation", 1000), ("sys-commons", 0)]


def test_adjust_takes_signed_values() -> None:
    assert parse("adjust", "a", "--delta", "-250000", "--reason", "r").delta == -250_000
    assert parse("adjust", "a", "--set", "-1", "--reason", "r").set == -1
    assert parse("adjust", "a", "--set-usd", "-0.5", "--reason", "r").set_usd == -500_000


@pytest.mark.parametrize(("argv", "message"), [
    (["mint", "acct-1", "-1", *MINT], "must not be negative"),
    (["mint", "acct-1", "1e3", *MINT], "digits"),
    (["mint", "acct-1", "0", *MINT], "greater than zero"),
    (["mint", "acct-1", "5.5", *MINT], "digits"),
    (["mint", "acct-1", "--usd", "1e3", *MINT], "plain decimal"),
    (["mint", "acct-1", "--usd", "0.0000001", *MINT], "more than 6 decimal places"),
    (["mint", "acct-1", "--usd", "-1", *MINT], "must not be negative"),
    (["mint", "acct-1", *MINT], "an amount is required"),
    (["mint", "acct-1", "5", "--usd", "5", *MINT], "not both"),
    (["mint", "acct-1", "5", "--description", "x"], "--source-type"),
    (["mint", "acct-1", "5", "--source-type", "gift", "--description", "x"], "invalid choice"),
    (["mint", "acct-1", "5", *MINT, "--expires-at", "tomorrow"], "ISO-8601"),
    (["mint", "acct-1", "5", *MINT, "--expires-at", "2030-01-01T00:00:00"], "timezone"),
    (["adjust", "acct-1", "--reason", "r"], "exactly one of --set"),
    (["adjust", "acct-1", "--set", "1", "--delta", "1", "--reason", "r"], "exactly one of --set"),
    (["adjust", "acct-1", "--delta", "1.5", "--reason", "r"], "digits"),
    (["adjust", "acct-1", "--delt", "-5", "--reason", "r"], "unrecognized arguments"),  # no abbreviations
    (["--js", "balance", "acct-1"], "unrecognized arguments"),
    (["refund", "acct-1", "--reason", "r"], "an amount is required"),
    (["history", "acct-1", "--limit", "0"], "from 1 to"),
    (["revenue-shares", "sys-foundation=10001"], "ACCOUNT=BPS"),
    (["revenue-shares", "sys-foundation=1.5"], "ACCOUNT=BPS"),
    (["revenue-shares", "sys-a=6000", "sys-b=6000"], "more than 10000"),
    (["revenue-shares", "sys-a=1", "sys-a=2"], "given twice"),
    (["dlq", "list", "--status", "lost"], "invalid choice"),
    (["campaigns"], "choose an action"),
    (["campaigns", "create", "--name", "n"], "--budget"),
    (["campaigns", "grant", "c", "acct-1", "--usd", "0.0000005"], "more than 6 decimal places"),
    (["mode", "turbo"], "invalid choice"),
    (["nonsense"], "invalid choice"),
    ([], "required"),
])
def test_usage_errors_exit_2_and_send_nothing(cli, fake: FakeApi, argv: list[str], message: str) -> None:
    ran = cli(*argv)
    assert ran.code == 2, ran
    assert message in ran.err
    assert fake.requests == []


def test_missing_credentials_is_a_usage_error(cli, fake: FakeApi) -> None:
    ran = cli("balance", "acct-1", env={"BILLING_ADMIN_JWT_SECRET": None})
    assert ran.code == 2
    assert "BILLING_ADMIN_TOKEN" in ran.err and "BILLING_ADMIN_JWT_SECRET" in ran.err
    assert fake.requests == []


@pytest.mark.parametrize("url", ["ftp://x", "127.0.0.1:3000", "http://", "http://h/?q=1"])
def test_a_bad_url_is_a_usage_error(cli, fake: FakeApi, url: str) -> None:
    assert cli("balance", "acct-1", "--url", url).code == 2
    assert fake.requests == []


def test_usd_amount_is_sent_as_an_exact_decimal_string(cli, fake: FakeApi) -> None:
    fake.route("POST", r"/admin/billing/accounts/acct-1/mint", Reply(201, {"lotId": "lot-1"}))
    ran = cli("mint", "acct-1", "--usd", "0.1", *MINT)
    assert ran.code == 0, ran.err
    (sent,) = fake.sent("POST")
    assert sent.body["amountMicro"] == "100000"
    assert sent.body["poolId"] == "general" and sent.body["sourceType"] == "deposit"
    assert sent.body["idempotencyKey"].startswith("billing-admin:mint:")  # the CLI's own retries are exactly-once


def test_adjust_sends_signed_decimal_strings(cli, fake: FakeApi) -> None:
    fake.route("POST", r"/admin/billing/accounts/acct-1/adjust", Reply(200, {"newBalanceMicro": "-5"}))
    assert cli("adjust", "acct-1", "--delta", "-250000", "--reason", "goodwill").code == 0
    assert cli("adjust", "acct-1", "--set-usd", "-0.000005", "--reason", "fix", "--pool", "p1").code == 0
    first, second = fake.sent("POST")
    assert first.body["deltaMicro"] == "-250000" and "balanceMicro" not in first.body
    assert second.body["balanceMicro"] == "-5" and second.body["poolId"] == "p1"
    assert second.body["reason"] == "fix"


def test_switching_to_live_asks_first(cli, fake: FakeApi) -> None:
    fake.route("GET", r"/admin/billing/config", {"mode": "soft", "revenueShares": {}})
    fake.route("PUT", r"/admin/billing/config/mode", {"mode": "live", "previousMode": "soft"})

    ran = cli("mode", "live")  # nobody at a terminal to answer
    assert ran.code == 2 and "--yes" in ran.err
    ran = cli("mode", "live", stdin=Tty("n"))
    assert ran.code == 1 and "not confirmed" in ran.err
    assert fake.sent("PUT") == []

    ran = cli("mode", "live", stdin=Tty("y"))
    assert ran.code == 0, ran.err
    assert "(now soft)" in ran.err  # the question names the current mode
    assert cli("mode", "live", "--yes").code == 0
    assert [r.body for r in fake.sent("PUT")] == [{"mode": "live"}, {"mode": "live"}]


def test_other_modes_switch_without_asking(cli, fake: FakeApi) -> None:
    fake.route("PUT", r"/admin/billing/config/mode", {"mode": "shadow", "previousMode": "live"})
    ran = cli("mode", "shadow")
    assert ran.code == 0 and "live -> shadow" in ran.out


def test_version_and_help_exit_0(cli) -> None:
    assert cli("--version").code == 0
    ran = cli("--help")
    assert ran.code == 0 and "BILLING_ADMIN_JWT_SECRET" in ran.out
    assert cli("mint-batch", "--help").code == 0
