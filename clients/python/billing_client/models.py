"""What the API answers, as typed values (amounts are ints of micro-units: 1 USD = 1,000,000)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _int(value: Any) -> int:
    return int(str(value))


@dataclass(frozen=True)
class Reservation:
    reservation_id: str
    reserved_micro: int
    expires_at: str
    billing_mode: str

    @staticmethod
    def of(body: Mapping[str, Any]) -> Reservation:
        return Reservation(body["reservationId"], _int(body["reservedMicro"]), body["expiresAt"], body["billingMode"])


@dataclass(frozen=True)
class Finalized:
    reservation_id: str
    finalized_micro: int
    released_micro: int
    overrun_micro: int
    billing_mode: str
    finalized_at: str

    @staticmethod
    def of(body: Mapping[str, Any]) -> Finalized:
        return Finalized(body["reservationId"], _int(body["finalizedMicro"]), _int(body["releasedMicro"]),
                         _int(body["overrunMicro"]), body["billingMode"], body["finalizedAt"])


@dataclass(frozen=True)
class Released:
    reservation_id: str
    released_micro: int
    billing_mode: str
    released_at: str

    @staticmethod
    def of(body: Mapping[str, Any]) -> Released:
        return Released(body["reservationId"], _int(body["releasedMicro"]), body["billingMode"], body["releasedAt"])


@dataclass(frozen=True)
class QuotaCounts:
    tokens: int
    runs: int
    seats: int

    @staticmethod
    def of(body: Mapping[str, Any] | None) -> QuotaCounts:
        body = body or {}
        return QuotaCounts(int(body.get("tokens", 0)), int(body.get("runs", 0)), int(body.get("seats", 0)))


@dataclass(frozen=True)
class QuotaCheck:
    """Would this usage be accepted now (advisory: nothing is held)."""

    org_id: str
    plan_slug: str
    billing_status: str
    period: str
    period_start: str
    period_end: str
    allowed: bool
    over_limit: bool
    enforcement: str
    requested: QuotaCounts
    usage: QuotaCounts
    limits: QuotaCounts
    remaining: QuotaCounts

    @staticmethod
    def of(body: Mapping[str, Any]) -> QuotaCheck:
        return QuotaCheck(body["orgId"], body["planSlug"], body["billingStatus"], body["period"], body["periodStart"],
                          body["periodEnd"], bool(body["allowed"]), bool(body["overLimit"]), body["enforcement"],
                          QuotaCounts.of(body.get("requested")), QuotaCounts.of(body.get("usage")),
                          QuotaCounts.of(body.get("limits")), QuotaCounts.of(body.get("remaining")))


@dataclass(frozen=True)
class UsageRecord:
    """Usage recorded against the org's monthly counters."""

    org_id: str
    plan_slug: str
    billing_status: str
    period: str
    period_start: str
    period_end: str
    allowed: bool
    recorded: bool
    over_limit: bool
    enforcement: str
    requested: QuotaCounts
    request_id: str | None
    recorded_at: str

    @staticmethod
    def of(body: Mapping[str, Any]) -> UsageRecord:
        return UsageRecord(body["orgId"], body["planSlug"], body["billingStatus"], body["period"],
                           body["periodStart"], body["periodEnd"], bool(body["allowed"]), bool(body["recorded"]),
                           bool(body["overLimit"]), body["enforcement"], QuotaCounts.of(body.get("requested")),
                           body.get("requestId"), body["recordedAt"])
