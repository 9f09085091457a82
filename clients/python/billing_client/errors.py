"""Every error the API answers, as a typed exception.

The API's error body is {"error": {"code", "message", "details"}}; `error_for()` picks the class
of the code (CODES), else of the HTTP status, so callers catch what they can act on:

    try:
        ...
    except InsufficientCredit as e:   # 402: e.shortfall_micro, e.top_up_url
    except QuotaExceeded as e:        # 402: e.quota_type, e.current_usage, e.limit, e.requested
    except ReservationExpired:        # 409: the hold was released; reserve again
    except BillingError as e:         # anything else: e.status, e.code, e.message, e.details
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class BillingError(Exception):
    """An error answered by the API (status, code, message, details) or a transport failure."""

    status: int | None
    code: str

    def __init__(self, message: str, *, status: int | None = None, code: str = "ERROR",
                 details: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{code}: {message}" if status is None else f"HTTP {status} {code}: {message}")
        self.message = message
        self.status = status
        self.code = code
        self.details: dict[str, Any] = dict(details or {})
        self.headers: dict[str, str] = dict(headers or {})


class TransportError(BillingError):
    """The request got no answer (connection refused or dropped, timeout) after every retry. For a
    money-moving call the outcome is unknown: call again with the same ids (it is idempotent)."""


# -- by status ---------------------------------------------------------------------------------


class BadRequest(BillingError):
    """400: the request could not be read (malformed JSON, a cursor this API did not issue)."""


class AuthenticationError(BillingError):
    """401: no token, or a token that is invalid, expired or lives too long."""


class PaymentRequired(BillingError):
    """402: credit or a plan's quota is exhausted."""


class PermissionDenied(BillingError):
    """403: a valid token that may not do this (wrong audience, another account or service)."""


class NotFound(BillingError):
    """404."""


class Conflict(BillingError):
    """409: the state does not allow it (already finalized, released, expired, a key reused)."""


class PayloadTooLarge(BillingError):
    """413: a body over 64 KiB."""


class UnsupportedMediaType(BillingError):
    """415: a body that is not application/json."""


class ValidationError(BillingError):
    """422: a value is refused; details.errors lists [{field, message}] for schema errors."""


class RateLimited(BillingError):
    """429 after the retries: wait `retry_after` seconds."""

    @property
    def retry_after(self) -> float | None:
        try:
            return float(self.headers.get("retry-after", ""))
        except ValueError:
            return None


class ServerError(BillingError):
    """5xx after the retries (the API says nothing about its internals)."""


class UpstreamUnavailable(ServerError):
    """502: a payment provider did not answer usefully."""


class Contention(ServerError):
    """503 CONTENTION: other writers kept changing the same items; nothing was applied."""


# -- by code -----------------------------------------------------------------------------------


def _micro(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


class InsufficientCredit(PaymentRequired):
    """402 INSUFFICIENT_CREDIT (live mode): the reservation needs more credit than is available."""

    @property
    def account_id(self) -> str | None:
        return self.details.get("accountId")

    @property
    def pool_id(self) -> str | None:
        return self.details.get("poolId")

    @property
    def available_micro(self) -> int | None:
        return _micro(self.details.get("availableMicro"))

    @property
    def required_micro(self) -> int | None:
        return _micro(self.details.get("requiredMicro", self.details.get("requestedMicro")))

    @property
    def shortfall_micro(self) -> int | None:
        shortfall = _micro(self.details.get("shortfallMicro"))
        if shortfall is None and self.required_micro is not None and self.available_micro is not None:
            shortfall = max(0, self.required_micro - self.available_micro)
        return shortfall

    @property
    def top_up_url(self) -> str | None:
        """Where the account's user can pay (the billing page's top-up, unless configured)."""
        return self.details.get("topUpUrl")


class QuotaExceeded(PaymentRequired):
    """402 QUOTA_EXCEEDED: the org's monthly limit would be crossed (hard limits)."""

    @property
    def quota_type(self) -> str | None:
        return self.details.get("quotaType")

    @property
    def current_usage(self) -> int | None:
        return self.details.get("currentUsage")

    @property
    def limit(self) -> int | None:
        return self.details.get("limit")

    @property
    def requested(self) -> int | None:
        return self.details.get("requested")

    @property
    def billing_status(self) -> str | None:
        return self.details.get("billingStatus")

    @property
    def plan_slug(self) -> str | None:
        return self.details.get("planSlug")

    @property
    def period_start(self) -> str | None:
        return self.details.get("periodStart")

    @property
    def period_end(self) -> str | None:
        return self.details.get("periodEnd")

    @property
    def upgrade_url(self) -> str | None:
        return self.details.get("upgradeUrl")


class BillingCanceled(QuotaExceeded):
    """402 BILLING_CANCELED: the org's billing is canceled; no usage is accepted (limit 0)."""


class CampaignRefused(PaymentRequired):
    """402 from a campaign grant: budget exhausted or the per-account cap reached."""


class ReservationNotFound(NotFound):
    """404 RESERVATION_NOT_FOUND."""


class ReservationExpired(Conflict):
    """409 RESERVATION_EXPIRED: the hold expired before it was finalized; its credit was released."""

    @property
    def reservation_id(self) -> str | None:
        return self.details.get("reservationId")

    @property
    def expires_at(self) -> str | None:
        return self.details.get("expiresAt")


class AlreadyFinalized(Conflict):
    """409 ALREADY_FINALIZED: finalized before, with another amount (details.finalizedMicro)."""


class ReservationReleased(Conflict):
    """409 RESERVATION_RELEASED."""


class IdempotencyConflict(Conflict):
    """409 IDEMPOTENCY_KEY_REUSED: the same id (reservationId, requestId, key) with another request."""


class NotReservationOwner(PermissionDenied):
    """403 NOT_RESERVATION_OWNER: another service made this reservation."""


STATUS: dict[int, type[BillingError]] = {
    400: BadRequest, 401: AuthenticationError, 402: PaymentRequired, 403: PermissionDenied, 404: NotFound,
    409: Conflict, 413: PayloadTooLarge, 415: UnsupportedMediaType, 422: ValidationError, 429: RateLimited,
    502: UpstreamUnavailable, 503: Contention,
}

# Every code the API answers (docs/api.md), by the class a caller catches.
CODES: dict[str, type[BillingError]] = {
    # 400
    "BAD_REQUEST": BadRequest, "INVALID_JSON": BadRequest, "INVALID_CURSOR": BadRequest,
    "INVALID_SIGNATURE": BadRequest, "SIGNATURE_EXPIRED": BadRequest, "INVALID_EVENT": BadRequest,
    "WEBHOOK_NOT_CONFIGURED": BadRequest,
    # 401
    "UNAUTHORIZED": AuthenticationError, "MISSING_TOKEN": AuthenticationError, "INVALID_TOKEN": AuthenticationError,
    "TOKEN_EXPIRED": AuthenticationError, "TOKEN_LIFETIME_EXCEEDED": AuthenticationError,
    # 402
    "PAYMENT_REQUIRED": PaymentRequired, "INSUFFICIENT_CREDIT": InsufficientCredit, "QUOTA_EXCEEDED": QuotaExceeded,
    "BILLING_CANCELED": BillingCanceled, "CAMPAIGN_BUDGET_EXHAUSTED": CampaignRefused,
    "ACCOUNT_CAP_EXCEEDED": CampaignRefused,
    # 403
    "FORBIDDEN": PermissionDenied, "WRONG_AUDIENCE": PermissionDenied, "ACCOUNT_SCOPE": PermissionDenied,
    "NOT_RESERVATION_OWNER": NotReservationOwner,
    # 404
    "NOT_FOUND": NotFound, "ROUTE_NOT_FOUND": NotFound, "RESERVATION_NOT_FOUND": ReservationNotFound,
    "TOPUP_NOT_FOUND": NotFound, "UNKNOWN_ORDER": NotFound, "PLAN_NOT_FOUND": NotFound,
    "CAMPAIGN_NOT_FOUND": NotFound, "WORK_ITEM_NOT_FOUND": NotFound, "NO_RECONCILIATION_YET": NotFound,
    "WEBHOOK_ENDPOINT_NOT_FOUND": NotFound, "ASSET_NOT_FOUND": NotFound,
    # 409
    "CONFLICT": Conflict, "IDEMPOTENCY_KEY_REUSED": IdempotencyConflict, "ALREADY_FINALIZED": AlreadyFinalized,
    "RESERVATION_RELEASED": ReservationReleased, "RESERVATION_EXPIRED": ReservationExpired,
    "INVALID_STATE": Conflict, "CAMPAIGN_EXISTS": Conflict, "CAMPAIGN_NOT_ACTIVE": Conflict,
    "CAMPAIGN_EXPIRED": Conflict, "CAMPAIGN_STATUS_CONFLICT": Conflict, "REFUND_CONFLICT": Conflict,
    "REFUND_EXCEEDS_PAYMENT": Conflict, "NEEDS_MANUAL_REVIEW": Conflict, "WORK_ITEM_SETTLED": Conflict,
    "PLAN_INACTIVE": Conflict, "TOO_MANY_ENDPOINTS": Conflict, "WEBHOOK_ENDPOINT_CHANGED": Conflict,
    # 413, 415
    "PAYLOAD_TOO_LARGE": PayloadTooLarge, "UNSUPPORTED_MEDIA_TYPE": UnsupportedMediaType,
    # 422
    "VALIDATION_ERROR": ValidationError, "SYSTEM_ACCOUNT": ValidationError, "EXPIRY_IN_PAST": ValidationError,
    "REFUND_POOL_MISMATCH": ValidationError,
    "INVALID_TTL": ValidationError, "TOO_MANY_LOTS": ValidationError, "INVALID_ID": ValidationError,
    "INVALID_MODE": ValidationError, "INVALID_ADJUSTMENT": ValidationError, "CEILING_EXCEEDED": ValidationError,
    "INVALID_PROVIDER": ValidationError, "INVALID_REVENUE_SHARES": ValidationError,
    "INVALID_TOPUP_AMOUNT": ValidationError, "INVALID_EVENT_TYPES": ValidationError,
    "WEBHOOK_URL_REFUSED": ValidationError,
    # 429, 5xx
    "RATE_LIMITED": RateLimited, "INTERNAL_ERROR": ServerError, "UPSTREAM_UNAVAILABLE": UpstreamUnavailable,
    "PROVIDER_UNAVAILABLE": UpstreamUnavailable, "CONTENTION": Contention,
}


def error_for(status: int, body: Any, headers: Mapping[str, str] | None = None) -> BillingError:
    """The exception for an error answer (any body: a proxy's HTML page becomes a ServerError)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    given = error.get("code")
    code = str(given or ("INTERNAL_ERROR" if status >= 500 else "ERROR"))
    message = str(error.get("message") or f"HTTP {status}")
    details = error.get("details") if isinstance(error.get("details"), dict) else {}
    cls = (CODES.get(code) if given else None) or STATUS.get(status) or (
        ServerError if status >= 500 else BillingError)
    return cls(message, status=status, code=code, details=details,
               headers={k.lower(): v for k, v in (headers or {}).items()})
