"""What the ledger is made of, as values: lots, a pool's state, reservations, entries, and the
results its operations return. Pure data; the store maps items to and from these, the edge
serializes the results."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Mode = Literal["shadow", "soft", "live"]
SourceType = Literal["deposit", "grant", "campaign", "admin_mint"]
EntryType = Literal[
    "deposit", "reserve", "finalize", "release", "expire", "refund", "adjustment",
    "revenue_share", "commons_contribution",
    "shadow_reserve", "shadow_finalize", "shadow_release", "shadow_expire",
]
MODES: tuple[str, ...] = get_args(Mode)
SOURCE_TYPES: tuple[str, ...] = get_args(SourceType)
ENTRY_TYPES: tuple[str, ...] = get_args(EntryType)
RESERVATION_STATUSES = ("pending", "finalized", "released", "expired")

# Basis points of each finalized (consumed) amount credited to the system accounts.
DEFAULT_REVENUE_SHARES: dict[str, int] = {
    "sys-foundation": 1000,
    "sys-commons": 500,
    "sys-community-pool": 250,
}

DEFAULT_POOL = "general"  # where top-ups land, and any request that names no pool

DEFAULT_PRICING: dict[str, Any] = {
    "pools": [
        {"poolId": DEFAULT_POOL, "description": "Default pool; spendable on every metered resource"},
    ],
    "rates": [
        {"resource": "llm.input_tokens", "unit": "1k_tokens", "priceMicro": "3000"},
        {"resource": "llm.output_tokens", "unit": "1k_tokens", "priceMicro": "15000"},
        {"resource": "agent.run", "unit": "run", "priceMicro": "20000"},
        {"resource": "api.request", "unit": "request", "priceMicro": "100"},
    ],
    "tiers": [
        {"name": "standard", "minMonthlySpendMicro": "0", "discountBps": 0},
        {"name": "volume", "minMonthlySpendMicro": "500000000", "discountBps": 500},
        {"name": "scale", "minMonthlySpendMicro": "5000000000", "discountBps": 1000},
    ],
}


@dataclass(frozen=True)
class BillingConfig:
    """Mode, revenue shares and pricing: one DynamoDB item; these defaults until it exists."""

    mode: str
    revenue_shares: dict[str, int]
    pricing: dict[str, Any]
    updated_at: str | None = None

    @staticmethod
    def defaults() -> BillingConfig:
        return BillingConfig("shadow", dict(DEFAULT_REVENUE_SHARES), copy.deepcopy(DEFAULT_PRICING))


@dataclass(frozen=True)
class Lot:
    """One credit: original = available + reserved + consumed, each >= 0."""

    account_id: str
    pool_id: str
    lot_id: str
    sk: str  # its place in the pool's draw-down order
    original: int
    available: int
    reserved: int
    consumed: int
    source_type: str
    description: str
    expires_at: str | None
    created_at: str

    def drawable(self, now_iso: str) -> int:
        """Credit that can still be reserved: none once the lot has expired."""
        if self.expires_at is not None and self.expires_at <= now_iso:
            return 0
        return self.available

    def live(self, now_iso: str) -> bool:
        return self.expires_at is None or self.expires_at > now_iso


@dataclass(frozen=True)
class PoolSnapshot:
    """One strongly consistent read of an account's pool: its lots in draw order, its debt
    (soft-mode consumption the lots did not cover), its unbacked holds (the part of pending
    soft-mode reservations the lots could not back) and its seq (bumped by every new lot and
    every exact balance change, so an exact change computed from this read cannot commit after
    another)."""

    lots: list[Lot]
    debt: int = 0
    unbacked: int = 0
    seq: int = 0

    def drawable(self, now_iso: str) -> int:
        return sum(lot.drawable(now_iso) for lot in self.lots)

    def available(self, now_iso: str) -> int:
        """What the account can still spend: negative when it owes or holds more than it has."""
        return self.drawable(now_iso) - self.debt - self.unbacked


@dataclass(frozen=True)
class Allocation:
    sk: str
    lot_id: str
    amount: int


@dataclass(frozen=True)
class Reservation:
    reservation_id: str
    account_id: str
    pool_id: str
    service_id: str
    status: str
    mode: str
    estimate: int
    backed: int
    allocations: tuple[Allocation, ...]
    revenue_shares: dict[str, int]
    expires_at: str
    expires_at_epoch: int
    request_hash: str
    created_at: str
    # set by the transition out of pending
    actual: int | None = None
    finalized: int | None = None
    released: int | None = None
    overrun: int | None = None
    settled_at: str | None = None

    @property
    def unbacked(self) -> int:
        """The part of a soft reservation the lots could not back (held against the pool)."""
        return self.estimate - self.backed if self.mode == "soft" else 0


@dataclass(frozen=True)
class Entry:
    """One line of the append-only ledger."""

    account_id: str
    pool_id: str
    entry_type: str
    amount: int
    entry_id: str
    created_at: str
    actor: str
    description: str
    reservation_id: str | None = None
    lot_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    revenue_shares: dict[str, dict[str, int]] | None = None  # finalize: system account -> bps, amount


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reserved:
    reservation_id: str
    reserved_micro: int
    expires_at: str
    billing_mode: str


@dataclass(frozen=True)
class Finalized:
    reservation_id: str
    finalized_micro: int
    released_micro: int
    overrun_micro: int
    billing_mode: str
    finalized_at: str


@dataclass(frozen=True)
class Released:
    reservation_id: str
    released_micro: int
    billing_mode: str
    released_at: str
    status: str = "released"


@dataclass(frozen=True)
class Minted:
    """A new lot, as the mint (or a grant, or a deposit) left it."""

    lot_id: str
    account_id: str
    pool_id: str
    original_micro: int
    available_micro: int
    reserved_micro: int
    consumed_micro: int
    source_type: str
    description: str
    expires_at: str | None
    created_at: str
    settled_debt_micro: int


@dataclass(frozen=True)
class BalanceChanged:
    account_id: str
    pool_id: str
    previous_balance_micro: int
    new_balance_micro: int
    delta_micro: int
    reason: str
    entry_id: str
    entry_type: str
    lifetime_paid_micro: int
    created_at: str
    refunded_micro: int | None = None  # refunds
    order_id: str | None = None  # refunds counted against a top-up


@dataclass(frozen=True)
class PoolBalance:
    pool_id: str
    available_micro: int
    reserved_micro: int
    consumed_micro: int
    expired_micro: int
    debt_micro: int


@dataclass(frozen=True)
class Balance:
    account_id: str
    pools: list[PoolBalance]
    total_available_micro: int
    lifetime_paid_micro: int | None = None  # operators' view only
    lifetime_refunded_micro: int | None = None


@dataclass(frozen=True)
class HistoryPage:
    entries: list[Entry]
    next_start: dict[str, Any] | None  # the key to continue from; the edge turns it into a cursor
