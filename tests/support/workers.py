"""Concurrency through worker processes: a pool of spawned Lambda workers on the serialized moto
server, each running one handler invocation per call (the way Lambda gives every concurrent
request its own execution environment), and a barrier that releases calls at once.

Nothing here imports the billing core at module level, so spawned worker processes can import
this module cheaply and set their environment before the core is loaded.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from devserver.invoke import event, invoke, reply
from tests.support.engines import engines
from tests.support.env import ROOT, TEMPLATE, TEST_ENV

LAYER = ROOT / "layers" / "billing_core"

SECRET_NAMES = (
    "BILLING_INTERNAL_JWT_SECRET",
    "BILLING_ADMIN_JWT_SECRET",
    "BILLING_ADMIN_JWT_SECRET_PREV",
    "BILLING_USER_JWT_SECRET",
)


T = TypeVar("T")


@contextlib.contextmanager
def worker_pool(workers: int = 8) -> Iterator[tuple[Any, Any]]:
    """(engines, runner): the serialized moto server with the template's queues and tables (or, on
    DynamoDB Local, the tables there: tests.support.engines), seeded like a new deployment, and
    `workers` spawned Lambda worker processes (one invocation each at a time) with the test
    environment. Concurrency tests interleave requests through it."""
    from devserver.runner import WorkerPoolRunner

    environ = {k: v for k, v in TEST_ENV.items() if not k.startswith("AWS_")}
    with engines() as engine:
        runner = WorkerPoolRunner(TEMPLATE, workers=workers, moto_url=engine.url, environ=environ,
                                  secrets={k: TEST_ENV[k] for k in SECRET_NAMES}, log_errors=True,
                                  dynamodb_url=engine.dynamodb_url)
        runner.start()
        try:
            runner.call("billing_core.ledger.bootstrap:seed")
            yield engine, runner
        finally:
            runner.stop()


def together(calls: list[Callable[[], T]]) -> list[T]:
    """Release all calls at once, each from its own thread (a barrier), and collect the results in order."""
    barrier = threading.Barrier(len(calls))

    def one(call: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))


# -- worker processes (multiprocessing, spawn) ------------------------------------------------

def worker_init(env: dict[str, str], clock_offset: float = 0.0) -> None:
    """Runs once in each worker process: the function's environment, the layer on sys.path."""
    os.environ.update(env)
    for entry in (str(LAYER), str(ROOT)):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    from billing_core.kernel import clock

    clock.reset()
    clock.advance(clock_offset)


def worker_invoke(route: str, kwargs: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str], int]:
    """One handler invocation in this worker process: (status, body, headers, pid)."""
    status, body, headers = reply(invoke(route, event(route, **kwargs)))
    return status, body, headers, os.getpid()


def worker_seed() -> dict[str, list[str]]:
    """Seed the tables from a worker, as the bootstrap custom resource would."""
    from billing_core.ledger import bootstrap

    return bootstrap.seed()
