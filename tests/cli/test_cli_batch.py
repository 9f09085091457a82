"""mint-batch and campaigns grant-batch: the file is checked before anything is sent, every row has
an idempotency key (its own, or one derived from the batch and the row), re-running a file mints
nothing twice, and the summary counts ok and failed rows by code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billing_admin.batch import MAX_KEY_LENGTH, derive_key
from tests.support.fakeapi import FakeApi, Reply, Request, error


class IdempotentMints:
    """The API's rule: same key and request -> the original answer; same key, other request -> 409."""

    def __init__(self, refuse: dict[str, Reply] | None = None) -> None:
        self.by_key: dict[str, tuple[str, dict]] = {}
        self.lots: list[dict] = []
        self.refuse = refuse or {}

    def __call__(self, request: Request) -> Reply:
        account = request.match[1] if request.match else "?"
        if account in self.refuse:
            return self.refuse[account]
        key = request.body["idempotencyKey"]
        fingerprint = json.dumps({**request.body, "account": account, "idempotencyKey": None}, sort_keys=True)
        if key in self.by_key:
            seen, lot = self.by_key[key]
            return Reply(201, lot) if seen == fingerprint else error(409, "IDEMPOTENCY_KEY_REUSED", "key reused")
        lot = {"lotId": f"lot-{len(self.lots) + 1}", "accountId": account, "originalMicro": request.body["amountMicro"]}
        self.lots.append(lot)
        self.by_key[key] = (fingerprint, lot)
        return Reply(201, lot)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GRANTS = """account,amount_micro,description,pool,idempotency_key
acct-a,5000000,welcome,,
acct-b,2500000,welcome,promo,
acct-c,1,own key,,my-key-1
"""


def test_a_rerun_mints_nothing_twice(cli, fake: FakeApi, tmp_path: Path) -> None:
    mints = IdempotentMints()
    fake.route("POST", r"/admin/billing/accounts/([^/]+)/mint", mints)
    path = write(tmp_path, "grants-2026-05.csv", GRANTS)

    first = cli("mint-batch", str(path))
    assert first.code == 0, first.err
    keys = [r.body["idempotencyKey"] for r in fake.requests]
    assert keys == ["mint-batch:grants-2026-05.csv:row-1", "mint-batch:grants-2026-05.csv:row-2", "my-key-1"]
    assert [r.body["poolId"] for r in fake.requests] == ["general", "promo", "general"]
    assert {r.body["sourceType"] for r in fake.requests} == {"admin_mint"}
    assert len(mints.lots) == 3
    assert "7500001 ($7.500001)" in first.out  # the ok total

    second = cli("mint-batch", str(path), "--json")  # from another directory, same file name: same keys
    assert second.code == 0
    assert [r.body["idempotencyKey"] for r in fake.requests[3:]] == keys
    assert len(mints.lots) == 3  # nothing minted twice
    report = second.json()
    assert (report["ok"], report["failed"], report["rows"]) == (3, 0, 3)
    assert [r["response"]["lotId"] for r in report["results"]] == ["lot-1", "lot-2", "lot-3"]


def test_an_edited_row_is_refused_not_minted_again(cli, fake: FakeApi, tmp_path: Path) -> None:
    mints = IdempotentMints()
    fake.route("POST", r"/admin/billing/accounts/([^/]+)/mint", mints)
    path = write(tmp_path, "grants.csv", GRANTS)
    assert cli("mint-batch", str(path)).code == 0
    write(tmp_path, "grants.csv", GRANTS.replace("acct-b,2500000", "acct-b,2600000"))
    ran = cli("mint-batch", str(path))
    assert ran.code == 1
    assert "IDEMPOTENCY_KEY_REUSED" in ran.out and len(mints.lots) == 3


def test_failed_rows_are_summed_up_by_code(cli, fake: FakeApi, tmp_path: Path) -> None:
    mints = IdempotentMints(refuse={"sys-foundation": error(422, "SYSTEM_ACCOUNT", "no minting to system accounts"),
                                    "acct-x": error(422, "VALIDATION_ERROR", "request is invalid")})
    fake.route("POST", r"/admin/billing/accounts/([^/]+)/mint", mints)
    path = write(tmp_path, "mixed.csv", "account,amount_micro,description\nacct-a,5,ok\nsys-foundation,5,no\n"
                                        "acct-x,5,no\nacct-b,5,ok\n")
    ran = cli("mint-batch", str(path))
    assert ran.code == 1
    assert "SYSTEM_ACCOUNT" in ran.out and "VALIDATION_ERROR" in ran.out and "failed rows" in ran.out
    assert "re-running the same file is safe" in ran.err
    report = cli("mint-batch", str(path), "--json").json()
    assert [r["status"] for r in report["results"]] == ["ok", "failed", "failed", "ok"]
    assert report["results"][1]["error"]["code"] == "SYSTEM_ACCOUNT"


def test_a_refused_token_stops_the_batch(cli, fake: FakeApi, tmp_path: Path) -> None:
    fake.route("POST", r"/admin/billing/accounts/([^/]+)/mint", error(401, "INVALID_TOKEN", "bad signature"))
    path = write(tmp_path, "b.csv", "account,amount_micro,description\na,1,x\nb,1,x\nc,1,x\n")
    ran = cli("mint-batch", str(path), "--json")
    assert ran.code == 1 and len(fake.requests) == 1
    assert [r["status"] for r in ran.json()["results"]] == ["failed", "not_attempted", "not_attempted"]


def test_rate_limits_inside_a_batch_are_waited_out(cli, fake: FakeApi, tmp_path: Path) -> None:
    mints = IdempotentMints()
    state = {"n": 0}

    def handler(request: Request) -> Reply:
        state["n"] += 1
        if state["n"] == 2:
            refused = error(429, "RATE_LIMITED", "30 requests a minute")
            refused.headers["Retry-After"] = "11"
            return refused
        return mints(request)

    fake.route("POST", r"/admin/billing/accounts/([^/]+)/mint", handler)
    path = write(tmp_path, "b.csv", "account,amount_micro,description\na,1,x\nb,1,x\nc,1,x\n")
    ran = cli("mint-batch", str(path))
    assert ran.code == 0 and ran.sleeps == [11.0] and "Retry-After" in ran.err
    assert len(mints.lots) == 3


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty file"),
    ("account,amount_micro\n", "missing: description"),
    ("account,amount_micro,description,colour\na,1,x,red\n", "unknown: colour"),
    ("account,amount_micro,description\n", "no data rows"),
    ("account,amount_micro,description\na,1.5,x\n", "row 1 (line 2): amount_micro"),
    ("account,amount_micro,description\na,-5,x\n", "must not be negative"),
    ("account,amount_micro,description\na,1e3,x\n", "digits"),
    ("account,amount_micro,description\n,5,x\n", "account is empty"),
    ("account,amount_micro,description\na,5,\n", "description is empty"),
    ("account,amount_micro,description\na,5,x,extra\n", "4 cells for 3 columns"),
    ("account,amount_usd,description\na,0.0000001,x\n", "more than 6 decimal places"),
    ("account,amount_micro,amount_usd,description\na,5,5,x\n", "exactly one of amount_micro and amount_usd"),
    ("account,amount_micro,description,idempotency_key\na,5,x,k\nb,5,x,k\n", "already used by row 1"),
    ("account,amount_micro,description,source_type\na,5,x,gift\n", "source_type: must be one of"),
    ("account,amount_micro,description,expires_at\na,5,x,soon\n", "expires_at: must be an ISO-8601"),
])
def test_a_bad_file_sends_nothing(cli, fake: FakeApi, tmp_path: Path, text: str, message: str) -> None:
    ran = cli("mint-batch", str(write(tmp_path, "bad.csv", text)))
    assert ran.code == 2, ran
    assert message in ran.err
    assert fake.requests == []


def test_a_missing_file_is_a_usage_error(cli, fake: FakeApi, tmp_path: Path) -> None:
    ran = cli("mint-batch", str(tmp_path / "nope.csv"))
    assert ran.code == 2 and "no such file" in ran.err


def test_dry_run_needs_no_credentials_and_sends_nothing(cli, fake: FakeApi, tmp_path: Path) -> None:
    path = write(tmp_path, "plan.csv", "\ufeffAccount, Amount_USD ,Description\nacct-a,0.1,hello\n\nacct-b,2,x\n")
    ran = cli("mint-batch", str(path), "--dry-run", "--json", env={"BILLING_ADMIN_JWT_SECRET": None})
    assert ran.code == 0 and fake.requests == []
    rows = ran.json()["rows"]
    assert [(r["accountId"], r["amountMicro"], r["idempotencyKey"]) for r in rows] == [
        ("acct-a", "100000", "mint-batch:plan.csv:row-1"), ("acct-b", "2000000", "mint-batch:plan.csv:row-2")]
    assert "dry run" in cli("mint-batch", str(path), "--dry-run").out


def test_batch_id_names_the_keys(cli, fake: FakeApi, tmp_path: Path) -> None:
    path = write(tmp_path, "grants.csv", "account,amount_micro,description\na,1,x\n")
    ran = cli("mint-batch", str(path), "--dry-run", "--json", "--batch-id", "2026-05-promo")
    assert ran.json()["rows"][0]["idempotencyKey"] == "mint-batch:2026-05-promo:row-1"


def test_derived_keys_stay_within_the_apis_limit() -> None:
    assert derive_key("mint-batch", "f.csv", 3) == "mint-batch:f.csv:row-3"
    assert derive_key("grant-batch", "f.csv", 3, scope="launch") == "grant-batch:launch:f.csv:row-3"
    long_key = derive_key("grant-batch", "x" * 200, 12, scope="c" * 128)
    assert len(long_key) <= MAX_KEY_LENGTH and long_key.endswith(":row-12")
    assert long_key == derive_key("grant-batch", "x" * 200, 12, scope="c" * 128)  # stable
    assert long_key != derive_key("grant-batch", "y" * 200, 12, scope="c" * 128)


def test_grant_batch_keys_are_scoped_to_the_campaign(cli, fake: FakeApi, tmp_path: Path) -> None:
    grants: list[dict] = []
    fake.route("GET", r"/admin/billing/campaigns/launch", {"campaignId": "launch", "remainingMicro": "3"})
    fake.route("POST", r"/admin/billing/campaigns/launch/grants",
               lambda r: (grants.append(r.body), Reply(201, {"lotId": f"lot-{len(grants)}"}))[1])
    path = write(tmp_path, "launch.csv", "account,amount_micro,description\na,2,hi\nb,2,\n")
    ran = cli("campaigns", "grant-batch", "launch", str(path))
    assert ran.code == 0, ran.err
    assert "has 3 ($0.000003) left" in ran.err  # warned before granting beyond the budget
    assert grants == [
        {"accountId": "a", "amountMicro": "2", "idempotencyKey": "grant-batch:launch:launch.csv:row-1",
         "description": "hi"},
        {"accountId": "b", "amountMicro": "2", "idempotencyKey": "grant-batch:launch:launch.csv:row-2"},
    ]
