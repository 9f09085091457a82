"""The one table from the core's error classes to HTTP statuses, and the one error body.

Every error a caller sees is {"error": {"code", "message", "details"}}; the code is the error's
own (stable), the status comes from the nearest class in this table.
"""

from __future__ import annotations

import json
from typing import Any

from billing_core.kernel import errors

STATUS: dict[type[errors.BillingError], int] = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.PaymentRequired: 402,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.InvalidInput: 422,
    errors.RateLimited: 429,
    errors.UpstreamUnavailable: 502,
    errors.Contention: 503,
    errors.BillingError: 400,
}

JSON_TYPE = "application/json"


def status_for(kind: type[errors.BillingError]) -> int:
    """The status of an error class: its nearest ancestor's in STATUS."""
    for cls in kind.__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def status_of(exc: errors.BillingError) -> int:
    return status_for(type(exc))


def body(code: str, message: str, details: dict[str, Any] | None = None) -> str:
    return json.dumps({"error": {"code": code, "message": message, "details": details or {}}})


def headers_of(exc: errors.BillingError) -> dict[str, str]:
    return {"Retry-After": str(exc.retry_after)} if isinstance(exc, errors.RateLimited) else {}


def proxy(status: int, code: str, message: str, details: dict[str, Any] | None = None,
          headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A finished API Gateway proxy response (errors raised outside the resolver)."""
    return {"statusCode": status, "headers": {"Content-Type": JSON_TYPE, **(headers or {})},
            "body": body(code, message, details), "isBase64Encoded": False}


def of(exc: errors.BillingError) -> dict[str, Any]:
    return proxy(status_of(exc), exc.code, exc.message, exc.details, headers_of(exc))
