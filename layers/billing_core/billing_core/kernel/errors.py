"""Domain errors. Each carries a stable code and the HTTP status a handler maps it to.

The core raises these; handlers never build error bodies themselves, so every error a caller
sees has the same shape: {"error": {"code", "message", "details"}}.
"""

from __future__ import annotations

from typing import Any


class BillingError(Exception):
    status = 400
    code = "BAD_REQUEST"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}


class InvalidInput(BillingError):
    status = 422
    code = "VALIDATION_ERROR"


class Unauthorized(BillingError):
    status = 401
    code = "UNAUTHORIZED"


class Forbidden(BillingError):
    status = 403
    code = "FORBIDDEN"


class NotFound(BillingError):
    status = 404
    code = "NOT_FOUND"


class Conflict(BillingError):
    status = 409
    code = "CONFLICT"


class InsufficientCredit(BillingError):
    status = 402
    code = "INSUFFICIENT_CREDIT"


class QuotaExceeded(BillingError):
    """A plan's monthly limit would be crossed (hard limits on). details name the quota."""

    status = 402
    code = "QUOTA_EXCEEDED"


class PayloadTooLarge(BillingError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class RateLimited(BillingError):
    status = 429
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int, details: dict[str, Any] | None = None):
        super().__init__(message, details=details)
        self.retry_after = retry_after


class Contention(BillingError):
    """Optimistic retries ran out: other writers kept changing the same items. Safe to retry."""

    status = 503
    code = "CONTENTION"
