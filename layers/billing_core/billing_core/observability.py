"""Business metrics in CloudWatch EMF (Powertools Metrics): the numbers the alarms watch.

Handlers and jobs call count()/gauge(); http.handler and the job handlers flush once per
invocation, and only when something was recorded (an empty flush would only log a warning).
"""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

metrics = Metrics()


def count(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def gauge(name: str, value: float, unit: MetricUnit = MetricUnit.Count) -> None:
    metrics.add_metric(name=name, unit=unit, value=value)


def flush() -> None:
    if metrics.metric_set:
        metrics.flush_metrics()
