"""SQS consumers for background work (the work queue and its dead-letter queue), with
Powertools batch processing: a record that fails is reported in batchItemFailures, so only it
comes back, and its visibility is pushed out first so it comes back after the backoff."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from billing_core.kernel import observability
from billing_core.kernel.errors import NotFound
from billing_core.kernel.observability import logger
from billing_core.store import queues
from billing_core.work import items as work


def _record_handler(source: str) -> Callable[[SQSRecord], dict[str, Any]]:
    def handle(record: SQSRecord) -> dict[str, Any]:
        try:
            item_id = json.loads(record.body)["itemId"]
        except (ValueError, KeyError, TypeError):
            logger.error("dropping a message without an itemId", extra={"messageId": record.message_id})
            return {"dropped": True}
        try:
            item = work.attempt(str(item_id), actor=source)
        except NotFound:
            logger.error("dropping a message for an unknown work item", extra={"itemId": item_id})
            return {"dropped": True}
        except work.RetryLater as later:
            queues.postpone(queues.queue_url_from_arn(record.event_source_arn), record.receipt_handle, later.delay)
            observability.count("WorkRetried")
            logger.warning("work attempt failed; retrying after backoff",
                           extra={"itemId": later.item_id, "attempts": later.attempts, "delaySeconds": later.delay,
                                  "error": later.error})
            raise
        if item.status == "manual_review":
            observability.count("WorkParked")
            logger.error("work parked for manual review", extra={"itemId": item.item_id,
                                                                  "error": item.last_error})
        elif item.status == "succeeded":
            observability.count("WorkSucceeded")
        return {"status": item.status}

    return handle


def handle_batch(event: dict[str, Any], context: Any, *, source: str) -> PartialItemFailureResponse:
    # A wholly failed batch still answers batchItemFailures (each message already carries its own backoff).
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=_record_handler(source), processor=processor,
                                    context=context)
