"""SQS consumer of the dead-letter queue: keeps retrying with backoff and parks an item as
manual_review after BILLING_MAX_WORK_ATTEMPTS attempts in all."""

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from billing_core.kernel import observability
from billing_core.payments import events  # noqa: F401 - registers the operations this queue runs
from billing_core.work.consumers import handle_batch


@observability.job
def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return handle_batch(event, context, source="dlq-processor")
