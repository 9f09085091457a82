"""SQS consumer of the dead-letter queue: keeps retrying with backoff and parks an item as
manual_review after BILLING_MAX_WORK_ATTEMPTS attempts in all."""

from billing_core.payments import events as payments  # noqa: F401 - registers the operations this queue runs
from billing_core.work.consumers import handle_batch


def lambda_handler(event, context):
    return handle_batch(event, context, source="dlq-processor")
