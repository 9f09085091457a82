"""What the sync and async clients share: configuration, requests, the retry policy, answers."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from billing_client.errors import BillingError, TransportError, error_for
from billing_client.models import Finalized, Released, Reservation
from billing_client.tokens import DEFAULT_AUDIENCE, DEFAULT_ISSUER, InternalTokens, TokenProvider

USER_AGENT = "billing-client/0.1"
RESERVE = "/api/internal/billing/reserve"
FINALIZE = "/api/internal/billing/finalize"
RELEASE = "/api/internal/billing/release"
CHECK = "/api/v1/billing/org/check"
USAGE = "/api/v1/billing/org/usage"

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# No answer at all: the request may or may not have been applied; the same ids make a retry safe.
RETRY_EXCEPTIONS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def micro(value: int, name: str) -> str:
    """Amounts go out as decimal strings of whole micro-units."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int of micro-units")
    return str(value)


@dataclass(frozen=True)
class Policy:
    """Retries: at most `max_retries` after the first attempt, full-jitter exponential backoff
    (base * 2^n, capped), a 429's Retry-After honoured up to `max_retry_after` seconds."""

    max_retries: int = 4
    backoff_base: float = 0.2
    backoff_max: float = 5.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before attempt + 1, or None: do not retry."""
        if attempt >= self.max_retries:
            return None
        if response is not None and response.status_code == 429:
            try:
                wait = float(response.headers.get("retry-after", ""))
            except ValueError:
                wait = self.backoff_max
            return None if wait > self.max_retry_after else max(0.0, wait)
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))  # noqa: S311 - jitter


def token_source(internal_secret: str | None, service_id: str | None, token_provider: TokenProvider | None,
                 issuer: str, audience: str) -> TokenProvider:
    if token_provider is not None:
        return token_provider
    if not internal_secret or not service_id:
        raise ValueError("give internal_secret and service_id, or a token_provider")
    return InternalTokens(internal_secret, service_id, issuer=issuer, audience=audience)


class Base:
    def __init__(self, base_url: str, *, internal_secret: str | None = None, service_id: str | None = None,
                 token_provider: TokenProvider | None = None, timeout: float = 10.0, max_retries: int = 4,
                 backoff_base: float = 0.2, backoff_max: float = 5.0, max_retry_after: float = 60.0,
                 issuer: str = DEFAULT_ISSUER, audience: str = DEFAULT_AUDIENCE) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.policy = Policy(max_retries, backoff_base, backoff_max, max_retry_after)
        self._tokens = token_source(internal_secret, service_id, token_provider, issuer, audience)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._tokens()}", "Content-Type": "application/json",
                "Accept": "application/json", "User-Agent": USER_AGENT}

    @staticmethod
    def _body(payload: Mapping[str, Any]) -> bytes:
        return json.dumps({k: v for k, v in payload.items() if v is not None}, separators=(",", ":")).encode()

    @staticmethod
    def _answer(response: httpx.Response) -> Any:
        """The JSON of a 2xx, or the typed error of anything else."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if 200 <= response.status_code < 300:
            if not isinstance(body, dict):
                raise BillingError("the API answered something that is not a JSON object",
                                   status=response.status_code, code="INVALID_RESPONSE")
            return body
        raise error_for(response.status_code, body, response.headers)

    @staticmethod
    def _gave_up(exc: Exception) -> TransportError:
        return TransportError(f"no answer after retries ({type(exc).__name__}: {exc}); the same call with the "
                              "same ids is safe to repeat", code="TRANSPORT_ERROR")

    @staticmethod
    def _retryable(response: httpx.Response) -> bool:
        return response.status_code in RETRY_STATUSES


Sleep = Callable[[float], Any]


class ReservationState:
    """What a reservation block knows, sync or async: its client-made id (made before the first
    attempt, so every retry sends the same one), the reservation, and how it was settled."""

    def __init__(self, account_id: str, estimate_micro: int, ttl_seconds: int | None, pool_id: str,
                 reservation_id: str | None) -> None:
        self._args = (account_id, estimate_micro, ttl_seconds, pool_id)
        self.reservation_id = reservation_id or new_id("res")
        self.reservation: Reservation | None = None
        self.result: Finalized | None = None
        self.released: Released | None = None
        self._expired = False

    @property
    def reserved_micro(self) -> int:
        assert self.reservation is not None
        return self.reservation.reserved_micro

    @property
    def expires_at(self) -> str:
        assert self.reservation is not None
        return self.reservation.expires_at

    @property
    def billing_mode(self) -> str:
        assert self.reservation is not None
        return self.reservation.billing_mode

    @property
    def settled(self) -> bool:
        """Finalized, released, or found expired (its credit went back by itself)."""
        return self.result is not None or self.released is not None or self._expired
