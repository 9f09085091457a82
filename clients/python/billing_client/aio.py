"""The asynchronous client: the same API as BillingClient, awaited.

    async with AsyncBillingClient(url, internal_secret=..., service_id="svc-agents") as client:
        async with client.reservation("acct-42", estimate_micro=250_000) as r:
            await r.finalize(actual_micro=180_000)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

import httpx

from billing_client import _base
from billing_client.client import _SETTLED
from billing_client.errors import BillingError, ReservationExpired
from billing_client.estimate import estimate_tokens
from billing_client.models import Finalized, QuotaCheck, Released, Reservation, UsageRecord


class AsyncBillingClient(_base.Base):
    """See BillingClient: the same calls, retries and errors, on httpx.AsyncClient."""

    def __init__(self, base_url: str, *, http_client: httpx.AsyncClient | None = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, **options: Any) -> None:
        super().__init__(base_url, **options)
        self._own = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=self.timeout)
        self._sleep = sleep

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncBillingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _post(self, path: str, payload: Mapping[str, Any]) -> Any:
        body = self._body(payload)
        attempt = 0
        while True:
            try:
                response = await self._http.post(self.base_url + path, content=body, headers=self._headers(),
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
            await self._sleep(wait)
            attempt += 1

    async def reserve(self, account_id: str, estimate_micro: int, *, pool_id: str = "general",
                      ttl_seconds: int | None = None, reservation_id: str | None = None) -> Reservation:
        rid = reservation_id or _base.new_id("res")
        return Reservation.of(await self._post(_base.RESERVE, {
            "accountId": account_id, "poolId": pool_id, "estimatedCostMicro": _base.micro(estimate_micro, "estimate"),
            "reservationId": rid, "ttlSeconds": ttl_seconds}))

    async def finalize(self, reservation_id: str, actual_micro: int) -> Finalized:
        return Finalized.of(await self._post(_base.FINALIZE, {
            "reservationId": reservation_id, "actualCostMicro": _base.micro(actual_micro, "actual")}))

    async def release(self, reservation_id: str) -> Released:
        return Released.of(await self._post(_base.RELEASE, {"reservationId": reservation_id}))

    def reservation(self, account_id: str, estimate_micro: int, ttl_seconds: int | None = None, *,
                    pool_id: str = "general", reservation_id: str | None = None) -> AsyncReservationContext:
        return AsyncReservationContext(self, account_id, estimate_micro, ttl_seconds, pool_id, reservation_id)

    async def check_quota(self, org_id: str, *, tokens: int | None = None, runs: int | None = None,
                          seats: int | None = None) -> QuotaCheck:
        return QuotaCheck.of(await self._post(_base.CHECK, {"orgId": org_id, "tokens": tokens, "runs": runs,
                                                            "seats": seats}))

    async def record_usage(self, org_id: str, *, tokens: int | None = None, runs: int | None = None,
                           seats: int | None = None, request_id: str | None = None,
                           enforce: bool = True) -> UsageRecord:
        return UsageRecord.of(await self._post(_base.USAGE, {
            "orgId": org_id, "tokens": tokens, "runs": runs, "seats": seats,
            "requestId": request_id or _base.new_id("req"), "enforce": enforce}))

    estimate_tokens = staticmethod(estimate_tokens)


class AsyncReservationContext(_base.ReservationState):
    """The `async with` block of a reservation (see AsyncBillingClient.reservation)."""

    def __init__(self, client: AsyncBillingClient, account_id: str, estimate_micro: int, ttl_seconds: int | None,
                 pool_id: str, reservation_id: str | None) -> None:
        super().__init__(account_id, estimate_micro, ttl_seconds, pool_id, reservation_id)
        self._client = client

    async def finalize(self, actual_micro: int) -> Finalized:
        try:
            self.result = await self._client.finalize(self.reservation_id, actual_micro)
        except ReservationExpired:
            self._expired = True
            raise
        return self.result

    async def release(self) -> Released | None:
        if self.settled:
            return self.released
        try:
            self.released = await self._client.release(self.reservation_id)
        except _SETTLED:
            return None
        return self.released

    async def __aenter__(self) -> AsyncReservationContext:
        account_id, estimate, ttl, pool_id = self._args
        self.reservation = await self._client.reserve(account_id, estimate, pool_id=pool_id, ttl_seconds=ttl,
                                                      reservation_id=self.reservation_id)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self.settled:
            return
        try:
            await self.release()
        except BillingError:
            if exc_type is None:
                raise
