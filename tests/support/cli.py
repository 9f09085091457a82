"""What the CLI's tests run billing-admin with and get back: the admin secret the `cli` fixture
signs with, a captured run, and a stdin that answers like a terminal."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SECRET = "cli-test-admin-secret-0123456789abcdef-xyz"


@dataclass
class Ran:
    code: int
    out: str
    err: str
    sleeps: list[float] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.out)


class Tty:
    """A stdin that says it is a terminal and answers with `answer`."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self.answer + "\n"
