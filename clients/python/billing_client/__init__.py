"""billing_client: the Python client of the credit-billing API.

    from billing_client import BillingClient, InsufficientCredit

    client = BillingClient("http://127.0.0.1:3000", internal_secret=SECRET, service_id="svc-agents")
    with client.reservation("acct-42", estimate_micro=250_000) as r:
        r.finalize(actual_micro=180_000)
"""

from billing_client.aio import AsyncBillingClient, AsyncReservationContext
from billing_client.client import BillingClient, ReservationContext
from billing_client.errors import (
    CODES,
    AlreadyFinalized,
    AuthenticationError,
    BadRequest,
    BillingCanceled,
    BillingError,
    CampaignRefused,
    Conflict,
    Contention,
    IdempotencyConflict,
    InsufficientCredit,
    NotFound,
    NotReservationOwner,
    PayloadTooLarge,
    PaymentRequired,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    ReservationExpired,
    ReservationNotFound,
    ReservationReleased,
    ServerError,
    TransportError,
    UnsupportedMediaType,
    UpstreamUnavailable,
    ValidationError,
    error_for,
)
from billing_client.estimate import estimate_tokens, prompt_tokens
from billing_client.models import Finalized, QuotaCheck, QuotaCounts, Released, Reservation, UsageRecord
from billing_client.tokens import InternalTokens

__version__ = "0.1.0"

__all__ = [
    "CODES", "AlreadyFinalized", "AsyncBillingClient", "AsyncReservationContext", "AuthenticationError",
    "BadRequest", "BillingCanceled", "BillingClient", "BillingError", "CampaignRefused", "Conflict", "Contention",
    "Finalized", "IdempotencyConflict", "InsufficientCredit", "InternalTokens", "NotFound", "NotReservationOwner",
    "PayloadTooLarge", "PaymentRequired", "PermissionDenied", "QuotaCheck", "QuotaCounts", "QuotaExceeded",
    "RateLimited", "Released", "Reservation", "ReservationContext", "ReservationExpired", "ReservationNotFound",
    "ReservationReleased", "ServerError", "TransportError", "UnsupportedMediaType", "UpstreamUnavailable",
    "UsageRecord", "ValidationError", "__version__", "error_for", "estimate_tokens", "prompt_tokens",
]
