"""billing-admin end to end: the installed command, run as a subprocess, against the local stack
(what `make run` serves), with a short-lived admin token minted from the stack's admin secret.

What the CLI did is checked through the API's own user-facing routes where there is one (balance,
history and pricing with a user token), not only through the CLI's own output.

Routes that a tree does not serve yet answer 404 ROUTE_NOT_FOUND: a case that meets one is skipped
(and says which command), any other failure fails.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from devserver.testing import StackProcess, start_stack

SCRIPT = Path(sys.executable).with_name("billing-admin")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "billing_admin.cli"]
TIMEOUT = 90


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    running = start_stack(log_dir=tmp_path_factory.mktemp("cli-e2e-stack"))
    try:
        yield running
    finally:
        running.stop()


class Cli:
    """`billing-admin ...` as an operator runs it: BILLING_API_URL and BILLING_ADMIN_JWT_SECRET set,
    and one actor per test (the admin rate limit is 30/min per actor)."""

    def __init__(self, stack: StackProcess, actor: str) -> None:
        self.stack = stack
        self.actor = actor
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("BILLING_ADMIN_TOKEN", "BILLING_ADMIN_JWT_AUDIENCE", "BILLING_API_URL")}
        self.env.update({"BILLING_API_URL": stack.url, "COLUMNS": "250",
                         "BILLING_ADMIN_JWT_SECRET": stack.secrets["BILLING_ADMIN_JWT_SECRET"]})

    def command(self, *args: str) -> list[str]:
        return [*COMMAND, *args, "--actor", self.actor]

    def __call__(self, *args: str, expect: int | None = 0, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.command(*args), env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=TIMEOUT, cwd=cwd)
        if done.returncode == 1 and "error: ROUTE_NOT_FOUND" in done.stderr:
            pytest.skip(f"route not served yet: billing-admin {' '.join(args[:2])}")
        if expect is not None:
            assert done.returncode == expect, (args, done.returncode, done.stdout[-3000:], done.stderr[-3000:])
        assert self.stack.secrets["BILLING_ADMIN_JWT_SECRET"] not in done.stdout + done.stderr
        return done

    def json(self, *args: str, expect: int | None = 0) -> Any:
        return json.loads(self(*args, "--json", expect=expect).stdout)

    # the API's own user-facing view, for checking what the CLI did
    def user_get(self, path: str, account: str, **params: Any) -> Any:
        response = requests.get(self.stack.url + path, params=params or None, timeout=30,
                                headers={"Authorization": f"Bearer {self.stack.token('user', account)}"})
        assert response.status_code == 200, response.text
        return response.json()

    def available(self, account: str) -> int:
        return int(self.user_get("/api/billing/balance", account)["totalAvailableMicro"])

    def pricing_mode(self) -> str:
        return requests.get(self.stack.url + "/api/billing/pricing", timeout=30).json()["billingMode"]


@pytest.fixture
def cli(stack: StackProcess, request: pytest.FixtureRequest) -> Cli:
    return Cli(stack, unique(f"ops-cli-{request.node.name[5:20]}".replace("_", "-")))


# -- mint, balance, history, mode: the routes served from the start ---------------------------------
def test_mint_then_balance_and_history(cli: Cli) -> None:
    account = unique("acct-cli")
    lot = cli.json("mint", account, "5000000", "--source-type", "deposit", "--description", "welcome credit")
    assert lot["accountId"] == account and lot["originalMicro"] == "5000000" and lot["poolId"] == "general"
    shown = cli("mint", account, "--usd", "0.25", "--source-type", "grant", "--description", "top [up]").stdout
    assert "250000 ($0.25)" in shown and "top [up]" in shown
    assert cli.available(account) == 5_250_000  # the API's own view

    balance = cli.json("balance", account)
    assert balance["totalAvailableMicro"] == "5250000"
    assert "5250000 ($5.25)" in cli("balance", account).stdout

    entries = cli.json("history", account)["entries"]
    assert [(e["entryType"], e["amountMicro"], e["description"]) for e in entries] == [
        ("deposit", "250000", "top [up]"), ("deposit", "5000000", "welcome credit")]
    assert all(e["actor"].endswith(cli.actor) for e in entries)  # the minted token's subject is the actor
    table = cli("history", account).stdout
    assert table.index("welcome credit") < table.index("top [up]")  # oldest first, like tail


def test_mint_with_a_key_is_exactly_once(cli: Cli) -> None:
    account = unique("acct-cli")
    args = ["mint", account, "--usd", "1.5", "--source-type", "deposit", "--description", "once",
            "--idempotency-key", unique("key")]
    first, second = cli.json(*args), cli.json(*args)
    assert first["lotId"] == second["lotId"]
    assert cli.available(account) == 1_500_000


def test_api_errors_exit_1_with_the_code(cli: Cli) -> None:
    done = cli("mint", "sys-foundation", "5", "--source-type", "deposit", "--description", "x", expect=1)
    assert "SYSTEM_ACCOUNT" in done.stderr
    body = cli.json("mint", "sys-commons", "5", "--source-type", "deposit", "--description", "x", expect=1)
    assert body["error"]["code"] == "SYSTEM_ACCOUNT"
    wrong = "not-the-admin-secret-but-long-enough-0000000000"
    done = cli("balance", unique("acct-cli"), expect=1, env={"BILLING_ADMIN_JWT_SECRET": wrong})
    assert "HTTP 401" in done.stderr and wrong not in done.stdout + done.stderr


def test_usage_errors_send_nothing(cli: Cli) -> None:
    account = unique("acct-cli")
    for amount in (["-1"], ["1e3"], ["--usd", "0.0000001"]):
        cli("mint", account, *amount, "--source-type", "deposit", "--description", "x", expect=2)
    assert cli.available(account) == 0


def test_mode_switches_and_reads_back(cli: Cli) -> None:
    assert cli.json("mode", "shadow")["mode"] == "shadow"
    switched = cli.json("mode", "soft")
    assert (switched["mode"], switched["previousMode"]) == ("soft", "shadow")
    assert switched["updatedBy"].endswith(cli.actor)
    assert cli.pricing_mode() == "soft"

    done = cli("mode", "live", expect=2)  # not a terminal, no --yes: refused, nothing changed
    assert "--yes" in done.stderr
    assert cli.pricing_mode() == "soft"
    assert cli.json("mode", "live", "--yes")["previousMode"] == "soft"
    assert cli.pricing_mode() == "live"
    assert "live -> shadow" in cli("mode", "shadow").stdout
    assert cli.pricing_mode() == "shadow"

    config = cli.json("mode")  # GET /admin/billing/config
    assert config["mode"] == "shadow"
    assert "shadow" in cli("mode").stdout


def test_token_is_an_admin_token_for_this_stack(cli: Cli) -> None:
    token = cli("token").stdout.strip()
    claims = jwt.decode(token, cli.stack.secrets["BILLING_ADMIN_JWT_SECRET"], algorithms=["HS256"],
                        audience="arrakis-billing-admin")
    assert claims["sub"] == cli.actor and claims["exp"] - claims["iat"] <= 300
    response = requests.put(cli.stack.url + "/admin/billing/config/mode", json={"mode": "shadow"}, timeout=30,
                            headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


def test_history_follow_prints_new_entries(cli: Cli) -> None:
    account = unique("acct-cli")
    cli("mint", account, "100", "--source-type", "deposit", "--description", "before following")
    process = subprocess.Popen(cli.command("history", account, "-f", "--interval", "0.5"), env=cli.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or []], daemon=True).start()

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None, (process.returncode, process.stderr.read() if process.stderr else "")
                continue
            if text in line:
                return line
        raise AssertionError(f"{text!r} not followed")

    try:
        wait_for("before following")
        cli("mint", account, "7", "--source-type", "grant", "--description", "while following")
        assert "7 ($0.000007)" in wait_for("while following")
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(15)
    assert code == 0


# -- the commands whose routes arrived later (skipped where the tree does not serve them) ------------
def test_adjust_and_refund(cli: Cli) -> None:
    account = unique("acct-cli")
    cli("mint", account, "5000000", "--source-type", "deposit", "--description", "start")
    moved = cli.json("adjust", account, "--delta", "-250000", "--reason", "support correction")
    assert (moved["previousBalanceMicro"], moved["newBalanceMicro"]) == ("5000000", "4750000")
    assert cli.available(account) == 4_750_000
    set_to = cli.json("adjust", account, "--set", "-1000", "--reason", "write-off")
    assert set_to["newBalanceMicro"] == "-1000"
    assert cli.available(account) == -1000
    cli("adjust", account, "--set-usd", "2", "--reason", "reset")
    refunded = cli.json("refund", account, "--usd", "0.5", "--reason", "duplicate charge")
    assert (refunded["previousBalanceMicro"], refunded["newBalanceMicro"]) == ("2000000", "1500000")
    types = [e["entryType"] for e in cli.user_get("/api/billing/history", account)["entries"]]
    assert types[:4] == ["refund", "adjustment", "adjustment", "adjustment"], types


def test_mint_batch_never_mints_a_row_twice(cli: Cli, tmp_path: Path) -> None:
    accounts = [unique("acct-cli") for _ in range(3)]
    path = tmp_path / f"{unique('batch')}.csv"
    path.write_text("account,amount_micro,description,pool\n"
                    f"{accounts[0]},1000000,batch one,\n{accounts[1]},2000000,batch two,promo\n"
                    f"sys-foundation,5,refused,\n{accounts[2]},3000000,batch three,\n")
    first = cli("mint-batch", str(path), expect=1)  # one row is refused
    assert "SYSTEM_ACCOUNT" in first.stdout and "failed rows" in first.stdout
    report = cli.json("mint-batch", str(path), expect=1)  # the re-run replays the three minted rows
    assert [r["status"] for r in report["results"]] == ["ok", "ok", "failed", "ok"]
    assert report["results"][0]["idempotencyKey"] == f"mint-batch:{path.name}:row-1"
    assert [cli.available(a) for a in accounts] == [1_000_000, 2_000_000, 3_000_000]
    pools = cli.user_get("/api/billing/balance", accounts[1])["pools"]
    assert [p["poolId"] for p in pools] == ["promo"]


def test_revenue_shares_show_and_replace(cli: Cli) -> None:
    before = cli.json("revenue-shares")["revenueShares"]
    try:
        changed = cli.json("revenue-shares", "sys-foundation=1200", "sys-commons=300")
        assert {k: int(v) for k, v in changed["revenueShares"].items()} == {"sys-foundation": 1200, "sys-commons": 300}
        assert "12.00%" in cli("revenue-shares").stdout
    finally:
        cli("revenue-shares", *(f"{k}={v}" for k, v in before.items()), *([] if before else ["--clear"]))


def test_campaigns(cli: Cli, tmp_path: Path) -> None:
    campaign = unique("cmp-cli")
    created = cli.json("campaigns", "create", "--id", campaign, "--name", "CLI launch", "--budget-usd", "10",
                       "--per-account-cap", "4000000")
    assert (created["campaignId"], created["budgetMicro"], created["status"]) == (campaign, "10000000", "active")
    assert campaign in cli("campaigns", "list").stdout
    account = unique("acct-cli")
    cli("campaigns", "grant", campaign, account, "3000000", "--description", "hello")
    assert cli.available(account) == 3_000_000
    done = cli("campaigns", "grant", campaign, account, "2000000", expect=1)  # over the per-account cap
    assert "ACCOUNT_CAP_EXCEEDED" in done.stderr

    others = [unique("acct-cli") for _ in range(2)]
    path = tmp_path / "launch-grants.csv"
    path.write_text(f"account,amount_micro\n{others[0]},1000000\n{others[1]},1000000\n")
    cli("campaigns", "grant-batch", campaign, str(path))
    cli("campaigns", "grant-batch", campaign, str(path))  # re-run: granted once
    assert [cli.available(a) for a in others] == [1_000_000, 1_000_000]
    shown = cli.json("campaigns", "show", campaign)
    assert (shown["grantedMicro"], shown["remainingMicro"]) == ("5000000", "5000000")

    assert cli.json("campaigns", "pause", campaign)["status"] == "paused"
    cli("campaigns", "grant", campaign, unique("acct-cli"), "1", expect=1)
    assert cli.json("campaigns", "resume", campaign)["status"] == "active"


def test_dlq_list_and_replay(cli: Cli) -> None:
    for status in ("pending", "manual_review", "succeeded"):
        body = cli.json("dlq", "list", "--status", status, "--limit", "5")
        assert isinstance(body["items"], list) and "pagination" in body
    assert "dead-letter queue" in cli("dlq", "list").stdout
    done = cli("dlq", "replay", unique("no-such-item"), expect=1)
    assert "HTTP 404" in done.stderr


def test_reconcile_now_then_the_stored_result(cli: Cli) -> None:
    account = unique("acct-cli")
    cli("mint", account, "1000", "--source-type", "deposit", "--description", "for the reconciler")
    done = cli("reconcile", "--now", "--json", expect=None)
    run = json.loads(done.stdout)
    assert done.returncode == (3 if run["status"] == "violations" else 0), done.stderr
    assert run["status"] in ("ok", "violations") and run["lotsChecked"] >= 1
    stored = cli.json("reconcile", expect=None)
    assert stored["runId"] == run["runId"]
    assert "reconciliation" in cli("reconcile", expect=None).stdout


def test_webhook_endpoints_and_balance_alerts(cli: Cli) -> None:
    created = cli.json("webhooks", "create", "http://127.0.0.1:9/hooks", "--event", "topup.credited",
                       "--event", "balance.low", "--description", "cli test")
    endpoint = created["endpointId"]
    assert created["secret"].startswith("whsec_") and created["events"] == ["topup.credited", "balance.low"]
    listed = cli.json("webhooks", "list")["endpoints"]
    assert endpoint in [e["endpointId"] for e in listed] and created["secret"] not in json.dumps(listed)
    assert endpoint in cli("webhooks", "list").stdout
    assert cli.json("webhooks", "disable", endpoint)["status"] == "disabled"
    assert cli.json("webhooks", "enable", endpoint)["status"] == "enabled"
    rotated = cli.json("webhooks", "rotate", endpoint)
    assert rotated["secret"] != created["secret"] and rotated["previousSecretExpiresAt"]
    assert cli.json("webhooks", "delete", endpoint) == {"endpointId": endpoint, "deleted": True}
    assert "HTTP 404" in cli("webhooks", "delete", endpoint, expect=1).stderr
    refused = cli("webhooks", "create", "https://169.254.169.254/latest", "--event", "work.parked", expect=1)
    assert "WEBHOOK_URL_REFUSED" in refused.stderr
    account = unique("acct-cli")
    assert cli.json("balance-alert", account, "--usd", "2.50") == {
        "accountId": account, "lowBalanceMicro": "2500000", "source": "account"}
    assert cli.json("balance-alert", account)["lowBalanceMicro"] == "2500000"
    assert cli.json("balance-alert", account, "--default")["source"] == "default"
