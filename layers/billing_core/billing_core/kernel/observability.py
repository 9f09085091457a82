"""Business metrics in CloudWatch EMF (Powertools Metrics): the numbers the alarms watch.

Handlers and jobs call count()/gauge(); http.handler and the job handlers flush once per
invocation, and only when something was recorded (an empty flush would only log a warning).
The namespace and service come from POWERTOOLS_METRICS_NAMESPACE / POWERTOOLS_SERVICE_NAME
(template Globals), read when the first metric is recorded.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

_metrics: Metrics | None = None


def metrics() -> Metrics:
    global _metrics
    if _metrics is None:
        _metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "CreditBilling",
                           service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "billing")
    return _metrics


def count(name: str, value: int = 1) -> None:
    metrics().add_metric(name=name, unit=MetricUnit.Count, value=value)


def gauge(name: str, value: float, unit: MetricUnit = MetricUnit.Count) -> None:
    metrics().add_metric(name=name, unit=unit, value=value)


def flush() -> None:
    if _metrics is not None and _metrics.metric_set:
        _metrics.flush_metrics()
