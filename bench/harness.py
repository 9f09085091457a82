"""What the benchmark shares: paths and environment, in-process handler invocation with API Gateway
events (devserver.invoke, shared with the tests), tokens (devserver.tokens), and the one recorder of
DynamoDB calls (botocore's event hooks on billing_core.store.dynamo.client()).

Nothing here imports the billing core: the environment is set (apply_env) before it loads."""

from __future__ import annotations

import copy
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "billing_core"
TEMPLATE = ROOT / "template.yaml"

for _path in (str(ROOT), str(LAYER)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from devserver import tokens  # noqa: E402
from devserver.invoke import LambdaContext as LambdaContext  # noqa: E402 - re-exported
from devserver.invoke import event as event  # noqa: E402 - re-exported
from devserver.invoke import invoke, load_handler, reply  # noqa: E402

# Production settings (template.yaml Globals) where they matter; fake credentials for moto.
# The one deliberate difference: the per-service rate limit is raised so the benchmark's
# hundreds of requests per minute from one service id are not refused. The counter is still
# charged inside every money transaction exactly as in production (same action, same call
# count, same item); only the threshold in its condition differs.
BENCH_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "BILLING_TABLE": "BillingTable",
    "LEDGER_TABLE": "LedgerTable",
    "BILLING_INTERNAL_JWT_SECRET": "bench-internal-secret-0123456789abcdef",
    "BILLING_ADMIN_JWT_SECRET": "bench-admin-secret-0123456789abcdef0123",
    "BILLING_ADMIN_JWT_SECRET_PREV": "bench-admin-previous-secret-0123456789",
    "BILLING_USER_JWT_SECRET": "bench-user-secret-0123456789abcdef01234",
    "BILLING_CEILING_MICRO": "1000000000000",
    "BILLING_CONFIG_CACHE_SECONDS": "5",
    "BILLING_RATE_LIMIT_INTERNAL_PER_MIN": "100000000",
    "BILLING_RATE_LIMIT_ADMIN_PER_MIN": "30",
    "POWERTOOLS_SERVICE_NAME": "billing",
    "POWERTOOLS_METRICS_NAMESPACE": "CreditBilling",
}
_DROP_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
             "POWERTOOLS_LOG_LEVEL")


def apply_env() -> None:
    for name in _DROP_ENV:
        os.environ.pop(name, None)
    os.environ.update(BENCH_ENV)


# The report's own stream. While the benchmark runs, sys.stdout is /dev/null (run.main): the
# handlers still build and write their EMF metric lines, as in Lambda, without burying the report.
REPORT = sys.stdout


def say(text: str = "") -> None:
    print(text, file=REPORT, flush=True)


# -- tokens ------------------------------------------------------------------------------------


def internal_token(sub: str = "svc-bench", lifetime: int = 300) -> str:
    return tokens.internal_token(sub, environ=BENCH_ENV, lifetime=lifetime)


def admin_token(sub: str = "ops-bench") -> str:
    return tokens.admin_token(sub, environ=BENCH_ENV)


def user_token(sub: str) -> str:
    return tokens.user_token(sub, environ=BENCH_ENV)


# -- handlers ----------------------------------------------------------------------------------


def handler(code_dir: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """functions/<code_dir>/app.py's lambda_handler, loaded once."""
    return load_handler(code_dir).lambda_handler


def call(route: str, body: Any = None, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    status, payload, _ = reply(invoke(route, event(route, body, **kwargs)))
    return status, payload


def expect(route: str, body: Any = None, status: int = 200, **kwargs: Any) -> dict[str, Any]:
    got, payload = call(route, body, **kwargs)
    if got != status:
        raise RuntimeError(f"{route} answered {got} (expected {status}): {payload}")
    return payload


def new_reservation_id() -> str:
    return f"res_{uuid.uuid4().hex}"


# -- DynamoDB call recording -----------------------------------------------------------------


class Recorder:
    """Counts DynamoDB API calls ('before-call', once per API call, retries not included), keeps a
    copy of each call's request parameters ('provide-client-params', also handed to `on_params`)
    and the last parsed response of each operation ('after-call').

    Hooks are registered only while recording, so timed sections run without them.
    """

    _HOOKS = (("provide-client-params", "_params"), ("before-call", "_before_call"), ("after-call", "_after_call"))

    def __init__(self, client: Any, on_params: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.client = client
        self.on_params = on_params
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.names: list[str] = []
        self.responses: dict[str, dict[str, Any]] = {}

    def _params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        copied = copy.deepcopy(params)
        self.calls.append((model.name, copied))
        if self.on_params is not None:
            self.on_params(model.name, copied)

    def _before_call(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)

    def _after_call(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.responses[model.name] = copy.deepcopy(parsed)

    def __enter__(self) -> Recorder:
        for event_name, method in self._HOOKS:
            self.client.meta.events.register(f"{event_name}.dynamodb", getattr(self, method),
                                             unique_id=f"bench-{event_name}")
        return self

    def __exit__(self, *exc: object) -> None:
        for event_name, _ in self._HOOKS:
            self.client.meta.events.unregister(f"{event_name}.dynamodb", unique_id=f"bench-{event_name}")

    def take(self) -> list[str]:
        """The operation names recorded since the last take (request parameters dropped too)."""
        names, self.names = self.names, []
        self.calls = []
        return names
