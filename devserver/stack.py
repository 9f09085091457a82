"""The whole local stack in one object: emulation, tables, queues, seed, Lambda workers, API
gateway, background jobs.

DynamoDB runs on the engine BILLING_LOCAL_ENGINE names: `moto` (default: the serialized,
patched moto server that also serves SQS) or `dynamodb-local` (Amazon DynamoDB Local, installed
on first use, devserver.dynamodb_local; SQS stays on moto). BILLING_LOCAL_FAULTS injects
DynamoDB's failure modes into the functions' calls on either (devserver.faults).

Start order matters: the engines first (their URLs go into every function's environment), then
the tables and queues (the queues' URLs go into the environment too: !Ref WorkQueue), then the
workers, then the seed (run in a worker, with a function's environment, exactly as the deployed
bootstrap custom resource would run it), then the HTTP front door, and last the background jobs
(schedules and queue pollers, devserver.background) that moto does not run. Stop is the reverse.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devserver import dynamodb_local
from devserver.background import BackgroundJobs
from devserver.engine import Engine
from devserver.gateway import Gateway, check_sam_cli_version
from devserver.runner import DEFAULT_WORKERS, WorkerPoolRunner
from devserver.template import DEFAULT_TEMPLATE
from devserver.tokens import dev_secrets

DEFAULT_SEED = "billing_core.ledger.bootstrap:seed"
DEFAULT_PORT = 3000


def default_port(environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    return int(environ.get("BILLING_LOCAL_PORT") or DEFAULT_PORT)


class LocalStack:
    """`python -m devserver` as an object. `seed=None` skips seeding; `background=False` runs
    no schedules and polls no queues (the BILLING_LOCAL_* knobs in `environ` tune them)."""

    def __init__(
        self,
        template: str | Path = DEFAULT_TEMPLATE,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        moto_port: int = 0,
        workers: int = DEFAULT_WORKERS,
        seed: str | None = DEFAULT_SEED,
        environ: Mapping[str, str] | None = None,
        background: bool = True,
    ) -> None:
        check_sam_cli_version()
        self.template = Path(template)
        self.host = host
        self.port = port
        self.moto_port = moto_port
        self.workers = workers
        self.seed = seed
        self.background_enabled = background
        self.environ = dict(os.environ if environ is None else environ)
        self.secrets = dev_secrets(self.environ)
        self.engine_name = dynamodb_local.selected_engine(self.environ)
        self.engine: Engine | None = None
        self.dynamodb: dynamodb_local.DynamoDBLocal | None = None
        self.runner: WorkerPoolRunner | None = None
        self.gateway: Gateway | None = None
        self.background: BackgroundJobs | None = None
        self.tables: list[str] = []
        self.queues: dict[str, str] = {}
        self.seed_result: Any = None

    def start(self) -> LocalStack:
        try:
            # The emulation stays on loopback whatever --host the API is served on.
            self.engine = Engine("127.0.0.1", self.moto_port).start()
            if self.engine_name == dynamodb_local.DYNAMODB_LOCAL:
                self.dynamodb = dynamodb_local.DynamoDBLocal("127.0.0.1").start()
                self.tables = self.dynamodb.create_tables(self.template)
            else:
                self.tables = self.engine.create_tables(self.template)
            self.queues = self.engine.create_queues(self.template)
            self.runner = WorkerPoolRunner(
                self.template,
                workers=self.workers,
                moto_url=self.engine.url,
                environ=self.environ,
                secrets=self.secrets,
                queue_urls=self.queues,
                dynamodb_url=self.dynamodb.url if self.dynamodb is not None else None,
            ).start()
            if self.seed:
                self.seed_result = self.runner.call(self.seed)
            self.gateway = Gateway(self.runner, self.template, host=self.host, port=self.port).start()
            if self.background_enabled:
                engine = self.engine
                self.background = BackgroundJobs(
                    self.runner,
                    self.template,
                    client_factory=lambda: engine.client("sqs"),
                    queue_urls=self.queues,
                    service_client=self._service_client,
                    environ=self.environ,
                    # Background runs never take every worker: the API keeps at least one.
                    concurrency=max(1, self.workers - 1),
                ).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.background is not None:
            self.background.stop()
            self.background = None
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if self.runner is not None:
            self.runner.stop()
            self.runner = None
        if self.engine is not None:
            self.engine.stop()
            self.engine = None
        if self.dynamodb is not None:
            self.dynamodb.stop()
            self.dynamodb = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self.gateway is not None, "stack not started"
        return self.gateway.url

    @property
    def moto_url(self) -> str:
        assert self.engine is not None, "stack not started"
        return self.engine.url

    def _service_client(self, service: str) -> Any:
        """A client of where `service` lives: DynamoDB and its streams on the engine the stack
        runs (DynamoDB Local or moto), everything else on moto."""
        if service in ("dynamodb", "dynamodbstreams") and self.dynamodb is not None:
            return self.dynamodb.client(service)
        assert self.engine is not None, "stack not started"
        return self.engine.client(service)

    @property
    def dynamodb_url(self) -> str:
        """Where DynamoDB is served: DynamoDB Local's URL, or moto's."""
        return self.dynamodb.url if self.dynamodb is not None else self.moto_url

    @property
    def faults(self) -> str:
        return self.runner.faults.text() if self.runner is not None else ""
