"""EventBridge schedule (nightly): reconcile lots, balances and system revenue against the ledger.

Runs billing_core.reconciler.run.run within the invocation's remaining time (less a margin to store
the result and flush metrics), logs a summary (in the wire form the admin routes answer) and flushes
the EMF metrics the alarms watch. A run that raises still reports ReconcilerComplete = 0, then
fails the invocation.
"""

from typing import Any

from billing_core.api.models.reconciler import ReconciliationResponse
from billing_core.kernel import observability
from billing_core.kernel.observability import logger
from billing_core.reconciler import run as reconciler

MARGIN_SECONDS = 30.0  # storing the result, re-reads already cut by the budget, the flush
SUMMARY_FIELDS = (
    "runId", "status", "complete", "driftEvaluated", "lotsChecked", "accountsChecked", "reservationsChecked",
    "invariantViolationsTotal", "driftedAccountsTotal", "driftRatio", "clearedOnRecheck", "unconfirmedAccounts",
    "manualReviewItems", "campaignsOver90Percent", "errorsTotal", "durationMs", "scanPages",
)


@observability.job
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    remaining = context.get_remaining_time_in_millis() / 1000 if context else 900.0
    budget = max(5.0, remaining - MARGIN_SECONDS)
    try:
        result = reconciler.run(actor="reconciler", time_budget_seconds=budget)
    except Exception:
        logger.exception("reconciliation failed")
        observability.gauge(reconciler.M_COMPLETE, 0)
        raise
    wire = ReconciliationResponse.of(result)
    summary = {name: wire[name] for name in SUMMARY_FIELDS}
    summary["systemRevenueOk"] = all(v.ok for v in result.system_revenue.values())
    if result.status != "ok":
        logger.error("reconciliation found violations", extra={
            **summary, "invariantViolations": wire["invariantViolations"][:10],
            "driftedAccounts": wire["driftedAccounts"][:10]})
    elif not result.complete:
        logger.warning("reconciliation incomplete (time budget)", extra=summary)
    else:
        logger.info("reconciliation finished", extra=summary)
    return summary
