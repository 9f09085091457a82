"""The SQS adapter: send work, and push a failed message's next delivery out (backoff)."""

from __future__ import annotations

import json
from typing import Any

_client: Any = None

MAX_DELAY_SECONDS = 900  # SQS's ceiling for DelaySeconds and a Lambda-consumed message's backoff


def client() -> Any:
    global _client
    if _client is None:
        import boto3

        _client = boto3.client("sqs")
    return _client


def reset_client() -> None:
    global _client
    _client = None


def send(queue_url: str, body: dict[str, Any], *, delay_seconds: int = 0) -> None:
    client().send_message(QueueUrl=queue_url, MessageBody=json.dumps(body),
                          DelaySeconds=max(0, min(MAX_DELAY_SECONDS, delay_seconds)))


def postpone(queue_url: str, receipt_handle: str, seconds: int) -> None:
    """Make a received message invisible for `seconds`: its next delivery is the next attempt."""
    client().change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle,
                                       VisibilityTimeout=max(0, min(43_200, seconds)))


def queue_url_from_arn(arn: str) -> str:
    """arn:aws:sqs:region:account:name -> the queue URL (the SQS event carries only the ARN)."""
    url: str = client().get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
    return url
