"""The synchronous client.

    client = BillingClient("https://billing.example.com/v1", internal_secret=..., service_id="svc-agents")
    with client.reservation("acct-42", estimate_micro=250_000) as r:
        answer = call_the_llm()
        r.finalize(actual_micro=cost_of(answer))
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from billing_client import _base
from billing_client.errors import (
    AlreadyFinalized,
    BillingError,
    ReservationExpired,
    ReservationNotFound,
    ReservationReleased,
)
from billing_client.estimate import estimate_tokens
from billing_client.models import Finalized, QuotaCheck, Released, Reservation, UsageRecord

# A release on the way out of a `with` block finds the reservation already settled: not an error.
_SETTLED = (AlreadyFinalized, ReservationReleased, ReservationExpired, ReservationNotFound)


class BillingClient(_base.Base):
    """Reservations and quotas of the credit-billing API, with typed results and errors.

    Every call is retried on connection errors, timeouts, 5xx and 429 (after its Retry-After), with
    exponential backoff and the same ids (reservation id, request id), so an answer lost after the
    write never moves money twice. `http_client` lets you bring your own httpx.Client (proxies,
    transports); it is closed by close() only if the client made it.
    """

    def __init__(self, base_url: str, *, http_client: httpx.Client | None = None,
                 sleep: _base.Sleep = time.sleep, **options: Any) -> None:
        super().__init__(base_url, **options)
        self._own = http_client is None
        self._http = http_client or httpx.Client(timeout=self.timeout)
        self._sleep = sleep

    def close(self) -> None:
        if self._own:
            self._http.close()

    def __enter__(self) -> BillingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, path: str, payload: Mapping[str, Any]) -> Any:
        body = self._body(payload)  # built once: every retry sends exactly these bytes
        attempt = 0
        while True:
            try:
                response = self._http.post(self.base_url + path, content=body, headers=self._headers(),
                                           timeout=self.timeout)
            except _base.RETRY_EXCEPTIONS as exc:
                wait = self.policy.delay(attempt, None)
                if wait is None:
                    raise self._gave_up(exc) from exc
            else:
                if not self._retryable(response):
                    return self._answer(response)
                wait = self.policy.delay(attempt, response)
                if wait is None:
                    return self._answer(response)
            self._sleep(wait)
            attempt += 1

    # -- reservations ---------------------------------------------------------------------------

    def reserve(self, account_id: str, estimate_micro: int, *, pool_id: str = "general",
                ttl_seconds: int | None = None, reservation_id: str | None = None) -> Reservation:
        """Hold `estimate_micro` of the account's credit. The reservation id is generated here when
        not given, before the first attempt, so retries are the same reservation."""
        rid = reservation_id or _base.new_id("res")
        return Reservation.of(self._post(_base.RESERVE, {
            "accountId": account_id, "poolId": pool_id, "estimatedCostMicro": _base.micro(estimate_micro, "estimate"),
            "reservationId": rid, "ttlSeconds": ttl_seconds}))

    def finalize(self, reservation_id: str, actual_micro: int) -> Finalized:
        """Charge the actual cost; the rest goes back. Idempotent for the same amount."""
        return Finalized.of(self._post(_base.FINALIZE, {
            "reservationId": reservation_id, "actualCostMicro": _base.micro(actual_micro, "actual")}))

    def release(self, reservation_id: str) -> Released:
        return Released.of(self._post(_base.RELEASE, {"reservationId": reservation_id}))

    def reservation(self, account_id: str, estimate_micro: int, ttl_seconds: int | None = None, *,
                    pool_id: str = "general", reservation_id: str | None = None) -> ReservationContext:
        """`with client.reservation(...) as r:` reserves on entry; `r.finalize(actual)` charges;
        leaving the block with an exception, or without finalizing, releases."""
        return ReservationContext(self, account_id, estimate_micro, ttl_seconds, pool_id, reservation_id)

    # -- quotas ---------------------------------------------------------------------------------

    def check_quota(self, org_id: str, *, tokens: int | None = None, runs: int | None = None,
                    seats: int | None = None) -> QuotaCheck:
        """Would this usage be accepted now? Raises QuotaExceeded (hard limits) when not."""
        return QuotaCheck.of(self._post(_base.CHECK, {"orgId": org_id, "tokens": tokens, "runs": runs,
                                                      "seats": seats}))

    def record_usage(self, org_id: str, *, tokens: int | None = None, runs: int | None = None,
                     seats: int | None = None, request_id: str | None = None,
                     enforce: bool = True) -> UsageRecord:
        """Record usage atomically against the org's limits. A request id is generated when not
        given, so a retry is never counted twice; pass your own to make your retries safe too."""
        return UsageRecord.of(self._post(_base.USAGE, {
            "orgId": org_id, "tokens": tokens, "runs": runs, "seats": seats,
            "requestId": request_id or _base.new_id("req"), "enforce": enforce}))

    estimate_tokens = staticmethod(estimate_tokens)


class ReservationContext(_base.ReservationState):
    """The `with` block of a reservation (see BillingClient.reservation)."""

    def __init__(self, client: BillingClient, account_id: str, estimate_micro: int, ttl_seconds: int | None,
                 pool_id: str, reservation_id: str | None) -> None:
        super().__init__(account_id, estimate_micro, ttl_seconds, pool_id, reservation_id)
        self._client = client

    def finalize(self, actual_micro: int) -> Finalized:
        """Charge `actual_micro`. ReservationExpired when the hold ran out first (nothing charged)."""
        try:
            self.result = self._client.finalize(self.reservation_id, actual_micro)
        except ReservationExpired:
            self._expired = True
            raise
        return self.result

    def release(self) -> Released | None:
        """Give the whole hold back now (also what leaving the block unfinalized does)."""
        if self.settled:
            return self.released
        try:
            self.released = self._client.release(self.reservation_id)
        except _SETTLED:
            return None
        return self.released

    def __enter__(self) -> ReservationContext:
        account_id, estimate, ttl, pool_id = self._args
        self.reservation = self._client.reserve(account_id, estimate, pool_id=pool_id, ttl_seconds=ttl,
                                                reservation_id=self.reservation_id)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.settled:
            return
        try:
            self.release()
        except BillingError:
            if exc_type is None:
                raise
            # The block's own exception is the one to see; the hold expires by itself anyway.
