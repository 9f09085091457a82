"""The HTTP edge shared by every handler: body limits, authentication, rate limits, and the
mapping of domain errors to the one error shape in API.md.

A handler module declares its routes on a Powertools `Router` and exports
`lambda_handler = http.handler(router, auth="internal")`. The wrapper runs, in order:
413 for bodies over 64 KiB, 415/400 for non-JSON bodies, authentication (401/403) before any
validation detail is revealed, then Powertools' pydantic validation and the route, and last the
caller's rate counter for requests that did not count it inside a money transaction.
"""

from __future__ import annotations

import base64
import contextvars
import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from billing_core.api import auth
from billing_core.kernel import observability
from billing_core.kernel.errors import BillingError, Forbidden, InvalidInput, PayloadTooLarge, RateLimited
from billing_core.ledger.reservations import Caller
from billing_core.store import keys
from billing_core.store.ratelimit import RateCharge

MAX_BODY_BYTES = 64 * 1024
JSON_TYPE = "application/json"

logger = Logger(service="billing")

_principal: contextvars.ContextVar[auth.Principal | None] = contextvars.ContextVar("principal", default=None)
_rate: contextvars.ContextVar[RateCharge | None] = contextvars.ContextVar("rate", default=None)


def router() -> Router:
    return Router()


def principal() -> auth.Principal:
    current = _principal.get()
    if current is None:  # a route declared without auth asked for a caller: a programming error
        raise RuntimeError("route has no authenticated principal")
    return current


def caller() -> Caller:
    p = principal()
    return Caller(kind=p.kind, subject=p.subject)


def rate() -> RateCharge | None:
    return _rate.get()


def user_account(requested: str | None) -> str:
    """User tokens are scoped to their own account: asking for another one is 403."""
    p = principal()
    if requested is not None and requested != p.subject:
        raise Forbidden("user tokens may only read their own account", code="ACCOUNT_SCOPE")
    return p.subject


def json_response(payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=JSON_TYPE, body=json.dumps(payload, separators=(",", ":")),
                    headers=headers or {})


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A finished API Gateway proxy response (for errors raised outside the resolver)."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": JSON_TYPE, **(headers or {})},
        "body": json.dumps({"error": {"code": code, "message": message, "details": details or {}}}),
        "isBase64Encoded": False,
    }


def _from_error(exc: BillingError) -> dict[str, Any]:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return error_response(exc.status, exc.code, exc.message, exc.details, headers)


def _to_resolver_response(proxy: dict[str, Any]) -> Response:
    return Response(status_code=proxy["statusCode"], content_type=JSON_TYPE, body=proxy["body"],
                    headers={k: v for k, v in proxy["headers"].items() if k != "Content-Type"})


def _validation_details(exc: RequestValidationError) -> tuple[int, str, str, dict[str, Any]]:
    errors = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return 400, "INVALID_JSON", "request body is not valid JSON", {}
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body",)]
        message = str(err.get("msg", "invalid value"))
        ctx_error = (err.get("ctx") or {}).get("error")
        if ctx_error:
            message = str(ctx_error)
        errors.append({"field": ".".join(loc) or "body", "message": message})  # never echo the input
    return 422, "VALIDATION_ERROR", "request is invalid", {"errors": errors}


def _build_resolver(route_source: Router) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)

    @app.exception_handler(BillingError)
    def _billing_error(exc: BillingError) -> Response:
        logger.info("request refused", extra={"code": exc.code, "status": exc.status})
        return _to_resolver_response(_from_error(exc))

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        status, code, message, details = _validation_details(exc)
        return _to_resolver_response(error_response(status, code, message, details))

    @app.not_found
    def _not_found(_: NotFoundError) -> Response:
        return _to_resolver_response(error_response(404, "ROUTE_NOT_FOUND", "no such route"))

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return _to_resolver_response(error_response(500, "INTERNAL_ERROR", "internal error"))

    app.include_router(route_source)
    return app


class UnsupportedMediaType(BillingError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


def raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


def _precheck(event: dict[str, Any], *, parse: bool = True) -> None:
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
        raise BillingError("request body is not valid JSON", code="INVALID_JSON") from None
    if not isinstance(parsed, dict):
        # Powertools would validate a list by its first element; a body is one JSON object.
        raise InvalidInput("request body must be a JSON object", details={"errors": [
            {"field": "body", "message": "must be a JSON object"}]})


def handler(route_source: Router, *, auth_kind: str | None,
            parse_body: bool = True) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Build the Lambda entry point for one function's routes. parse_body=False leaves the body
    untouched (only its size is checked) for routes that must verify a signature on raw bytes."""
    app = _build_resolver(route_source)

    @logger.inject_lambda_context(clear_state=True)
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        principal_token = _principal.set(None)
        rate_token = _rate.set(None)
        try:
            _precheck(event, parse=parse_body)
            charge = None
            if auth_kind is not None:
                who = auth.authenticate(event.get("headers"), auth_kind)
                _principal.set(who)
                if who.kind in ("internal", "admin"):
                    charge = RateCharge.for_caller(who.kind, who.subject)
                    _rate.set(charge)
            response = app.resolve(event, context)
            if charge is not None and not charge.charged and response.get("statusCode") != 429:
                charge.charge_standalone()
            return response
        except BillingError as exc:
            logger.info("request refused", extra={"code": exc.code, "status": exc.status})
            return _from_error(exc)
        except Exception:
            logger.exception("unhandled error outside the resolver")
            return error_response(500, "INTERNAL_ERROR", "internal error")
        finally:
            observability.flush()
            _principal.reset(principal_token)
            _rate.reset(rate_token)

    lambda_handler.resolver = app  # type: ignore[attr-defined]
    lambda_handler.auth_kind = auth_kind  # type: ignore[attr-defined]
    return lambda_handler


def path_id(value: str, name: str) -> str:
    if not keys.valid_id(value):
        raise InvalidInput(f"{name} is not a valid identifier", code="INVALID_ID")
    return value
