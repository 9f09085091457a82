"""End-to-end tests over HTTP against the whole local stack (what `make run` serves).

One stack per pytest session (per xdist worker): `--dist loadfile` keeps a file on one worker,
and tests inside a file run serially, so a test that sets the (global) billing mode at its start
sees that mode until it ends. Tests are independent through unique account, reservation,
service and admin ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from devserver.testing import StackProcess, start_stack
from tests.support.http import Caller


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    running = start_stack(log_dir=tmp_path_factory.mktemp("e2e-stack"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def api(stack: StackProcess, request: pytest.FixtureRequest) -> Iterator[Caller]:
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:24].strip("-") or "t"
    caller = Caller(stack, name)
    try:
        yield caller
    finally:
        caller.http.close()
