"""The local stack for end-to-end tests: `start_stack()` runs `python -m devserver` on a free
port in a child process and returns once it serves.

A child process, not a thread: moto's state is global to a process, and unit tests' own
`mock_aws()` resets it on entry and exit, which would wipe a stack living in the test process.

    stack = start_stack()
    try:
        requests.get(f"{stack.url}/api/billing/pricing")
        requests.post(..., headers={"Authorization": f"Bearer {stack.token('internal')}"})
    finally:
        stack.stop()
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devserver.stack import DEFAULT_SEED
from devserver.template import DEFAULT_TEMPLATE, REPO_ROOT
from devserver.tokens import dev_secrets, make_token


class StackStartError(RuntimeError):
    pass


class StackProcess:
    """A running `python -m devserver` child: .url, .moto_url, .dynamodb_url, .engine, .secrets,
    .token(), .stop()."""

    def __init__(self, process: subprocess.Popen, info: dict[str, Any], log_path: Path, environ: dict) -> None:
        self.process = process
        self.url: str = info["url"]
        self.moto_url: str = info["motoUrl"]
        self.dynamodb_url: str = info.get("dynamodbUrl") or info["motoUrl"]
        self.engine: str = info.get("engine") or "moto"
        self.log_path = log_path
        self.environ = environ
        self.secrets = dev_secrets(environ)

    def token(self, kind: str, subject: str | None = None) -> str:
        """A fresh internal|admin|user token signed with this stack's secrets."""
        return make_token(kind, subject, environ=self.environ)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def __enter__(self) -> StackProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_stack(
    *,
    template: str | Path = DEFAULT_TEMPLATE,
    workers: int = 2,
    seed: str | None = DEFAULT_SEED,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    log_dir: str | Path | None = None,
    background: bool = True,
) -> StackProcess:
    """Start the stack on free ports in a child process; `env` is added to its environment.

    `background=False` runs no schedules and polls no queues (--no-background). The background
    jobs' knobs are environment variables, so they go in `env`, e.g. a sweeper every second:
    env={"BILLING_LOCAL_SCHEDULE_SECONDS_SweeperFunction": "1"} (see devserver.background).
    """
    workdir = Path(log_dir or tempfile.mkdtemp(prefix="devserver-"))
    ready = workdir / "ready.json"
    log_path = workdir / "stack.log"
    environ = {**os.environ, **(env or {})}
    pythonpath = [str(REPO_ROOT), str(REPO_ROOT / "layers" / "billing_core")]
    if environ.get("PYTHONPATH"):
        pythonpath.append(environ["PYTHONPATH"])
    environ["PYTHONPATH"] = os.pathsep.join(pythonpath)
    command = [
        sys.executable, "-m", "devserver",
        "--port", "0",
        "--workers", str(workers),
        "--template", str(template),
        "--ready-file", str(ready),
    ]
    command += ["--no-seed"] if seed is None else ["--seed", seed]
    if not background:
        command.append("--no-background")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            command, cwd=REPO_ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
                process.wait(5)
            raise StackStartError(
                f"local stack did not start (exit {process.returncode}); log:\n"
                + log_path.read_text(encoding="utf-8", errors="replace")[-5000:]
            )
        time.sleep(0.05)
    return StackProcess(process, json.loads(ready.read_text()), log_path, environ)
