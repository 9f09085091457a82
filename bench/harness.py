"""What the benchmark shares: paths and environment, in-process handler invocation with API Gateway
events (devserver.invoke, shared with the tests), tokens (devserver.tokens), and DynamoDB call recording through
botocore's event hooks on billing_core.store.dynamo.client()."""

from __future__ import annotations

import copy
import json
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
from devserver.invoke import LambdaContext, event, load_handler, routes  # noqa: E402

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


# -- tokens ------------------------------------------------------------------------------------


def internal_token(sub: str = "svc-bench", lifetime: int = 300) -> str:
    return tokens.internal_token(sub, environ=BENCH_ENV, lifetime=lifetime)


def admin_token(sub: str = "ops-bench") -> str:
    return tokens.admin_token(sub, environ=BENCH_ENV)


def user_token(sub: str) -> str:
    return tokens.user_token(sub, environ=BENCH_ENV)


# -- handlers ----------------------------------------------------------------------------------


def handler(name: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """functions/<name>/app.py's lambda_handler, loaded once."""
    return load_handler(name).lambda_handler


def invoke(route: str, ev: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    result = handler(routes()[route].code_dir)(ev, LambdaContext())
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else {}


def call(route: str, body: Any = None, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    return invoke(route, event(route, body, **kwargs))


def expect(route: str, body: Any = None, status: int = 200, **kwargs: Any) -> dict[str, Any]:
    got, payload = call(route, body, **kwargs)
    if got != status:
        raise RuntimeError(f"{route} answered {got} (expected {status}): {payload}")
    return payload


def new_reservation_id() -> str:
    return f"res_{uuid.uuid4().hex}"


# -- DynamoDB call recording -----------------------------------------------------------------


class Recorder:
    """Counts DynamoDB API calls ('before-call', once per API call, retries not included) and
    keeps a copy of each call's request parameters ('provide-client-params').

    Hooks are registered only while recording, so timed sections run without them.
    """

    def __init__(self, client: Any, on_params: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.client = client
        self.on_params = on_params
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.names: list[str] = []

    def _params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        copied = copy.deepcopy(params)
        self.calls.append((model.name, copied))
        if self.on_params is not None:
            self.on_params(model.name, copied)

    def _before_call(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)

    def __enter__(self) -> Recorder:
        events = self.client.meta.events
        events.register("provide-client-params.dynamodb", self._params, unique_id="bench-params")
        events.register("before-call.dynamodb", self._before_call, unique_id="bench-count")
        return self

    def __exit__(self, *exc: object) -> None:
        events = self.client.meta.events
        events.unregister("provide-client-params.dynamodb", unique_id="bench-params")
        events.unregister("before-call.dynamodb", unique_id="bench-count")

    def take(self) -> list[str]:
        names, self.names = self.names, []
        self.calls = []
        return names
