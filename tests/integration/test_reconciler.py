"""The reconciler against the patched in-process moto: a realistic mixed workload through the
handlers reconciles to the micro-unit; corruption written straight into the tables is named
(the lot, the account, what drifted); traffic during the scan raises no false drift; the
stored result, the metrics and the scheduled handler are what an operator sees.

The workload runs once for the tests of TestMixedWorkload (one backend for the class); each
corruption there is undone after its test, so every test starts from the same clean ledger.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from devserver.invoke import LambdaContext, load_handler, load_module, proxy_event, reply
from tests.support.backend import in_process_moto
from tests.support.env import ROOT, TEST_ENV
from tests.support.handlers import Api, Reply
from tests.support.tables import ledger, lots, scan
from tests.support.tokens import Tokens

UNIT = 1_000_000
SYSTEM_BPS = {"sys-foundation": 1000, "sys-commons": 500, "sys-community-pool": 250}


class Ops:
    """The calls of the workload, through the handlers as callers make them."""

    def __init__(self, api: Any, tokens: Any) -> None:
        self.api, self.tokens = api, tokens
        self.svc = tokens.internal("svc-recon")
        self._admins = (tokens.admin(f"ops-recon-{i}") for i in itertools.count())  # 30/min each
        self._admin, self._admin_calls = next(self._admins), 0
        self.charged: list[int] = []  # every soft/live finalized amount, for the expected revenue

    def admin(self) -> str:
        self._admin_calls += 1
        if self._admin_calls % 20 == 0:
            self._admin = next(self._admins)
        return self._admin

    def mode(self, mode: str) -> None:
        r = self.api.set_mode(mode, token=self.admin())
        assert r.status == 200, r

    def mint(self, account: str, amount: int, **extra: Any) -> dict[str, Any]:
        r = self.api.mint(account, amount, token=self.admin(), **extra)
        assert r.status == 201, r
        return r.body

    def reserve(self, account: str, estimate: int, **extra: Any) -> str:
        r = self.api.call("reserve", {"accountId": account, "estimatedCostMicro": str(estimate), **extra},
                          token=self.svc)
        assert r.status == 201, r
        return r.body["reservationId"]

    def finalize(self, reservation_id: str, actual: int, *, expect: int = 200) -> Reply:
        r = self.api.call("finalize", {"reservationId": reservation_id, "actualCostMicro": str(actual)},
                          token=self.svc)
        assert r.status == expect, r
        if r.status == 200 and r.body["billingMode"] != "shadow":
            self.charged.append(int(r.body["finalizedMicro"]))
        return r

    def release(self, reservation_id: str) -> None:
        r = self.api.call("release", {"reservationId": reservation_id}, token=self.svc)
        assert r.status == 200, r

    def admin_route(self, action: str, account: str, body: dict[str, Any]) -> dict[str, Any]:
        """adjust/refund: the admin handler, invoked on the routes' paths (not yet in template.yaml)."""
        proxy = proxy_event("POST", f"/admin/billing/accounts/{{accountId}}/{action}", body=body,
                            token=self.admin(), path={"accountId": account})
        r = Reply(*reply(load_handler("admin").lambda_handler(proxy, LambdaContext())))
        assert r.status == 200, r
        return r.body

    def expected_revenue(self) -> dict[str, int]:
        return {name: sum(c * bps // 10_000 for c in self.charged) for name, bps in SYSTEM_BPS.items()}


@pytest.fixture
def ops(api: Any, tokens: Any) -> Ops:
    return Ops(api, tokens)


@pytest.fixture
def reconciler(aws: Any):
    from billing_core.kernel import clock
    from billing_core.reconciler import run as reconciler

    yield reconciler
    clock.reset()


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """The metrics the reconciler emits, by name (the last value of each)."""
    from billing_core.kernel import observability

    seen: dict[str, float] = {}

    def gauge(name: str, value: float, unit: Any = None) -> None:
        seen[name] = value

    monkeypatch.setattr(observability, "gauge", gauge)
    return seen


def mixed_workload(ops: Ops) -> dict[str, Any]:
    """Every kind of money move, in every mode, leaving pending holds of each kind behind."""
    from billing_core.kernel import clock
    from billing_core.kernel.context import Caller, Context
    from billing_core.payments import events, refunds, topups
    from billing_core.payments.model import PaymentEvent

    # live: under, at and over the estimate; release; a lazy expiry; one left pending.
    ops.mode("live")
    ops.mint("acct-live", 10 * UNIT)
    ops.mint("acct-live", 3 * UNIT, expiresAt=clock.iso(clock.now() + 3600), description="expiring credit")
    ops.finalize(ops.reserve("acct-live", 2 * UNIT), 1_500_001)
    ops.finalize(ops.reserve("acct-live", 1 * UNIT), 1 * UNIT)
    ops.finalize(ops.reserve("acct-live", 1 * UNIT), 3 * UNIT + 7)  # overrun: capped at the estimate
    ops.finalize(ops.reserve("acct-live", 9 * UNIT), 0)  # spans both lots, charges nothing
    ops.release(ops.reserve("acct-live", 700_000))
    stale = ops.reserve("acct-live", 400_000, ttlSeconds=1)
    clock.advance(5)
    ops.finalize(stale, 100_000, expect=409)  # lazily expired: its credit is released
    ops.reserve("acct-live", 1_234_567)  # stays pending (fully backed)

    # soft: partly and fully unbacked holds, overrun into debt, a deposit settling it.
    ops.mode("soft")
    ops.mint("acct-soft", 1 * UNIT)
    ops.finalize(ops.reserve("acct-soft", 3 * UNIT), 4 * UNIT + 333)  # 1 from lots, the rest is debt
    ops.release(ops.reserve("acct-soft", 1 * UNIT))  # entirely unbacked
    ops.mint("acct-soft", 2 * UNIT)  # settles the debt first
    ops.reserve("acct-soft", 5 * UNIT)  # pending: partly backed, partly unbacked
    soft_across_switch_pending = ops.reserve("acct-soft", 10)
    ops.finalize(ops.reserve("acct-soft", 250_000), 249_999)

    # operator changes: adjust down into debt, up (settling it), set a balance, refunds.
    ops.admin_route("adjust", "acct-ops", {"deltaMicro": str(3 * UNIT), "reason": "goodwill"})
    ops.admin_route("adjust", "acct-ops", {"deltaMicro": str(-5 * UNIT), "reason": "clawback into debt"})
    ops.admin_route("adjust", "acct-ops", {"deltaMicro": str(UNIT // 2), "reason": "partial credit"})
    ops.admin_route("adjust", "acct-ops", {"balanceMicro": "4000000", "reason": "set the balance"})
    ops.admin_route("adjust", "acct-ops", {"balanceMicro": "-250000", "reason": "set a negative balance"})
    ops.admin_route("adjust", "acct-ops", {"balanceMicro": "-250000", "reason": "set it again: no change"})
    ops.admin_route("refund", "acct-soft", {"amountMicro": "300000", "reason": "operator refund"})
    ops.mint("acct-ops", 1 * UNIT)

    # a provider top-up (lifetime paid) and a refund counted against it (lifetime refunded).
    order = topups.create(Context(Caller("user", "acct-pay")), account_id="acct-pay", amount=5 * UNIT,
                          provider="stripe")
    credited = events.apply_event(PaymentEvent(
        provider="stripe", event_id="evt_paid_1", order_id=order.order_id, status="completed",
        provider_status="complete", provider_payment_id="pi_1", paid_micro=5 * UNIT))
    assert credited.outcome == "credited", credited
    ops.finalize(ops.reserve("acct-pay", 2 * UNIT), 2 * UNIT)
    refunds.refund(Context(Caller("admin", "ops")), account_id="acct-pay", pool_id="general", amount=4 * UNIT,
                   reason="customer refund", order_id=order.order_id, idempotency_key=None)

    # a soft reservation finalized after the switch to live keeps soft semantics.
    ops.mode("live")
    ops.finalize(soft_across_switch_pending, 1_000)

    # shadow: computed and recorded, nothing moves, nothing refused.
    ops.mode("shadow")
    ops.mint("acct-shadow", 1 * UNIT)
    ops.finalize(ops.reserve("acct-shadow", 5 * UNIT), 2 * UNIT)
    ops.release(ops.reserve("acct-shadow", UNIT))
    ops.reserve("acct-shadow", 7 * UNIT)  # pending, holds nothing
    ops.finalize(ops.reserve("acct-live", UNIT), UNIT)  # a shadow charge on a real account
    return {"accounts": {"acct-live", "acct-soft", "acct-ops", "acct-pay", "acct-shadow"}}


def settle() -> None:
    """Move past the reconciler's settled-window margin, as a nightly run would be."""
    from billing_core.kernel import clock
    from billing_core.reconciler import run as reconciler

    clock.advance(reconciler.SETTLE_MARGIN_SECONDS + 60)


def find_lot(client: Any, account: str, *, with_credit: bool = True) -> dict[str, Any]:
    return next(lot for lot in lots(client, account) if lot["available"] > 0 or not with_credit)


def bump(client: Any, lot: dict[str, Any], expression: str, values: dict[str, int]) -> None:
    Undo.remember(client, "BillingTable", lot)
    client.update_item(TableName="BillingTable", Key={"pk": {"S": lot["pk"]}, "sk": {"S": lot["sk"]}},
                       UpdateExpression=expression,
                       ExpressionAttributeValues={k: {"N": str(v)} for k, v in values.items()})


def drop_share(client: Any, entry: dict[str, Any], system: str) -> None:
    """Remove one system account's share from a finalize entry's revenueShares."""
    Undo.remember(client, "LedgerTable", entry)
    client.update_item(TableName="LedgerTable", Key={"pk": {"S": entry["pk"]}, "sk": {"S": entry["sk"]}},
                       UpdateExpression="REMOVE revenueShares.#s", ExpressionAttributeNames={"#s": system})


def delete_entry(client: Any, entry: dict[str, Any]) -> None:
    Undo.remember(client, "LedgerTable", entry)
    client.delete_item(TableName="LedgerTable", Key={"pk": {"S": entry["pk"]}, "sk": {"S": entry["sk"]}})


class Undo:
    """Raw items as they were before a test corrupted them; put back after the test."""

    saved: list[tuple[Any, str, dict[str, Any]]] = []
    active = False  # only inside TestMixedWorkload: other tests have a backend of their own

    @classmethod
    def remember(cls, client: Any, table: str, item: dict[str, Any]) -> None:
        if not cls.active:
            return
        key = {"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}}
        raw = client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
        cls.saved.append((client, table, raw))

    @classmethod
    def restore(cls) -> None:
        while cls.saved:
            client, table, raw = cls.saved.pop()
            client.put_item(TableName=table, Item=raw)


def wire(result: Any) -> dict[str, Any]:
    """The JSON the admin routes answer for a run's typed result (what an operator reads)."""
    from billing_core.api.models.reconciler import ReconciliationResponse

    return ReconciliationResponse.of(result)


def rows_for(result: dict[str, Any], account: str) -> dict[str, dict[str, Any]]:
    return {(r["poolId"], r["what"]): r for r in result["driftedAccounts"] if r["accountId"] == account}


# -- one mixed workload ---------------------------------------------------------------------


def core() -> Any:
    from billing_core.reconciler import run as module

    return module


@pytest.fixture(scope="class")
def world() -> Any:
    """One backend for the class: the mixed workload, then past the settled-window margin."""
    with in_process_moto(TEST_ENV) as client:
        ops = Ops(Api(), Tokens)
        workload = mixed_workload(ops)
        settle()
        yield client, ops, workload["accounts"]


@pytest.fixture
def undo(world: Any) -> Any:
    """Depends on world, so the restore runs while the class's backend is still up."""
    Undo.active = True
    yield
    Undo.restore()
    Undo.active = False


@pytest.mark.usefixtures("undo")
class TestMixedWorkload:
    """The clean ledger, then one corruption per test (undone after it)."""

    def test_mixed_workload_reconciles_to_the_micro_unit(self, world, emitted):
        from billing_core.ledger import balances

        aws, ops, accounts = world
        # The workload really left every kind of state behind (else the identities would be trivial).
        assert balances.balance("acct-soft").pools[0].reserved_micro != 0
        assert balances.balance("acct-ops").total_available_micro > 0
        assert any(lot["reserved"] for lot in lots(aws, "acct-live"))

        result = wire(core().run(actor="test"))

        assert result["invariantViolations"] == [] and result["invariantViolationsTotal"] == 0
        assert result["driftedAccounts"] == [], json.dumps(result["driftedAccounts"], indent=1)
        assert result["status"] == "ok"
        assert result["complete"] is True and result["driftEvaluated"] is True
        assert result["driftRatio"] == "0.000000"
        assert result["clearedOnRecheck"] == 0 and result["unconfirmedAccounts"] == 0
        assert result["accountsChecked"] == len(accounts)
        assert result["lotsChecked"] == sum(len(lots(aws, a)) for a in accounts)
        reservations = [i for i in scan(aws, "BillingTable") if i["pk"]["S"].startswith("RES#")]
        assert result["reservationsChecked"] == len(reservations) > 15
        assert result["errors"] == [] and result["manualReviewItems"] == 0

        # System revenue: every share the finalize entries carry equals what the finalized charges imply.
        expected = ops.expected_revenue()
        assert expected["sys-foundation"] > 0
        in_ledger: dict[str, int] = {}
        for entry in ledger(aws):
            for name, share in (entry.get("revenueShares") or {}).items():
                in_ledger[name] = in_ledger.get(name, 0) + share["amountMicro"]
        for name, amount in expected.items():
            figures = result["systemRevenue"][name]
            assert figures["ok"] is True, figures
            assert figures["expectedMicro"] == figures["entriesMicro"] == figures["settledEntriesMicro"] \
                == str(amount) == str(in_ledger[name])
            assert figures["differenceMicro"] == "0"

        assert emitted["InvariantViolations"] == 0
        assert emitted["DriftedAccounts"] == 0
        assert emitted["DriftRatioPercent"] == 0.0
        assert emitted["AccountsChecked"] == len(accounts)
        assert emitted["LotsChecked"] == result["lotsChecked"]
        assert emitted["ManualReviewItems"] == 0
        assert emitted["ReconcilerComplete"] == 1
        assert emitted["SystemRevenueMismatches"] == 0
        assert "CampaignBudgetMaxUsedPercent" in emitted

    def test_a_corrupted_lot_is_an_invariant_violation_naming_it(self, world, emitted):
        aws = world[0]
        lot = find_lot(aws, "acct-live")
        bump(aws, lot, "SET available = available + :one", {":one": 1})

        result = wire(core().run(actor="test"))

        assert result["status"] == "violations"
        assert result["invariantViolationsTotal"] == 1
        (violation,) = result["invariantViolations"]
        assert violation["lotId"] == lot["lotId"] and violation["accountId"] == "acct-live"
        assert violation["poolId"] == "general"
        assert violation["availableMicro"] == str(lot["available"] + 1)
        assert violation["originalMicro"] == str(lot["original"])
        assert "off by 1" in violation["problem"]
        # The account's balance is off by that micro-unit too, and nothing else is.
        assert {r["accountId"] for r in result["driftedAccounts"]} == {"acct-live"}
        assert rows_for(result, "acct-live")[("general", "balance")]["differenceMicro"] == "1"
        assert emitted["InvariantViolations"] == 1

    def test_a_lot_changed_consistently_is_drift_naming_the_account(self, world, emitted):
        aws = world[0]
        lot = find_lot(aws, "acct-live")
        # original and available both +5: the lot's own invariant still holds.
        bump(aws, lot, "SET original = original + :five, available = available + :five", {":five": 5})

        result = wire(core().run(actor="test"))

        assert result["invariantViolations"] == []
        assert result["status"] == "violations"
        assert result["driftedAccountsTotal"] == 1
        rows = rows_for(result, "acct-live")
        assert set(rows) == {("general", "original"), ("general", "balance")}
        original = rows[("general", "original")]
        assert original["differenceMicro"] == "5" and original["confirmed"] is True
        assert int(original["actualMicro"]) - int(original["expectedMicro"]) == 5
        assert result["driftRatio"] == f"{1 / result['accountsChecked']:.6f}"
        assert emitted["DriftedAccounts"] == 1
        assert emitted["DriftRatioPercent"] == pytest.approx(100 / result["accountsChecked"])

    @pytest.mark.parametrize(("account", "entry_type", "whats"), [
        # A deposit that settled debt: credit, consumed and debt all lose their ledger source.
        ("acct-ops", "deposit", {"original", "consumed", "debt", "balance"}),
        # The re-read finds the reservation pending by its ledger, while the lots say it settled.
        ("acct-live", "finalize", {"consumed", "reserved", "balance", "finalizeEntries"}),
        # Holds are right (the reservation item says released): only the ledger lacks the release.
        ("acct-soft", "release", {"releaseEntries"}),
        # 3 of the refund came from lots, 1 went to debt; the lifetime refunded total has no source.
        ("acct-pay", "refund", {"consumed", "debt", "balance", "lifetimeRefunded"}),
        ("acct-ops", "adjustment", None),
    ])
    def test_a_deleted_ledger_entry_is_drift_naming_the_account(self, world, account, entry_type, whats):
        aws = world[0]
        victim = next(e for e in ledger(aws) if e["accountId"] == account and e["entryType"] == entry_type
                      and e["amountMicro"] > 0 and (entry_type != "finalize" or e["amountMicro"] < UNIT * 3))
        delete_entry(aws, victim)

        result = wire(core().run(actor="test"))

        assert result["status"] == "violations"
        assert {r["accountId"] for r in result["driftedAccounts"]} == {account}
        assert result["driftedAccountsTotal"] == 1
        found = {what for (_, what) in rows_for(result, account)}
        if whats is not None:
            assert found == whats, result["driftedAccounts"]
        else:  # an adjustment moves the original (credit) or consumed/debt (debit): either way named
            assert found & {"original", "consumed", "debt"} and "balance" in found
        # A finalize entry carries its revenue shares: deleting it loses exactly those, and the
        # system revenue check names each of them; any other entry leaves system revenue whole.
        lost = {name: share["amountMicro"] for name, share in (victim.get("revenueShares") or {}).items()}
        for name, figures in result["systemRevenue"].items():
            if name in lost:
                assert figures["ok"] is False and figures["differenceMicro"] == str(-lost[name]), figures
            else:
                assert figures["ok"] is True, figures

    def test_a_deleted_revenue_share_is_a_system_revenue_mismatch(self, world, emitted):
        aws = world[0]
        finalize = next(e for e in ledger(aws) if "sys-commons" in (e.get("revenueShares") or {}))
        share = finalize["revenueShares"]["sys-commons"]
        drop_share(aws, finalize, "sys-commons")

        result = wire(core().run(actor="test"))

        commons = result["systemRevenue"]["sys-commons"]
        assert commons["ok"] is False
        assert commons["differenceMicro"] == str(-share["amountMicro"])
        assert commons["expectedEntries"] == commons["settledEntries"] + 1
        assert result["systemRevenue"]["sys-foundation"]["ok"] is True
        assert result["status"] == "violations"
        assert result["driftedAccounts"] == []  # customer accounts are untouched
        assert emitted["SystemRevenueMismatches"] == 1


    def test_every_corruption_was_undone(self, world):
        """Runs last in the class: the shared ledger is clean again (the undo really undid)."""
        result = wire(core().run(actor="test"))
        assert result["status"] == "ok" and result["driftedAccounts"] == [], result["driftedAccounts"]
        assert result["invariantViolations"] == []
        assert all(v["ok"] for v in result["systemRevenue"].values())


# -- small ledgers of their own --------------------------------------------------------------


def test_traffic_during_the_scan_raises_no_false_drift(aws, ops, reconciler, monkeypatch):
    """Money moving between the BillingTable scan and the LedgerTable scan makes the scan disagree
    with itself; the re-read of that account clears it, and nothing is reported. Money moving in
    the middle of the re-read itself (after its ledger read, before its lots read) is caught by
    the ledger tail check, and the re-read is repeated."""
    ops.mode("soft")
    ops.mint("acct-busy", 5 * UNIT)
    pending = ops.reserve("acct-busy", 2 * UNIT, ttlSeconds=3600)
    during_recheck = ops.reserve("acct-busy", UNIT, ttlSeconds=3600)
    settle()
    from billing_core.reconciler import scan
    from billing_core.store import keys
    from billing_core.store import reconciliation as store

    original_scan, original_balance_pages = scan.Scan.scan_ledger, store.balance_pages
    lot_reads = []

    def scan_ledger_after_traffic(self):
        ops.finalize(pending, 3 * UNIT)  # lots already read as reserved; the ledger will say finalized
        ops.mint("acct-busy", UNIT)
        return original_scan(self)

    def balance_pages_with_traffic(account_id):
        lot_reads.append(keys.account_pk(account_id))
        if len(lot_reads) == 1:  # the first re-read has read the ledger, not yet the lots
            ops.finalize(during_recheck, 10)
        return original_balance_pages(account_id)

    monkeypatch.setattr(scan.Scan, "scan_ledger", scan_ledger_after_traffic)
    monkeypatch.setattr(store, "balance_pages", balance_pages_with_traffic)
    result = wire(reconciler.run(actor="test"))

    assert result["driftedAccounts"] == [], result["driftedAccounts"]
    assert result["status"] == "ok"
    assert result["clearedOnRecheck"] == 1 and result["recheckedAccounts"] == 1
    assert lot_reads == ["ACCT#acct-busy", "ACCT#acct-busy"]  # the torn first re-read was repeated
    assert all(v["ok"] for v in result["systemRevenue"].values())  # the new shares are outside the window


def test_a_negative_field_is_a_violation_even_when_the_sum_holds(aws, ops, reconciler):
    ops.mode("live")
    ops.mint("acct-neg", UNIT)
    settle()
    lot = find_lot(aws, "acct-neg")
    bump(aws, lot, "SET reserved = reserved - :n, available = available + :n", {":n": 5})

    result = wire(reconciler.run(actor="test"))

    (violation,) = result["invariantViolations"]
    assert violation["lotId"] == lot["lotId"] and violation["reservedMicro"] == "-5"
    assert violation["problem"] == "reserved is negative"


def test_an_unreadable_lot_is_reported_not_fatal(aws, ops, reconciler):
    ops.mode("live")
    ops.mint("acct-bad", UNIT)
    settle()
    lot = find_lot(aws, "acct-bad")
    aws.update_item(TableName="BillingTable", Key={"pk": {"S": lot["pk"]}, "sk": {"S": lot["sk"]}},
                    UpdateExpression="SET available = :x", ExpressionAttributeValues={":x": {"N": "0.5"}})

    result = wire(reconciler.run(actor="test"))

    assert result["complete"] is True
    (violation,) = result["invariantViolations"]
    assert violation["lotId"] == lot["lotId"] and violation["problem"].startswith("unreadable")


# -- the stored result, gauges, the time budget, the handler ----------------------------------


def test_last_result_is_the_stored_result(aws, ops, reconciler):
    from billing_core.kernel import settings
    from billing_core.store import dynamo, keys

    assert reconciler.last_result() is None
    ops.mode("live")
    ops.mint("acct-x", UNIT)
    first = reconciler.run(actor="admin:ops")
    second = reconciler.run(actor="reconciler")

    stored = reconciler.last_result()
    assert stored == second != first
    assert stored.actor == "reconciler" and stored.run_id == second.run_id
    item = dynamo.get(settings.get().billing_table, keys.RECONCILIATION_KEY)["result"]
    # JSON-safe as stored and as returned, and the stored map is what the routes answer
    assert json.loads(json.dumps(item)) == item == wire(stored) == wire(second)
    assert [r.run_id for r in reconciler.history()] == [second.run_id, first.run_id]


def test_a_run_that_started_earlier_never_overwrites_a_later_result(aws, reconciler):
    from billing_core.kernel import clock

    clock.advance(60)
    later = reconciler.run(actor="reconciler")  # e.g. the schedule, while ...
    clock.reset()
    earlier = reconciler.run(actor="admin:ops")  # ... an operator's run that started first finishes last

    assert earlier.started_at < later.started_at
    assert reconciler.last_result().run_id == later.run_id
    assert {r.run_id for r in reconciler.history()} == {later.run_id, earlier.run_id}


def test_manual_review_and_campaign_gauges(aws, reconciler, emitted, monkeypatch):
    from billing_core.campaigns import audit
    from billing_core.campaigns.model import BudgetUsage
    from billing_core.kernel import clock, settings
    from billing_core.store import dynamo, keys

    now_iso = clock.iso(clock.now())
    for i in range(2):
        dynamo.put_item(settings.get().billing_table, {
            **keys.work_key(f"wk_{i}"), "itemId": f"wk_{i}", "operation": "payment_event", "payload": {},
            "attempts": 6, "createdAt": now_iso, "updatedAt": now_iso, "status": "manual_review",
            "statusPk": keys.work_status_pk("manual_review"), "statusAt": now_iso})
    monkeypatch.setattr(audit, "budget_usage", lambda: [
        BudgetUsage("summer", 100 * UNIT, 10 * UNIT, 1000), BudgetUsage("spring", 100 * UNIT, 95 * UNIT, 9500)])

    result = wire(reconciler.run(actor="test"))

    assert result["manualReviewItems"] == 2 and emitted["ManualReviewItems"] == 2
    assert [c["campaignId"] for c in result["campaigns"]] == ["spring", "summer"]
    assert result["campaigns"][0] == {"campaignId": "spring", "budgetMicro": "100000000", "grantedMicro": "95000000",
                                      "usedBps": 9500, "usedPercent": "95.00", "over90Percent": True}
    assert result["campaignsOver90Percent"] == 1
    assert emitted["CampaignBudgetMaxUsedPercent"] == 95.0
    assert result["status"] == "ok"  # warnings, not violations

    monkeypatch.setattr(audit, "budget_usage", list)  # no active campaign
    absent = wire(reconciler.run(actor="test"))
    assert absent["campaigns"] == [] and absent["errors"] == []


def test_a_run_cut_short_reports_incomplete_and_no_drift(aws, ops, reconciler, emitted):
    ops.mode("live")
    ops.mint("acct-x", UNIT)
    lot = find_lot(aws, "acct-x")
    bump(aws, lot, "SET available = available + :one", {":one": 1})

    result = wire(reconciler.run(actor="test", time_budget_seconds=0))

    assert result["complete"] is False and result["driftEvaluated"] is False
    assert result["driftRatio"] is None and result["accountsChecked"] == 0
    assert result["invariantViolationsTotal"] == 1  # found before the budget ran out: still reported
    assert emitted["ReconcilerComplete"] == 0 and emitted["InvariantViolations"] == 1
    assert "DriftRatioPercent" not in emitted and "DriftedAccounts" not in emitted
    assert reconciler.last_result().complete is False


def test_scheduled_handler_flushes_emf_metrics_and_stores_the_result(aws, ops, reconciler, capsys):
    ops.mode("live")
    ops.mint("acct-x", UNIT)
    settle()
    capsys.readouterr()
    handler = load_module(ROOT / "functions" / "reconciler" / "app.py", "handler_reconciler")

    summary = handler.lambda_handler({"source": "aws.scheduler"}, LambdaContext())

    assert summary["status"] == "ok" and summary["complete"] is True and summary["accountsChecked"] == 1
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for doc in emf for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"InvariantViolations", "DriftedAccounts", "DriftRatioPercent", "AccountsChecked", "LotsChecked",
            "ManualReviewItems", "CampaignBudgetMaxUsedPercent", "ReconcilerComplete"} <= names
    doc = emf[-1]
    assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "CreditBilling"
    assert doc["service"] == "billing"
    assert doc["DriftRatioPercent"] == [0.0] and doc["ReconcilerComplete"] == [1.0]
    assert reconciler.last_result().run_id == summary["runId"]
