"""SQS consumer of the work queue: retries failed background work (e.g. a payment event).
After the queue's maxReceiveCount a message moves to the dead-letter queue."""

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from billing_core.kernel import observability
from billing_core.payments import events  # noqa: F401 - registers the operations this queue runs
from billing_core.work.consumers import handle_batch


@observability.job
def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return handle_batch(event, context, source="work-queue")
