"""Outbound events and webhook endpoints, as values."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

EventType = Literal["topup.credited", "balance.low", "quota.threshold", "reservation.expired", "work.parked"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
EndpointStatus = Literal["enabled", "disabled"]
QUOTA_THRESHOLDS = (80, 100)  # percent of a quota's limit
MAX_ENDPOINTS = 50  # every endpoint lives in one partition and the dispatcher reads them all


@dataclass(frozen=True)
class Endpoint:
    """A registered receiver. The signing secrets are kept apart from what is ever shown."""

    endpoint_id: str
    url: str
    events: tuple[str, ...]
    description: str | None
    status: str
    created_at: str
    updated_at: str
    created_by: str
    secret_rotated_at: str | None = None
    previous_secret_expires_at: str | None = None
    secret: str = field(default="", repr=False)
    previous_secret: str | None = field(default=None, repr=False)

    def wants(self, event_type: str) -> bool:
        return self.status == "enabled" and event_type in self.events

    def signing_secrets(self, now_iso: str) -> list[str]:
        """The current secret, and the previous one during its grace period after a rotation (the
        receiver may still hold it): the signature header then carries one signature for each."""
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and now_iso < self.previous_secret_expires_at:
            secrets.append(self.previous_secret)
        return secrets


@dataclass(frozen=True)
class EndpointSecret:
    """The answer to create and rotate: the only time the secret is shown."""

    endpoint_id: str
    secret: str
    url: str
    events: tuple[str, ...]
    status: str
    description: str | None = None
    previous_secret_expires_at: str | None = None


@dataclass(frozen=True)
class EndpointDeleted:
    endpoint_id: str
    deleted: bool


@dataclass(frozen=True)
class BalanceAlert:
    """An account's low-balance threshold (its own, or the configured default)."""

    account_id: str
    low_balance_micro: int
    source: str  # account | default


@dataclass(frozen=True)
class Event:
    """One event. `event_id` is derived from what happened (never random), so the same change seen
    twice is the same event: it is the `webhook-id` of every delivery and retry."""

    event_id: str
    type: str
    timestamp: str
    data: dict[str, Any]

    def body(self) -> str:
        """The exact bytes signed and sent, the same on every retry."""
        return json.dumps({"type": self.type, "timestamp": self.timestamp, "data": self.data},
                          separators=(",", ":"))
