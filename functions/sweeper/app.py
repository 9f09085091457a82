"""EventBridge schedule (every minute): release expired reservations."""

from typing import Any

from billing_core.kernel import observability
from billing_core.ledger import sweeper


@observability.job
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    budget = max(5.0, context.get_remaining_time_in_millis() / 1000 - 5) if context else 50.0
    result = sweeper.sweep(time_budget_seconds=budget)
    observability.count("SweeperLostRaces", result.lost_races)
    summary = {"expired": result.expired, "lostRaces": result.lost_races, "scanned": result.scanned,
               "errors": result.errors[:20], "complete": result.complete}
    observability.logger.info("sweep finished", extra=summary)
    return summary

