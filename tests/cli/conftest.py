"""Fixtures for the CLI's tests: a fake API, and `cli(...)` running billing-admin in-process with a
controlled environment (never the developer's) and a recorded, instant sleep."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from billing_admin.cli import run
from tests.support.cli import SECRET, Ran
from tests.support.fakeapi import FakeApi


@pytest.fixture
def fake() -> Iterator[FakeApi]:
    api = FakeApi().start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def cli(fake: FakeApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """cli(*argv, env=None, stdin=None, sleep=None) -> Ran, against the fake API with SECRET."""
    monkeypatch.setenv("COLUMNS", "250")  # tables as wide as the assertions expect, whatever the terminal

    def invoke(*argv: str, env: dict[str, str] | None = None, stdin: Any = None, sleep: Any = None) -> Ran:
        environ = {"BILLING_API_URL": fake.url, "BILLING_ADMIN_JWT_SECRET": SECRET, "USER": "tester"}
        if env is not None:
            environ.update(env)
            environ = {k: v for k, v in environ.items() if v is not None}
        sleeps: list[float] = []
        capsys.readouterr()
        code = run(list(argv), environ=environ, stdin=stdin, sleep=sleep or sleeps.append)
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err, sleeps)

    return invoke
