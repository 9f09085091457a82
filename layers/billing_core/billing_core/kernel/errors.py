"""Domain errors. Each class carries a stable code; the HTTP status of each class lives in one
table at the edge (billing_core.api.errors), so the core never speaks HTTP.

Every error a caller sees has the same shape: {"error": {"code", "message", "details"}}.
"""

from __future__ import annotations

from typing import Any


class BillingError(Exception):
    code = "BAD_REQUEST"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details: dict[str, Any] = details or {}


class BadRequest(BillingError):
    """The request cannot be read at all (malformed JSON, a cursor this API did not issue)."""

    code = "BAD_REQUEST"


class InvalidInput(BillingError):
    """The request was read but one of its values is refused."""

    code = "VALIDATION_ERROR"


class Unauthorized(BillingError):
    code = "UNAUTHORIZED"


class Forbidden(BillingError):
    code = "FORBIDDEN"


class NotFound(BillingError):
    code = "NOT_FOUND"


class Conflict(BillingError):
    code = "CONFLICT"


class PaymentRequired(BillingError):
    """Work cannot go ahead until someone pays: credit or a plan's quota is exhausted."""

    code = "PAYMENT_REQUIRED"


class InsufficientCredit(PaymentRequired):
    code = "INSUFFICIENT_CREDIT"


class QuotaExceeded(PaymentRequired):
    """A plan's monthly limit would be crossed (hard limits on). details name the quota."""

    code = "QUOTA_EXCEEDED"


class PayloadTooLarge(BillingError):
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(BillingError):
    code = "UNSUPPORTED_MEDIA_TYPE"


class RateLimited(BillingError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class UpstreamUnavailable(BillingError):
    """A third party this request depends on (a payment provider) did not answer usefully."""

    code = "UPSTREAM_UNAVAILABLE"


class Contention(BillingError):
    """Bounded retries ran out: other writers kept changing the same items, or the table kept
    refusing writes. Nothing was applied; the same request is safe to retry."""

    code = "CONTENTION"


class ConfigurationError(RuntimeError):
    """The function's environment is not usable; raised at cold start, never per request."""
