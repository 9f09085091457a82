"""One Logger, one Metrics and one Tracer for the whole core (Powertools).

- logger: JSON lines; the HTTP edge sets the API Gateway request id as the correlation id.
  Nothing logs a secret or a token: settings hold secrets as SecretStr, the edge logs error
  codes, never bodies or headers.
- metrics: business metrics in CloudWatch EMF, the numbers the alarms watch. count()/gauge()
  record; the edge and the job wrapper flush once per invocation, only when something was
  recorded (an empty flush would only log a warning).
- tracer: X-Ray (the template turns tracing on). It patches botocore only, so every DynamoDB and
  SQS call is a subsegment of the invocation (outgoing provider HTTP calls are not traced);
  handlers and jobs are captured by the edge and `job`.
  Powertools disables it outside Lambda (tests, the local stack).

Service and namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "billing"

logger = Logger(service=SERVICE)
# Only botocore is patched (every DynamoDB and SQS call a subsegment): X-Ray's patch_all would
# import and patch requests, httplib, sqlite3, ... at every cold start, for calls this core
# does not make on its request paths (~40 ms of import measured in a Lambda-like environment).
tracer = Tracer(service=SERVICE, patch_modules=("botocore",))
_metrics: Metrics | None = None

F = TypeVar("F", bound=Callable[..., Any])


def metrics() -> Metrics:
    global _metrics
    if _metrics is None:
        _metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "CreditBilling",
                           service=SERVICE)
    return _metrics


def count(name: str, value: int = 1) -> None:
    metrics().add_metric(name=name, unit=MetricUnit.Count, value=value)


def gauge(name: str, value: float, unit: MetricUnit = MetricUnit.Count) -> None:
    metrics().add_metric(name=name, unit=unit, value=value)


def flush() -> None:
    if _metrics is not None and _metrics.metric_set:
        _metrics.flush_metrics()


def job(handler: F) -> F:
    """A scheduled or queue-driven entry point: Lambda context in the logs, traced, metrics
    flushed at the end whatever happens."""

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        from billing_core.kernel import settings

        try:
            with settings.invocation():
                return handler(event, context)
        finally:
            flush()

    traced = tracer.capture_lambda_handler(logger.inject_lambda_context(clear_state=True)(run), capture_response=False)
    return cast(F, traced)
