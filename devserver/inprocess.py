"""A fresh billing backend inside this process: the template's tables and queues, seeded like a
new deployment (shadow mode). The one setup shared by the tests and the benchmark; the caller
sets the environment first.

DynamoDB is the engine BILLING_LOCAL_ENGINE names (devserver.dynamodb_local.selected_engine):
patched in-process moto (item-level transaction rollback, serialized) by default, or this
process's DynamoDB Local (started on first use, its tables emptied for each backend). SQS is
always in-process moto.

The queues are named by their logical ids, so under mock_aws (account 123456789012) WorkQueue's
URL is https://sqs.<region>.amazonaws.com/123456789012/WorkQueue: what WORK_QUEUE_URL says in
the tests' environment. Nothing consumes them here (no background jobs in-process)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devserver import dynamodb_local
from devserver.engine import apply_moto_patches
from devserver.template import DEFAULT_TEMPLATE, create_queues, create_tables


@contextlib.contextmanager
def billing_backend(template: str | Path = DEFAULT_TEMPLATE) -> Iterator[Any]:
    """Yields the DynamoDB client the core uses; every core cache is reset on the way in and out
    (the DynamoDB and SQS clients included: one made outside mock_aws would reach real AWS)."""
    from billing_core.kernel import clock
    from billing_core.ledger import bootstrap, config
    from billing_core.store import dynamo, queues
    from moto import mock_aws

    def reset() -> None:
        dynamo.reset_client()
        queues.reset_client()
        config.invalidate()
        clock.reset()

    apply_moto_patches()
    local = dynamodb_local.shared_instance() if dynamodb_local.selected_engine() == dynamodb_local.DYNAMODB_LOCAL \
        else None
    with mock_aws(), (dynamodb_local.endpoint_environment(local.url) if local else contextlib.nullcontext()):
        reset()
        if local is not None:
            dynamodb_local.reset_tables(dynamo.client(), template)
        else:
            create_tables(dynamo.client(), template)
        create_queues(queues.client(), template)
        bootstrap.seed()
        try:
            yield dynamo.client()
        finally:
            reset()
