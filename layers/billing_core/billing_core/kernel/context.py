"""Who is asking, and the request's rate charge: the one explicit context every core operation
that writes takes, instead of separate actor / caller / rate parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billing_core.store.ratelimit import RateCharge


@dataclass(frozen=True)
class Caller:
    """internal (a service id), admin, user (an account id), webhook (a provider) or system (a job)."""

    kind: str
    subject: str

    @property
    def actor(self) -> str:
        """How the ledger and audit items name who did it."""
        return self.subject if self.kind == "system" else f"{self.kind}:{self.subject}"


@dataclass(frozen=True)
class Context:
    caller: Caller
    rate: RateCharge | None = None  # the caller's per-minute counter; None for jobs and webhooks

    @property
    def actor(self) -> str:
        return self.caller.actor

    @staticmethod
    def system(job: str) -> Context:
        return Context(Caller("system", job))

    @staticmethod
    def webhook(provider: str) -> Context:
        return Context(Caller("webhook", provider))
