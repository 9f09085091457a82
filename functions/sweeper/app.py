"""EventBridge schedule (every minute): release expired reservations."""

from aws_lambda_powertools import Logger
from billing_core.kernel import observability
from billing_core.ledger import sweeper

logger = Logger(service="billing")


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    budget = max(5.0, context.get_remaining_time_in_millis() / 1000 - 5) if context else 50.0
    result = sweeper.sweep(time_budget_seconds=budget)
    observability.count("SweeperLostRaces", result.lost_races)
    observability.flush()
    logger.info("sweep finished", extra=result.to_wire())
    return result.to_wire()
