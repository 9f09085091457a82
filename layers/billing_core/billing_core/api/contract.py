"""What the OpenAPI document says about a route, kept next to the code that answers it.

One error body for every refusal (`ErrorResponse`), one bearer scheme per caller kind, and each
route's responses: its success status and model, and every error status it can give with the
codes it uses. A route names what only it knows (`responses(Model, 201, {Conflict: ("X",)})`);
`complete()` adds what the edge knows from the handler (the caller kind's 401/403/429, the body's
400/413/415/422, the parameters' 422 and 404, 500/503), so a route added by anyone is documented
with the statuses the edge really gives. Statuses come from the one table in api.errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any, cast

from aws_lambda_powertools.event_handler.openapi.types import (
    OpenAPIResponse,
    OpenAPIResponseContentModel,
    OpenAPIResponseContentSchema,
    OpenAPIResponseHeader,
)
from pydantic import BaseModel, ConfigDict, Field

from billing_core.api import errors

JSON_TYPE = errors.JSON_TYPE
ERROR_SCHEMA = "ErrorResponse"
ERROR_REF = f"#/components/schemas/{ERROR_SCHEMA}"
CODE_PATTERN = r"^[A-Z][A-Z0-9_]*$"


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE_PATTERN, description="Stable, machine-readable; listed per response")
    message: str = Field(description="For people; never echoes the input")
    details: dict[str, Any] = Field(description="What the code needs said (e.g. a quota, a shortfall); may be {}")


class ErrorResponse(BaseModel):
    """The body of every refusal."""

    model_config = ConfigDict(extra="forbid", title=ERROR_SCHEMA)

    error: ErrorDetail


SCHEMES = {"internal": "internalToken", "admin": "adminToken", "user": "userToken"}
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "internalToken": {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "Service-to-service HS256 JWT: iss loa-finn, aud arrakis-internal, exp and iat required, "
                       "lifetime at most 300 s; sub = the service id.",
    },
    "adminToken": {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "Operator HS256 JWT: aud arrakis-billing-admin, exp and iat required; sub = the operator.",
    },
    "userToken": {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "End-user HS256 JWT: exp required; sub = the account id (the org id on quota routes). "
                       "A system account (sys-*) is never a user.",
    },
    "nowpaymentsSignature": {
        "type": "apiKey", "in": "header", "name": "x-nowpayments-sig",
        "description": "Hex HMAC-SHA512 of the raw JSON body re-serialized with keys sorted, with the IPN secret.",
    },
    "stripeSignature": {
        "type": "apiKey", "in": "header", "name": "Stripe-Signature",
        "description": "t=<unix>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'> with the endpoint secret; 300 s tolerance.",
    },
}

# What the edge itself answers, by what a route takes.
AUTH_ERRORS: dict[str, dict[int, tuple[str, ...]]] = {
    "internal": {401: ("MISSING_TOKEN", "INVALID_TOKEN", "TOKEN_EXPIRED", "TOKEN_LIFETIME_EXCEEDED"),
                 403: ("WRONG_AUDIENCE",), 429: ("RATE_LIMITED",)},
    "admin": {401: ("MISSING_TOKEN", "INVALID_TOKEN", "TOKEN_EXPIRED"), 403: ("WRONG_AUDIENCE",),
              429: ("RATE_LIMITED",)},
    "user": {401: ("MISSING_TOKEN", "INVALID_TOKEN", "TOKEN_EXPIRED"), 403: ("WRONG_AUDIENCE", "SYSTEM_ACCOUNT")},
}
BODY_ERRORS = {400: ("INVALID_JSON",), 413: ("PAYLOAD_TOO_LARGE",), 415: ("UNSUPPORTED_MEDIA_TYPE",),
               422: ("VALIDATION_ERROR",)}
# A signed route reads the raw bytes itself; only a body that is not UTF-8 text is refused before
# it (JSON is UTF-8 by definition: the local gateway answers 400 as the handler would).
RAW_BODY_ERRORS = {400: ("INVALID_JSON",), 413: ("PAYLOAD_TOO_LARGE",)}
PARAM_ERRORS = {422: ("VALIDATION_ERROR",)}
PATH_ERRORS = {404: ("ROUTE_NOT_FOUND",), 422: ("INVALID_ID",)}
SERVER_ERRORS = {500: ("INTERNAL_ERROR",), 503: ("CONTENTION",)}

# `required` is OpenAPI's but not in Powertools' TypedDict of a header.
RETRY_AFTER: dict[str, OpenAPIResponseHeader] = {"Retry-After": cast(OpenAPIResponseHeader, {
    "description": "Seconds until the caller's window has room again", "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]+$"}})}

# {error class: the codes a route gives with it}; keyed by any error class (Mapping is invariant
# in its keys, so a literal {NotFound: ...} would not be a Mapping[type[BillingError], ...]).
Refusals = Mapping[type[Any], Iterable[str]]


def error_response(status: int, codes: Iterable[str]) -> OpenAPIResponse:
    listed = sorted(set(codes))
    schema = {"allOf": [{"$ref": ERROR_REF}],
              "properties": {"error": {"type": "object", "properties": {"code": {"enum": listed}}}}}
    response: OpenAPIResponse = {"description": f"{HTTPStatus(status).phrase}: {', '.join(listed)}",
                                 "content": {JSON_TYPE: {"schema": schema}}}
    if status == 429:
        response["headers"] = RETRY_AFTER
    return response


def codes_of(response: Mapping[str, Any]) -> set[str]:
    try:
        return set(response["content"][JSON_TYPE]["schema"]["properties"]["error"]["properties"]["code"]["enum"])
    except (KeyError, TypeError):
        return set()


def add_errors(responses: dict[int, OpenAPIResponse], by_status: Mapping[int, Iterable[str]]) -> None:
    for status, codes in by_status.items():
        known = codes_of(responses[status]) if status in responses else set()
        responses[status] = error_response(status, known | set(codes))


def responses(model: type[BaseModel] | None, status: int = 200, refusals: Refusals | None = None, *,
              description: str | None = None, schema: dict[str, Any] | None = None) -> dict[int, OpenAPIResponse]:
    """A route's own responses: its success (a response model, or a raw `schema`) and the domain
    refusals it can give, as {error class: codes} (the class's own code when none are named)."""
    content = (OpenAPIResponseContentModel(model=model) if model is not None
               else OpenAPIResponseContentSchema(schema=schema or {"type": "object"}))
    out: dict[int, OpenAPIResponse] = {status: {"description": description or HTTPStatus(status).phrase,
                                                "content": {JSON_TYPE: content}}}
    by_status: dict[int, set[str]] = {}
    for cls, codes in (refusals or {}).items():
        by_status.setdefault(errors.status_for(cls), set()).update(tuple(codes) or (cls.code,))
    add_errors(out, by_status)
    return out


def complete(route: Any, *, auth_kind: str | None, parse_body: bool) -> None:
    """Add what the edge answers on this route (its handler's caller kind, body and parameters)
    to what the route declared, and name the route's security scheme."""
    from aws_lambda_powertools.event_handler.openapi.dependant import get_dependant, get_flat_params

    inputs = get_dependant(path=route.openapi_path, call=route.func)
    params = get_flat_params(inputs)
    declared = dict(route.responses or {})
    if not any(200 <= status < 300 for status in declared):  # documented from the return annotation
        declared[route.status_code] = {"description": HTTPStatus(route.status_code).phrase}
    generic: list[Mapping[int, Iterable[str]]] = [SERVER_ERRORS]
    if auth_kind is not None:
        generic.append(AUTH_ERRORS[auth_kind])
        route.security = [{SCHEMES[auth_kind]: []}]
    if inputs.body_params:
        generic.append(BODY_ERRORS)
    elif not parse_body and route.method in ("POST", "PUT", "PATCH"):
        generic.append(RAW_BODY_ERRORS)
    if params:
        generic.append(PARAM_ERRORS)
    if inputs.path_params:
        generic.append(PATH_ERRORS)
    for by_status in generic:
        add_errors(declared, by_status)
    # The error schema is a component: the 500 names the model so Powertools emits it.
    declared[500] = {**declared[500], "content": {JSON_TYPE: {"model": ErrorResponse}}}
    route.responses = declared


POWERTOOLS_DEFAULTS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")


def finish(document: dict[str, Any]) -> dict[str, Any]:
    """The merged document as served. Powertools documents a 422 `HTTPValidationError` on every
    route: routes with inputs replaced it with the error shape (complete), and a route without
    inputs never answers 422, so what is left of it goes, and so do its schemas."""
    default_422 = {"$ref": "#/components/schemas/HTTPValidationError"}
    for item in document.get("paths", {}).values():
        for operation in item.values():
            answer = operation.get("responses", {}).get(422) or operation.get("responses", {}).get("422")
            if answer and answer.get("content", {}).get(JSON_TYPE, {}).get("schema") == default_422:
                operation["responses"].pop(422, None)
                operation["responses"].pop("422", None)
    schemas = document.get("components", {}).get("schemas", {})
    for name in POWERTOOLS_DEFAULTS:
        schemas.pop(name, None)
    _integral(document)
    leftovers = [name for name in POWERTOOLS_DEFAULTS if f"#/components/schemas/{name}" in json.dumps(document)]
    if leftovers:
        raise ValueError(f"a route still documents Powertools' {', '.join(leftovers)}")
    return document


def _integral(node: Any) -> None:
    """Bounds are exact integers: 1000000000000, not 1000000000000.0 (pydantic's Schema types them float)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        if isinstance(value, float) and value.is_integer():
            node[key] = int(value)
        else:
            _integral(value)
