"""Fixtures for the CLI's tests: a fake API, and `cli(...)` running billing-admin in-process with a
controlled environment (never the developer's) and a recorded, instant sleep."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from billing_admin.cli import run
from tests.support.fakeapi import FakeApi

SECRET = "cli-test-admin-secret-0123456789abcdef-xyz"


@dataclass
class Ran:
    code: int
    out: str
    err: str
    sleeps: list[float] = field(default_factory=list)

    def json(self) -> Any:
        import json

        return json.loads(self.out)


class Tty:
    """A stdin that says it is a terminal and answers with `answer`."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self.answer + "\n"


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
