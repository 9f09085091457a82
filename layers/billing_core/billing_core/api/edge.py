"""The HTTP edge shared by every handler: body limits, authentication, rate limits, the
caller's context, response serialization and the mapping of domain errors to the error shape.

A handler module declares its routes on a Powertools `Router` and exports
`lambda_handler = edge.handler(router, auth="internal")`. A route takes the caller's context as
`ctx: edge.Ctx` (a Powertools `Depends`) and answers `edge.reply(Model, result, status)`. The
wrapper runs, in order: 413 for bodies over 64 KiB, 415/400 for non-JSON bodies,
authentication (401/403) before any validation detail is revealed, then Powertools' pydantic
validation and the route, and last the caller's rate counter for a request that did not count
it inside a money transaction (and was answered below 429: a 5xx did nothing).
"""

from __future__ import annotations

import base64
import contextvars
import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Depends, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths

from billing_core.api import auth, contract, errors, origin
from billing_core.api.models.common import ResponseModel
from billing_core.kernel import ids, settings
from billing_core.kernel.context import Caller, Context
from billing_core.kernel.errors import (
    BadRequest,
    BillingError,
    Forbidden,
    InsufficientCredit,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from billing_core.kernel.observability import flush, logger, tracer
from billing_core.store import dynamo
from billing_core.store.ratelimit import RateCharge

MAX_BODY_BYTES = 64 * 1024
JSON_TYPE = errors.JSON_TYPE

_context: contextvars.ContextVar[Context | None] = contextvars.ContextVar("context", default=None)



class LambdaHandler:
    """A function's entry point, with what the tools that document and test it read from it."""

    def __init__(self, run: Callable[[dict[str, Any], Any], dict[str, Any]], resolver: APIGatewayRestResolver,
                 auth_kind: str | None, parse_body: bool) -> None:
        self._run = run
        self.resolver = resolver
        self.auth_kind = auth_kind
        self._parse_body = parse_body
        self._documented = False

    def __call__(self, event: dict[str, Any], lambda_context: Any) -> dict[str, Any]:
        return self._run(event, lambda_context)

    def documented(self) -> APIGatewayRestResolver:
        """The resolver with what the edge answers added to each route's responses (its caller
        kind's 401/403/429, the body's and parameters' refusals): for the OpenAPI document only,
        so a cold start never pays for it."""
        if not self._documented:
            for route in self.resolver._static_routes + self.resolver._dynamic_routes:
                contract.complete(route, auth_kind=self.auth_kind, parse_body=self._parse_body)
            self._documented = True
        return self.resolver


def router() -> Router:
    return Router()


def context() -> Context:
    """The caller and the request's rate charge (a route's `Depends`)."""
    current = _context.get()
    if current is None:  # a route without auth asked for a caller: a programming error
        raise RuntimeError("route has no authenticated caller")
    return current


Ctx = Annotated[Context, Depends(context)]

# Identifiers in a path or a query: the same pattern and length as in a body, in the document too.
# A path identifier that does not match is 422 INVALID_ID.
PathId = Annotated[str, Path(pattern=ids.ID_PATTERN, min_length=1, max_length=ids.ID_MAX)]
# An account a caller credits or debits: documented without the system accounts, which the core
# refuses with 422 SYSTEM_ACCOUNT.
PathAccountId = Annotated[str, Path(pattern=ids.ID_PATTERN, min_length=1, max_length=ids.ID_MAX,
                                    json_schema_extra={"pattern": ids.ACCOUNT_PATTERN})]
QueryId = Annotated[str | None, Query(pattern=ids.ID_PATTERN, min_length=1, max_length=ids.ID_MAX)]
QueryPool = Annotated[str | None, Query(pattern=ids.POOL_PATTERN, min_length=1, max_length=ids.POOL_MAX)]

# What a route documents: `@router.post(..., responses=edge.responses(Model, 201, {Conflict: ("CODE",)}))`.
responses = contract.responses


def own_account(requested: str | None) -> str:
    """User tokens are scoped to their own account: asking for another one is 403."""
    subject = context().caller.subject
    if requested is not None and requested != subject:
        raise Forbidden("user tokens may only read their own account", code="ACCOUNT_SCOPE")
    return subject


def path_id(value: str, name: str) -> str:
    if not ids.valid_id(value):
        raise InvalidInput(f"{name} is not a valid identifier", code="INVALID_ID")
    return value


M = TypeVar("M", bound=ResponseModel)


def reply(model: type[M], result: Any, status: int = 200) -> Response[M]:
    """A core result through its response model: the one way a route answers. The route's return
    annotation (`-> Response[Model]`) is the same model, so Powertools documents it in the OpenAPI
    document and writes it (camelCase, amounts as strings) exactly as `Model.of` would."""
    return Response(status_code=status, content_type=JSON_TYPE, body=model.model_validate(result))


def _as_response(proxy: dict[str, Any]) -> Response[str]:
    return Response(status_code=proxy["statusCode"], content_type=JSON_TYPE, body=proxy["body"],
                    headers={k: v for k, v in proxy["headers"].items() if k != "Content-Type"})


def _validation_details(exc: RequestValidationError) -> dict[str, Any]:
    problems = []
    in_path = False
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return errors.proxy(400, "INVALID_JSON", "request body is not valid JSON")
        in_path = in_path or tuple(err.get("loc", ()))[:1] == ("path",)
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body",)]
        message = str(err.get("msg", "invalid value"))
        ctx_error = (err.get("ctx") or {}).get("error")
        if ctx_error:
            message = str(ctx_error)
        problems.append({"field": ".".join(loc) or "body", "message": message})  # never echo the input
    if in_path:
        return errors.proxy(422, "INVALID_ID", "a path identifier is not valid", {"errors": problems})
    return errors.proxy(422, "VALIDATION_ERROR", "request is invalid", {"errors": problems})


def actionable(exc: BillingError, event: dict[str, Any] | None) -> BillingError:
    """An insufficient-credit refusal says where to pay (details.topUpUrl, always present)."""
    if isinstance(exc, InsufficientCredit) and "topUpUrl" not in exc.details:
        exc.details["topUpUrl"] = origin.top_up_url(event)
    return exc


def _resolver(route_source: Router) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)

    @app.exception_handler(BillingError)
    def _refused(exc: BillingError) -> Response[str]:
        actionable(exc, app.current_event.raw_event)
        logger.info("request refused", extra={"code": exc.code, "status": errors.status_of(exc)})
        return _as_response(errors.of(exc))

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response[str]:
        return _as_response(_validation_details(exc))

    @app.not_found
    def _not_found(_: NotFoundError) -> Response[str]:
        return _as_response(errors.proxy(404, "ROUTE_NOT_FOUND", "no such route"))

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return _as_response(errors.proxy(500, "INTERNAL_ERROR", "internal error"))

    app.include_router(route_source)
    return app


def raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


def _precheck(event: dict[str, Any], *, parse: bool = True) -> None:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in event.get("path") or ""):
        # No route has a control character; a router matching with `$` would drop a trailing "\n".
        raise NotFound("no such route", code="ROUTE_NOT_FOUND")
    body = event.get("body")
    if body is None or body == "":
        return
    raw = raw_body(event)
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body exceeds {MAX_BODY_BYTES} bytes", details={"maxBytes": MAX_BODY_BYTES})
    if not parse:
        return  # signed webhooks: the route verifies the raw bytes before anything reads them
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = (headers.get("content-type") or JSON_TYPE).split(";")[0].strip().lower()
    if content_type != JSON_TYPE:
        raise UnsupportedMediaType("request body must be application/json")
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest("request body is not valid JSON", code="INVALID_JSON") from None
    if not isinstance(parsed, dict):
        # Powertools would validate a list by its first element; a body is one JSON object.
        raise InvalidInput("request body must be a JSON object", details={"errors": [
            {"field": "body", "message": "must be a JSON object"}]})


def _context_for(principal: auth.Principal) -> Context:
    s = settings.get()
    caller = Caller(principal.kind, principal.subject)
    if principal.kind not in ("internal", "admin"):
        return Context(caller)
    limit = s.rate_limit_admin if principal.kind == "admin" else s.rate_limit_internal
    return Context(caller, RateCharge.for_caller(s.billing_table, principal.kind, principal.subject, limit))


def handler(route_source: Router, *, auth_kind: str | None, parse_body: bool = True) -> LambdaHandler:
    """Build the Lambda entry point for one function's routes. parse_body=False leaves the body
    untouched (only its size is checked) for routes that must verify a signature on raw bytes.
    Fails at cold start when the function lacks its configuration (settings.ConfigurationError)."""
    if auth_kind is not None:
        settings.get().require(*auth.secret_fields(auth_kind))
    else:
        settings.get()
    app = _resolver(route_source)

    @tracer.capture_lambda_handler(capture_response=False)  # answers can carry a secret shown once
    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    def lambda_handler(event: dict[str, Any], lambda_context: Any) -> dict[str, Any]:
        token = _context.set(None)
        try:
            with settings.invocation():
                return _serve(event, lambda_context)
        finally:
            flush()
            _context.reset(token)

    def _serve(event: dict[str, Any], lambda_context: Any) -> dict[str, Any]:
        try:
            _precheck(event, parse=parse_body)
            ctx = None
            if auth_kind is not None:
                ctx = _context_for(auth.authenticate(event.get("headers"), auth_kind))
                _context.set(ctx)
            rate = ctx.rate if ctx is not None else None
            # The rate charge rides in a money transaction, or goes first before any other write;
            # a request that wrote nothing is counted after it answered.
            with dynamo.before_single_writes(rate.charge_standalone if rate is not None else None):
                response: dict[str, Any] = app.resolve(event, lambda_context)
            if rate is not None and not rate.charged and response.get("statusCode", 500) < 429:
                rate.charge_standalone()  # a 429 was counted already; a 5xx did nothing to count
            return response
        except BillingError as exc:
            actionable(exc, event)
            logger.info("request refused", extra={"code": exc.code, "status": errors.status_of(exc)})
            return errors.of(exc)
        except Exception:
            logger.exception("unhandled error outside the resolver")
            return errors.proxy(500, "INTERNAL_ERROR", "internal error")

    return LambdaHandler(lambda_handler, app, auth_kind, parse_body)
