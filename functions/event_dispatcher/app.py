"""BillingTable's DynamoDB stream -> outbound events -> one webhook delivery per subscribed
endpoint (billing_core.outbound.dispatch). Partial batch failures: Lambda retries from the first
record that failed, and everything before it is not seen again; everything here is idempotent."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from billing_core.kernel import observability
from billing_core.outbound import delivery, dispatch  # noqa: F401 - delivery registers its operation


@observability.job
def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    batch = dispatch.Batch()

    def handle(record: DynamoDBRecord) -> None:
        dispatch.handle(record.raw_event, batch)

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    response = process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    if batch.events:
        observability.logger.info("events dispatched", extra={"events": len(batch.events),
                                                              "deliveries": batch.deliveries})
    return response
