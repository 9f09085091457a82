"""Schemathesis hooks for the contract run (loaded with SCHEMATHESIS_HOOKS=tests.contract.hooks).

Credentials: each operation gets a fresh bearer token of the kind its security requirement
names in the served document (internal tokens live at most 300 s, longer than any one call), signed
with the stack's secrets (the same environment variables the stack reads). Routes without a bearer
scheme get nothing: the public routes need none, and the webhooks' signature headers are left to
the generator (an unsigned or wrongly signed event is a documented 401).

One spelling rule: JSON Schema cannot say "written without a fraction". For it `2.0` is the
integer 2, while this API refuses a fraction or an exponent in an integer or an amount (the
document says so in each such field's description). Whole-valued floats are therefore sent as
the integers they equal: the same value for the schema, so no case changes validity.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from devserver.tokens import make_token

KINDS = {"internalToken": "internal", "adminToken": "admin", "userToken": "user"}
SUBJECTS = {"internal": "svc-contract", "admin": "ops-contract", "user": "acct-contract"}


def _kind(operation: Any) -> str | None:
    for requirement in operation.definition.raw.get("security") or ():
        for scheme in requirement:
            if scheme in KINDS:
                return KINDS[scheme]
    return None


@schemathesis.auth(refresh_interval=None, retry_on=[])
class BearerPerScheme:
    def get(self, case: Any, ctx: Any) -> str | None:
        kind = _kind(ctx.operation)
        return make_token(kind, SUBJECTS[kind]) if kind else None

    def set(self, case: Any, data: str | None, ctx: Any) -> None:
        if data is not None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _whole_floats_as_integers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_floats_as_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_floats_as_integers(v) for v in value]
    return value


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    return _whole_floats_as_integers(body)
