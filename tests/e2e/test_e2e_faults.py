"""Real DynamoDB's failure modes, injected into the local stack (devserver.faults), under a random
workload over HTTP: every mode, mints, reserves, finalizes, releases, expiries, adjustments and
top-up webhooks (tests/support/faults.py).

Under transaction conflicts, throttling and answers lost after the write (each alone, then all
together at the issue's rates) no answer is a 5xx; after a Lambda dies right after its write
(crash_after_write) the gateway answers 502 and the caller's retry with the same ids is answered
as if nothing had happened. Either way, at the end:

* every micro-unit is accounted for: each account's balance is its acknowledged credits minus
  its acknowledged charges plus its acknowledged adjustments;
* every acknowledged move is in the account's history exactly once, and nothing else is;
* reconciliation is clean: POST /admin/billing/reconcile over HTTP (under the same faults), and
  the reconciler run from this process with its clock past the settle margin, so the settled
  window holds the whole workload (reservations against entries, system revenue);
* the stack logged the faults it injected (one `injected fault` line each).

One stack per fault configuration, on the engine of the run (BILLING_LOCAL_ENGINE).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import pytest

from devserver.testing import start_stack
from tests.support.faults import Workload, injected

CONFIGS = {
    "conflict": "conflict=0.05",
    "throttle": "throttle=0.05",
    "lost_response": "lost_response=0.03",
    "combined": "conflict=0.05,throttle=0.05,lost_response=0.03",
    "crash_after_write": "crash_after_write=0.02",
}
OPS_PER_PHASE = int(os.environ.get("BILLING_FAULT_SUITE_OPS", "45"))
SEED = 12


def _stack_env(faults: str) -> dict[str, str]:
    return {
        "BILLING_LOCAL_FAULTS": faults,
        "BILLING_LOCAL_FAULTS_SEED": str(SEED),
        # One service and one admin send everything: the per-caller limits are not under test here.
        "BILLING_RATE_LIMIT_INTERNAL_PER_MIN": "100000",
        "BILLING_RATE_LIMIT_ADMIN_PER_MIN": "100000",
        "BILLING_LOCAL_SCHEDULE_SECONDS_SweeperFunction": "1",  # expiries by the sweeper too
        "BILLING_LOCAL_SCHEDULE_SECONDS_ReconcilerFunction": "off",
    }


def _settled_reconciliation(dynamodb_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The reconciler, run here (no faults) against the stack's tables with this process's clock
    past the settle margin: the whole workload is inside its settled window."""
    from billing_core.kernel import clock
    from billing_core.ledger import config
    from billing_core.reconciler import run
    from billing_core.reconciler.rules import SETTLE_MARGIN_SECONDS
    from billing_core.store import dynamo

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_url)
    dynamo.reset_client()
    config.invalidate()
    clock.advance(SETTLE_MARGIN_SECONDS + 120)
    try:
        return run.run(actor="fault-suite")
    finally:
        clock.reset()
        dynamo.reset_client()
        config.invalidate()


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_workload_under_injected_faults(kind: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    faults = CONFIGS[kind]
    stack = start_stack(workers=3, env=_stack_env(faults), log_dir=tmp_path)
    try:
        work = Workload(stack, seed=SEED, crash_allowed=kind == "crash_after_write")
        work.run(OPS_PER_PHASE)

        # Money: each account holds what its acknowledged moves say, to the micro-unit.
        for acct in work.accounts:
            assert not acct.pending
            assert work.balance(acct) == acct.credits - acct.charged + acct.adjusted, acct

        # History: every acknowledged move exactly once, and nothing else.
        for acct in work.accounts:
            seen = Counter(work.entry_key(e) for e in work.history(acct))
            duplicated = {k: n for k, n in seen.items() if n > 1}
            assert not duplicated, duplicated
            assert seen == acct.expected, (Counter(seen) - acct.expected, acct.expected - Counter(seen))

        response = work.send("reconcile", "POST", "/admin/billing/reconcile", token=work._token("admin"))
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["status"] == "ok", json.dumps(result)[:2000]
        assert result["invariantViolationsTotal"] == 0 and result["driftedAccountsTotal"] == 0
        assert result["lotsChecked"] > 0

        settled = _settled_reconciliation(stack.dynamodb_url, monkeypatch)
        assert settled.status == "ok", settled
        assert settled.reservations_checked > 0
        assert all(revenue.ok for revenue in settled.system_revenue.values()), settled.system_revenue

        log = stack.log()
        counts = injected(log)
        figures = {"engine": stack.engine, "faults": faults, "requests": work.figures.requests,
                   "injected": dict(counts), "status": dict(sorted(work.figures.by_status.items())),
                   "retried_502": work.figures.retried_502, "routes": dict(work.figures.by_route)}
        print(f"\nfault suite {kind}: {json.dumps(figures)}")
        (tmp_path / "figures.json").write_text(json.dumps(figures))
        assert work.figures.failures == [], work.figures.failures[:20]
        for configured in (part.split("=")[0] for part in faults.split(",")):
            assert counts[configured] > 0, f"no {configured} fault was injected: {counts}"
        fives = {status: n for status, n in work.figures.by_status.items() if status >= 500}
        if kind == "crash_after_write":
            assert set(fives) <= {502}, fives
            assert work.figures.retried_502 == fives.get(502, 0) > 0
        else:
            assert fives == {}, fives
    finally:
        stack.stop()
