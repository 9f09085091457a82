"""What a command runs with: its arguments, the output, and an API client built on first use (so
commands that send nothing, like `token` or `--dry-run`, need no credentials)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from billing_admin import auth
from billing_admin.client import ApiClient, base_url, plain_http_to_remote
from billing_admin.errors import UsageError
from billing_admin.render import Output


@dataclass
class Context:
    args: argparse.Namespace
    out: Output
    environ: Mapping[str, str]
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    sleep: Callable[[float], None] = time.sleep
    _client: ApiClient | None = None

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            url = base_url(self.args.url, self.environ)
            tokens = auth.resolve(self.environ, token=self.args.token, actor=self.args.actor)
            if self.args.actor and isinstance(tokens, auth.StaticToken):
                self.out.notice(f"--actor is ignored: the {tokens.description} names its own subject")
            if plain_http_to_remote(url):
                self.out.notice(f"warning: sending an admin token over plain HTTP to {url}")
            self._client = ApiClient(url, tokens, timeout=self.args.timeout, max_retries=self.args.max_retries,
                                     notify=self.out.notice, sleep=self.sleep)
        return self._client

    def confirm(self, question: str, *, action: str) -> bool:
        """Ask on the terminal; refuse to guess when nobody is there to answer."""
        try:
            interactive = self.stdin.isatty()
        except (AttributeError, ValueError):
            interactive = False
        if not interactive:
            raise UsageError(f"{action} needs confirmation: pass --yes when not running interactively")
        self.out.err.print(f"{question} [y/N] ", end="", markup=False)
        answer = self.stdin.readline().strip().lower()
        return answer in ("y", "yes")
