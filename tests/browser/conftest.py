"""The billing page in a real browser: headless Chromium from Debian's `chromium` package
(/usr/bin/chromium, installed by apt: .ci/run does it on a fresh machine), driven by Playwright
through `executable_path`, so no browser is ever downloaded. Against the whole local stack, as
`make run` serves it (`python -m devserver` in a child process, devserver.testing).

One stack per pytest session (per xdist worker) and one browser per module; every test gets fresh browser
contexts (their own sessionStorage) and its own accounts, and fails on any JavaScript error or
console error it did not expect (tests/browser/support.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devserver.testing import StackProcess, start_stack
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, Browsing, Setup


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    running = start_stack(log_dir=tmp_path_factory.mktemp("browser-stack"), workers=3, background=False)
    try:
        setup = Setup(running, "browser-setup")
        setup.set_mode("live")
        setup.http.close()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module-scoped: Playwright's sync API keeps an asyncio loop running in this thread while it
    is open, and a later test module in the same worker may need asyncio.run()."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium), "
                    "or point BILLING_CHROMIUM at a Chromium binary")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() runs the browser on a new, empty profile (a fresh user-data dir) of its own.
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def browsing(browser: Any, stack: StackProcess) -> Iterator[Browsing]:
    session = Browsing(browser, stack)
    problems: list[str] = []
    try:
        yield session
    finally:
        problems = session.close()
    assert not problems, problems


@pytest.fixture
def setup(stack: StackProcess, request: pytest.FixtureRequest) -> Iterator[Setup]:
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:20].strip("-") or "t"
    caller = Setup(stack, name)
    try:
        yield caller
    finally:
        caller.http.close()
