"""What the browser tests share: the Chromium they drive, a test's pages (checked for console
errors), the API calls that set an account up, and screenshots (artifacts/browser/, ignored by git)."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devserver.template import REPO_ROOT
from devserver.testing import StackProcess
from tests.support.http import Caller, assert_status

CHROMIUM = os.environ.get("BILLING_CHROMIUM", "/usr/bin/chromium")
# Headless and quiet: no sandbox (root in CI), no GPU, nothing fetched in the background.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
SCREENSHOTS = REPO_ROOT / "artifacts" / "browser"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# What Chromium itself logs for a response with an error status (the page asked for it; the test
# that provokes one allows it). Anything else at level "error" fails the test.
FAILED_RESOURCE = re.compile(r"^Failed to load resource: the server responded with a status of \d{3}")


@dataclass
class Console:
    """What the page said: console messages and uncaught errors."""

    messages: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_responses_expected: bool = False

    def unexpected(self) -> list[str]:
        found = [f"uncaught: {error}" for error in self.page_errors]
        for kind, text in self.messages:
            if kind == "error" and not (self.failed_responses_expected and FAILED_RESOURCE.match(text)):
                found.append(f"console.error: {text}")
        return found


class Browsing:
    """A test's browser: pages in fresh contexts, checked for console errors when the test ends."""

    def __init__(self, browser: Any, stack: StackProcess) -> None:
        self.browser = browser
        self.stack = stack
        self.contexts: list[Any] = []
        self.consoles: list[Console] = []

    def page(self, viewport: dict[str, int] | None = None, *, failed_responses_expected: bool = False) -> Any:
        context = self.browser.new_context(viewport=viewport or DESKTOP, device_scale_factor=1,
                                           base_url=self.stack.url)
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = context.new_page()
        console = Console(failed_responses_expected=failed_responses_expected)
        page.on("console", lambda message: console.messages.append((message.type, message.text)))
        page.on("pageerror", lambda error: console.page_errors.append(str(error)))
        self.consoles.append(console)
        return page

    def open(self, account: str, *, viewport: dict[str, int] | None = None, token: str | None = None,
             failed_responses_expected: bool = False) -> Any:
        """A new page at /billing#token=<a user token for the account>."""
        page = self.page(viewport, failed_responses_expected=failed_responses_expected)
        page.goto(f"/billing#token={token or self.stack.token('user', account)}")
        return page

    def close(self) -> list[str]:
        problems = [problem for console in self.consoles for problem in console.unexpected()]
        for context in self.contexts:
            context.close()
        return problems


class Setup(Caller):
    """The API calls that put an account into the state a test needs (tests.support.http.Caller,
    plus the quota routes). An account id is also its org id: a user token's subject is both."""

    def account(self, prefix: str = "acct-page") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    def limits(self, org_id: str, **overrides: int) -> dict[str, Any]:
        body = {"orgId": org_id, "overrides": overrides}
        return assert_status(self.request("POST", "/api/v1/billing/org/plan", json_body=body,
                                          token=self.admin_token(self._admin())), 200)

    def usage(self, org_id: str, **amounts: int) -> dict[str, Any]:
        body = {"orgId": org_id, **amounts}
        return assert_status(self.request("POST", "/api/v1/billing/org/usage", json_body=body,
                                          token=self.internal_token()), 200)

    def charge(self, account_id: str, actual: int, *, estimate: int | None = None) -> None:
        reservation = self.reserve_ok(account_id, estimate or actual)
        self.finalize_ok(reservation["reservationId"], actual)

    def mint_as(self, account_id: str, amount: int, **kwargs: Any) -> None:
        self.mint(account_id, amount, admin=self._admin(), **kwargs)

    def _admin(self) -> str:
        """An admin subject of its own per call: the 30/min admin rate limit never couples calls."""
        return f"{self.admin}-{uuid.uuid4().hex[:6]}"


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
