"""SQS consumer of the webhook queue and its dead-letter queue: one signed POST per delivery work
item, retried with backoff, parked as manual_review after BILLING_MAX_WORK_ATTEMPTS attempts
(billing_core.outbound.delivery, billing_core.work.consumers)."""

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from billing_core.kernel import observability
from billing_core.outbound import delivery  # noqa: F401 - registers the operation this queue runs
from billing_core.work.consumers import handle_batch


@observability.job
def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return handle_batch(event, context, source="webhook-queue")
