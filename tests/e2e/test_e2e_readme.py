"""The README's "Try it" walk-through, run exactly as printed (only `API=` points at the test
stack's port instead of 3000), and every printed promise checked against what came back."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

from devserver.template import REPO_ROOT
from devserver.testing import StackProcess

README = REPO_ROOT / "README.md"


def try_it_script() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Try it", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, "README has no bash block under 'Try it'"
    return match.group(1)


def json_documents(output: str) -> list[Any]:
    """curl -s prints each response without a newline: decode them one after another."""
    decoder = json.JSONDecoder()
    documents, index = [], 0
    while True:
        while index < len(output) and output[index].isspace():
            index += 1
        if index >= len(output):
            return documents
        document, index = decoder.raw_decode(output, index)
        documents.append(document)


def test_readme_walkthrough_as_printed(stack: StackProcess) -> None:
    script = try_it_script()
    assert "API=http://127.0.0.1:3000" in script
    script = script.replace("API=http://127.0.0.1:3000", f"API={stack.url}")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=REPO_ROOT, env=stack.environ,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    documents = json_documents(result.stdout)
    assert len(documents) == 7, result.stdout
    mode, lot, reservation, finalized, balance, history, pricing = documents

    # Go live.
    assert mode["mode"] == "live", mode

    # Mint $5 to acct-demo.
    assert lot["accountId"] == "acct-demo", lot
    assert lot["originalMicro"] == "5000000", lot
    assert lot["availableMicro"] == "5000000", lot
    assert lot["lotId"], lot

    # Reserve $0.25 as run-1.
    assert reservation["reservationId"] == "run-1", reservation
    assert reservation["reservedMicro"] == "250000", reservation
    assert reservation["billingMode"] == "live", reservation
    assert reservation["expiresAt"], reservation

    # Finalize at $0.18; the other $0.07 goes back.
    assert finalized["reservationId"] == "run-1", finalized
    assert finalized["finalizedMicro"] == "180000", finalized
    assert finalized["releasedMicro"] == "70000", finalized
    assert finalized["overrunMicro"] == "0", finalized
    assert finalized["billingMode"] == "live", finalized
    assert finalized["finalizedAt"], finalized

    # "The user sees 4.82 available".
    assert balance["accountId"] == "acct-demo", balance
    assert balance["totalAvailableMicro"] == "4820000", balance
    general = next(p for p in balance["pools"] if p["poolId"] == "general")
    assert general["availableMicro"] == "4820000", balance
    assert general["reservedMicro"] == "0", balance
    assert general["consumedMicro"] == "180000", balance

    # "... and the history of it", newest first.
    assert history["pagination"]["limit"] == 10, history
    assert history["pagination"]["hasMore"] is False, history
    kinds = [(e["entryType"], e["amountMicro"]) for e in history["entries"]]
    assert kinds == [("finalize", "180000"), ("reserve", "250000"), ("deposit", "5000000")], kinds
    assert all(e["accountId"] == "acct-demo" for e in history["entries"]), history

    # Public pricing shows the mode just set.
    assert pricing["billingMode"] == "live", pricing
    for key in ("pools", "rates", "tiers"):
        assert key in pricing, pricing


def money_in_script() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Money in, quotas and the operator CLI", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, "README has no bash block under 'Money in, quotas and the operator CLI'"
    return match.group(1)


def test_readme_money_in_walkthrough_as_printed(stack: StackProcess) -> None:
    """The second walk-through, with the first one's shell variables (as a reader would have them)."""
    setup = "\n".join(line for line in try_it_script().splitlines() if re.match(r"^[A-Z_]+=", line))
    setup = setup.replace("API=http://127.0.0.1:3000", f"API={stack.url}")
    user = subprocess.run([".venv/bin/python", "-m", "devserver.tokens", "user", "acct-demo"], cwd=REPO_ROOT,
                          env=stack.environ, capture_output=True, text=True, check=True).stdout.strip()
    before_balance = subprocess.run(["curl", "-s", f"{stack.url}/api/billing/balance", "-H",
                                     f"Authorization: Bearer {user}"], capture_output=True, text=True,
                                    check=True).stdout
    before = int(json.loads(before_balance)["totalAvailableMicro"])
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", setup + "\n" + money_in_script()], cwd=REPO_ROOT, env=stack.environ,
        capture_output=True, text=True, timeout=90, check=False,
    )
    assert result.returncode == 0, result.stderr
    documents = json_documents(result.stdout)
    assert len(documents) == 8, result.stdout
    first, second, topup, adjusted, plans, usage, summary, cli_balance = documents

    assert first["outcome"] == "credited" and first["creditedMicro"] == "10000000", first
    assert second["outcome"] == "duplicate", second
    assert topup["status"] == "finished" and topup["creditedMicro"] == "10000000", topup
    assert topup["providerCurrency"] == "btc", topup
    assert adjusted["previousBalanceMicro"] == str(before + 10_000_000), adjusted
    assert adjusted["newBalanceMicro"] == "12000000", adjusted
    assert {p["slug"] for p in plans["plans"]} >= {"internal-dev", "starter", "growth", "enterprise"}, plans
    assert usage["allowed"] is True, usage
    assert summary["orgId"] == "org-demo" and summary["planSlug"] == "starter", summary
    assert summary["billingStatus"] == "trial" and summary["usage"]["tokens"] >= 1500, summary
    assert cli_balance["accountId"] == "acct-demo" and cli_balance["totalAvailableMicro"] == "12000000", cli_balance
    assert int(cli_balance["lifetimePaidMicro"]) >= 10_000_000, cli_balance  # the top-up; the adjustment adds nothing


def test_readme_money_in_walkthrough_can_be_run_again(stack: StackProcess) -> None:
    """A reader who runs the block twice gets a second credited top-up, not a pending "duplicate"
    (each run signs its own payment_id)."""
    setup = "\n".join(line for line in try_it_script().splitlines() if re.match(r"^[A-Z_]+=", line))
    setup = setup.replace("API=http://127.0.0.1:3000", f"API={stack.url}")
    for _ in range(2):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", setup + "\n" + money_in_script()], cwd=REPO_ROOT,
            env=stack.environ, capture_output=True, text=True, timeout=90, check=False,
        )
        assert result.returncode == 0, result.stderr
        first, second, topup, *_ = json_documents(result.stdout)
        assert first["outcome"] == "credited" and second["outcome"] == "duplicate", (first, second)
        assert topup["status"] == "finished" and topup["creditedMicro"] == "10000000", topup


def test_the_walkthrough_never_overwrites_the_shells_user_variable() -> None:
    for script in (try_it_script(), money_in_script()):
        assert not re.search(r"^\s*(export\s+)?(USER|LOGNAME|HOME|PATH)=", script, re.MULTILINE), script
