"""The DynamoDB engine of a test run (BILLING_LOCAL_ENGINE: moto unless it says dynamodb-local)
and the servers one test talks to: moto's (SQS, and DynamoDB unless the run is on DynamoDB
Local) and, on DynamoDB Local, this process's shared instance."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tests.support.env import TEMPLATE


def engine_name() -> str:
    from devserver.dynamodb_local import selected_engine

    return selected_engine()


class Engines:
    """`client(service)` reaches where that service lives."""

    def __init__(self, moto: Any, dynamodb_url: str | None) -> None:
        self.moto = moto
        self.url = moto.url
        self.dynamodb_url = dynamodb_url

    def client(self, service: str = "dynamodb") -> Any:
        if service in ("dynamodb", "dynamodbstreams") and self.dynamodb_url is not None:
            from devserver.dynamodb_local import shared_instance

            return shared_instance().client(service)
        return self.moto.client(service)

    def environment(self) -> dict[str, str]:
        """The endpoint variables of a process that should use these servers."""
        from devserver.dynamodb_local import endpoint_variables

        env = {"AWS_ENDPOINT_URL": self.url}
        if self.dynamodb_url is not None:
            env.update(endpoint_variables(self.dynamodb_url))
        return env


@contextlib.contextmanager
def engines() -> Iterator[Engines]:
    """Moto's serialized server with the template's queues, and the template's tables, empty, on
    the engine of this run (moto's server, or this process's DynamoDB Local)."""
    from devserver import dynamodb_local
    from devserver.engine import serialized_engine

    with serialized_engine() as engine:
        engine.create_queues(TEMPLATE)
        if engine_name() == dynamodb_local.DYNAMODB_LOCAL:
            local = dynamodb_local.shared_instance()
            local.reset(TEMPLATE)
            yield Engines(engine, local.url)
        else:
            engine.create_tables(TEMPLATE)
            yield Engines(engine, None)
