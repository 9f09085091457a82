"""SQS consumer of the work queue: retries failed background work (e.g. a payment event).
After the queue's maxReceiveCount a message moves to the dead-letter queue."""

from billing_core.payments import events as payments  # noqa: F401 - registers the operations this queue runs
from billing_core.work.consumers import handle_batch


def lambda_handler(event, context):
    return handle_batch(event, context, source="work-queue")
