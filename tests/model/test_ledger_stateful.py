"""Model-based test of the credit ledger core: the paths that move money.

A hypothesis state machine drives billing_core directly (no HTTP: the core functions the
handlers call) against a fresh, patched, in-process moto per example and compares every step with
a small model written from the documented semantics (DESIGN.md, API.md, docs/), not from the
core's helpers. The paths: mode switches; mint (keyed/unkeyed, settling debt); reserve, finalize,
release; expiry on the spot and per reservation (reservations.expire with the item as read now or
a stale copy); balance adjustments (adjustments.adjust: set, set to the current balance, credit,
debit, debit past zero into debt, keyed replay and key reuse, a zero delta refused); operator
refunds (refunds.refund: without a top-up, and counted against one: over what it credited and has
not refunded, another account's top-up, keyed replay also once the top-up is used up, key reuse);
top-ups (topups.create) and their provider events, already normalized (events.apply_event with a
PaymentEvent, no provider JSON or signatures): in-progress states, failed/expired, paid (credited
once), paid with another amount (NEEDS_MANUAL_REVIEW), out of order, redelivered; campaigns
(budget.create with replay and CAMPAIGN_EXISTS, pause/resume) and their grants (grants.grant:
budget, per-account cap, not active, grants expired, keyed replay and key reuse). Not covered:
provider refund events, the provider parsing and signatures, the batch sweeper (sweeper.sweep).
The model keeps:

* lots: original / available / reserved / consumed, source type, expiry and creation order
  (draw-down is earliest expiry first, then oldest, non-expiring last; expired lots are not
  drawable), whoever created them (mint, top-up credit, campaign grant, credit adjustment);
* per account and pool, soft mode's shortfall: debt (consumption the lots did not cover, settled
  by the next new lot; debits past the lots also become debt) and unbacked holds (the part of
  pending soft reservations no lot backs; both count against availability, the holds also as
  reserved); the ledger entries, by type and amount;
* reservations: request, mode, status, allocations and the original responses (idempotency);
* revenue shares: floor(bps * finalized / 10,000) per system account for each soft/live finalize,
  carried by the finalize entry (`revenueShares`);
* keyed adjustments, refunds and grants with the answers they got;
* top-ups: status and rank, credited and refunded, lot, the provider events recorded and their
  outcome; per account, lifetime paid (provider credits only) and lifetime refunded;
* campaigns: budget, granted, remaining, grant count, status, and per account granted / capLeft.

Each step's answer is compared with the model's (balance changes also with the entry they wrote:
amount, direction, previous/new balance, settled debt or the part that went to debt). After every
step the raw tables must match the model (every lot conserves its original and has nothing
negative, total minted = sum of originals, source types, debt and holds, reservation statuses and
allocations, every ledger entry by account, pool, type and amount, the revenue-share entries,
payment and provider-event items, lifetime totals, campaign and grantee items), and the raw tables
must also balance on their own, pool by pool, as a reconciler would have them: originals =
deposits + credit adjustments, each lot's original the amount of the entry that created it;
consumed + debt = soft/live finalizes + refunds + debit adjustments; reserved + unbacked = the
estimates of pending soft/live reservations; per campaign, its grants' entries add up to granted.
So must balances.balance (balances.operator_balance, with the lifetime totals, when they moved)
and every page of entries.history of the accounts the step touched (every page but the last full
and with a cursor).

Time. billing_core.kernel.clock adds its offset (clock.advance) to time.time(). For exact, repeatable
expiry decisions the machine swaps the `time` that clock reads for a stand-in that starts at a
whole second + 0.5 and moves 10 microseconds per call. Every advance is a multiple of 1/8 s, so
the clock is always a point of a 1/8 s grid plus a drift that only grows and stays far below 1/8 s.
Deadlines (lot and campaign expiries the machine picks, a reservation's expiresAt in whole seconds)
are grid points, so whether one has passed never depends on how many calls a step happened to make.

Runtime (about 65-80 s for the defaults on one core, more on a busy machine; mostly moto serializing
responses; 60 examples on DynamoDB Local take about 40 s): each
example gets a fresh moto, DynamoDB client and tables, but the SAM template is parsed once, boto3's
default session is kept across examples, and the config item is cached in-process as production
does (set_mode invalidates it). A failing run also spends up to hypothesis' 5 minutes shrinking.
LEDGER_MODEL_EXAMPLES / LEDGER_MODEL_STEPS override the defaults for a longer local search. The
settings below are database-less; everything they leave unset comes from hypothesis' active
profile. Locally that is "default" (a new random search every run). In CI, hypothesis itself
loads its built-in "ci" profile whenever the CI environment variable is set (as CI services do),
and that profile is derandomized: every CI run replays the same examples (hypothesis reads no
HYPOTHESIS_PROFILE variable; pytest's --hypothesis-profile would choose another profile).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = (ROOT / "template.yaml").resolve()

ACCOUNTS = ("acct-a", "acct-b")
POOLS = ("general", "gpu")
SERVICES = ("svc-a", "svc-b")
MODES = ("shadow", "soft", "live")
SOURCE_TYPES = ("deposit", "grant", "campaign", "admin_mint")
# The documented revenue shares: basis points of each finalized amount, and their entry types.
SHARES = {"sys-foundation": 1000, "sys-commons": 500, "sys-community-pool": 250}
DEFAULT_TTL = 300
TTLS = (None, 1, 30, 300, 600, 86_400)
LOT_EXPIRIES = (None, None, 1, 30, 120, 300, 1_000, 90_000)  # whole seconds after the current second
ADVANCES = (0.125, 0.25, 1, 1, 29.875, 30, 60, 60, 119.75, 299.875, 300, 300.25, 600, 3_600, 86_400)
NEAR = (-1, -0.375, -0.125, 0, 0.125, 0.5)  # where to land around a deadline (multiples of 1/8 s)
TICK = 1e-5
ADMIN = ("admin", "ops-model")

# Top-ups (docs/api.md): whole cents, at least 1 USD; the payment state machine's ranks (docs/api.md,
# runbook 7.3): an event applies only if it raises the record's rank; refunds are judged apart.
USD = 1_000_000
CENT = 10_000
TOPUP_AMOUNTS = (USD, USD + 25 * CENT, 3 * USD)
PROVIDERS = ("nowpayments", "stripe")
RANKS = {"pending": 0, "waiting": 10, "confirming": 20, "confirmed": 30, "processing": 30, "sending": 40,
         "partially_paid": 50, "failed": 90, "expired": 90, "finished": 100, "completed": 100,
         "partially_refunded": 105, "refunded": 110}
PAID = ("finished", "completed")
CAMPAIGN_EXPIRIES = (None, None, 30, 300, 90_000)  # grantExpiresAt: whole seconds after the current second

EXAMPLES = int(os.environ.get("LEDGER_MODEL_EXAMPLES", "180"))
STEPS = int(os.environ.get("LEDGER_MODEL_STEPS", "25"))


class SteppingTime:
    """What billing_core.kernel.clock calls `time` during an example: a clock that never stands still
    (distinct createdAt values, in call order) and never moves by more than TICK per call."""

    def __init__(self, start: float) -> None:
        self.value = start

    def time(self) -> float:
        self.value += TICK
        return self.value


@dataclass
class MLot:
    lot_id: str
    seq: int  # mint order
    original: int
    available: int
    reserved: int
    consumed: int
    expires: float | None
    source: str  # sourceType: a mint's, "deposit" (top-up), "campaign" (grant), "adjustment"

    def draw_order(self) -> tuple[bool, float, int]:
        return (self.expires is None, self.expires or 0.0, self.seq)


@dataclass
class MRes:
    rid: str
    request: tuple[str, str, int, int | None, str]  # account, pool, estimate, ttlSeconds as sent, service
    mode: str
    expires: float
    allocations: list[tuple[str, int]]  # (lotId, amount) in draw order
    response: dict[str, Any]
    snapshot: dict[str, Any]  # the item as written by reserve (for a stale sweeper)
    status: str = "pending"
    actual: int | None = None
    finalize_response: dict[str, Any] | None = None
    release_response: dict[str, Any] | None = None

    @property
    def account(self) -> str:
        return self.request[0]

    @property
    def pool(self) -> str:
        return self.request[1]

    @property
    def estimate(self) -> int:
        return self.request[2]

    @property
    def service(self) -> str:
        return self.request[4]

    @property
    def unbacked(self) -> int:
        """Soft mode holds what no lot backs against the pool itself."""
        return self.estimate - sum(amount for _, amount in self.allocations) if self.mode == "soft" else 0


@dataclass
class MMint:
    body: dict[str, Any]
    expires: float | None
    response: dict[str, Any]


@dataclass
class MKeyed:
    """A keyed operator request (adjust, refund, grant) and the answer it got."""

    body: dict[str, Any]
    response: dict[str, Any]
    order_id: str | None = None  # a refund counted against a top-up
    campaign_id: str | None = None  # a grant


@dataclass
class MPay:
    """A top-up (`PAY#<orderId>`)."""

    order_id: str
    account: str
    provider: str
    amount: int
    payment_id: str  # the provider's payment id (NOWPayments payment_id, Stripe payment_intent)
    status: str = "pending"
    rank: int = 0
    credited: int = 0
    refunded: int = 0
    lot_id: str | None = None


@dataclass
class MCampaign:
    campaign_id: str
    name: str
    budget: int
    cap: int | None
    pool: str
    expires: float | None
    definition: dict[str, Any]  # the create request (an identical create is a replay)
    status: str = "active"
    granted: int = 0
    count: int = 0
    grantees: dict[str, list[int]] = field(default_factory=dict)  # account -> [granted, grants]

    @property
    def remaining(self) -> int:
        return self.budget - self.granted


@dataclass
class Expected:
    """The model's ledger entries: (account, pool, type) -> count and summed amount."""

    count: Counter[Any] = field(default_factory=Counter)
    amount: Counter[Any] = field(default_factory=Counter)

    def add(self, account: str, pool: str, entry_type: str, amount: int) -> None:
        self.count[(account, pool, entry_type)] += 1
        self.amount[(account, pool, entry_type)] += amount


def _attempt(fn: Any, *args: Any, model: Any = None, **kwargs: Any) -> tuple[Any, tuple[int, str] | None]:
    """(what the caller receives, None) or (None, (status, code)) of a domain refusal: the
    result as its response model writes it, the refusal as the edge maps it."""
    from billing_core.api import errors
    from billing_core.kernel.errors import BillingError

    try:
        result = fn(*args, **kwargs)
    except BillingError as exc:
        return None, (errors.status_of(exc), exc.code)
    return (model.of(result) if model is not None else result), None


def _models() -> Any:
    from billing_core.api.models import ledger

    return ledger


def _reservation_models() -> Any:
    from billing_core.api.models import reservations

    return reservations


def _ctx(kind: str, subject: str) -> Any:
    from billing_core.kernel.context import Caller, Context

    return Context(Caller(kind, subject))


def _entry_type(mode: str, base: str) -> str:
    return f"shadow_{base}" if mode == "shadow" else base


def _backend_table(name: str) -> Any:
    """A table of the in-process moto, read directly: moto serializes Scan/Query responses at
    ~2 ms per item, too slow to look at every item after every step through boto."""
    from moto.core import DEFAULT_ACCOUNT_ID  # type: ignore[attr-defined]
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]].get_table(name)


def _on_dynamodb_local() -> bool:
    from devserver.dynamodb_local import DYNAMODB_LOCAL, selected_engine

    return selected_engine() == DYNAMODB_LOCAL


def _backend_items(name: str) -> list[dict[str, Any]]:
    from billing_core.store import dynamo

    from devserver.engine import MOTO_LOCK

    if _on_dynamodb_local():  # a real server: Scan is quick there
        items, kwargs = [], {"TableName": name, "ConsistentRead": True}
        while True:
            page = dynamo.client().scan(**kwargs)
            items += [dynamo.from_item(i) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    with MOTO_LOCK:
        return [dynamo.from_item(i.to_json()["Attributes"]) for i in _backend_table(name).all_items()]


def _backend_item(name: str, pk: str, sk: str) -> dict[str, Any]:
    from billing_core.store import dynamo
    from moto.dynamodb.models.dynamo_type import DynamoType

    if _on_dynamodb_local():
        found = dynamo.get(name, {"pk": pk, "sk": sk})
        assert found is not None, (name, pk, sk)
        return found

    from devserver.engine import MOTO_LOCK

    with MOTO_LOCK:
        item = _backend_table(name).get_item(DynamoType({"S": pk}), DynamoType({"S": sk}))
        return dynamo.from_item(item.to_json()["Attributes"])


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        from billing_core.kernel import clock
        from billing_core.ledger import bootstrap, config
        from billing_core.store import dynamo
        from moto import mock_aws

        from devserver.engine import apply_moto_patches
        from devserver.template import create_tables

        self.t0 = float(int(time.time())) + 0.5
        self.offset = 0.0
        self.stepping = SteppingTime(self.t0)
        clock.time = self.stepping  # type: ignore[attr-defined,assignment]
        # A fresh moto per example. Keeping boto3's default session (moto would drop it on every
        # start) saves re-reading botocore's models each time; the DynamoDB client is still new.
        self.mock = mock_aws(config={"core": {"reset_boto3_session": False}})
        self.mock.start()
        try:
            apply_moto_patches()
            dynamo.reset_client()
            config.invalidate()
            clock.reset()
            if _on_dynamodb_local():  # this process's DynamoDB Local, its tables emptied
                from devserver import dynamodb_local

                os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_local.shared_instance().url
                dynamodb_local.reset_tables(dynamo.client(), TEMPLATE)
            else:
                create_tables(dynamo.client(), TEMPLATE)
            bootstrap.seed()
        except BaseException:
            self.teardown()
            raise

        self.mode = "shadow"  # what a fresh deployment is seeded with
        self.lots: dict[tuple[str, str], list[MLot]] = defaultdict(list)
        self.debt: dict[tuple[str, str], int] = defaultdict(int)
        self.unbacked: dict[tuple[str, str], int] = defaultdict(int)
        self.debt_items: set[tuple[str, str]] = set()  # pools whose pool (DEBT) item was ever written
        self.res: dict[str, MRes] = {}
        self.mints: dict[str, MMint] = {}  # by idempotencyKey
        self.expected = Expected()
        self.shares: dict[str, dict[str, int]] = {}  # reservationId -> system account -> amount
        self.minted_total = 0
        self.counter = 0
        self.minted = 0
        self.checks = 0  # steps so far (the invariants count them)
        self.mode_set_at = 0
        self.dirty: set[str] = set(ACCOUNTS)  # accounts whose ledger changed: check history and balance
        self.dirty_balance: set[str] = set(ACCOUNTS)  # accounts whose balance may have changed
        self.dirty_totals: set[str] = set()  # accounts whose lifetime totals changed: the operator's view
        self.lifetime_paid: dict[str, int] = defaultdict(int)
        self.lifetime_refunded: dict[str, int] = defaultdict(int)
        self.totals_items: set[str] = set()  # accounts whose TOTALS item was ever written
        self.adjust_keys: dict[str, MKeyed] = {}
        self.refund_keys: dict[str, MKeyed] = {}
        self.payments: dict[str, MPay] = {}
        self.pay_events: dict[tuple[str, str], tuple[str, str]] = {}  # (provider, eventId) -> (orderId, outcome)
        self.deliveries: list[Any] = []  # every PaymentEvent recorded (applied, credited or ignored)
        self.campaigns: dict[str, MCampaign] = {}
        self.grant_keys: dict[tuple[str, str], MKeyed] = {}  # (campaignId, idempotencyKey)

    def teardown(self) -> None:
        from billing_core.kernel import clock
        from billing_core.ledger import config
        from billing_core.store import dynamo

        try:
            self.mock.stop()
        finally:
            os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
            dynamo.reset_client()
            config.invalidate()
            clock.reset()
            clock.time = time  # type: ignore[attr-defined]

    # -- model helpers ------------------------------------------------------------------------

    @property
    def grid(self) -> float:
        """Where the advances have put the clock: t0 + offset, a point of the 1/8 s grid."""
        return self.t0 + self.offset

    @property
    def now(self) -> float:
        """The clock's latest reading (the grid point plus the drift so far); the core's next
        reading is a tick later."""
        return self.stepping.value + self.offset

    def _fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def _drawable(self, lot: MLot) -> int:
        return 0 if lot.expires is not None and lot.expires <= self.now else lot.available

    def _lot(self, key: tuple[str, str], lot_id: str) -> MLot:
        return next(lot for lot in self.lots[key] if lot.lot_id == lot_id)

    def _pick(self, data: st.DataObject, *statuses: str) -> MRes:
        """A reservation, in 3 of 4 draws one in `statuses` when there is one."""
        preferred = [rid for rid, r in self.res.items() if r.status in statuses]
        if preferred and bool(data.draw(st.integers(0, 3), label="prefer")):
            return self.res[data.draw(st.sampled_from(preferred), label="reservationId")]
        return self.res[data.draw(st.sampled_from(list(self.res)), label="reservationId")]

    def _advance(self, seconds: float) -> None:
        from billing_core.kernel import clock

        assert seconds > 0 and (self.grid + seconds) * 8 == int((self.grid + seconds) * 8)
        before = self.now
        clock.advance(seconds)
        self.offset += seconds
        # With time alone a balance changes only where a lot expired in between.
        self.dirty_balance.update(account for (account, _), lots in self.lots.items()
                                  if any(lot.expires is not None and before < lot.expires <= self.now for lot in lots))

    def _return_allocations(self, r: MRes) -> None:
        """Release and expire: the held lots get it all back, the unbacked hold is dropped."""
        for lot_id, amount in r.allocations:
            lot = self._lot((r.account, r.pool), lot_id)
            lot.reserved -= amount
            lot.available += amount
        self.unbacked[(r.account, r.pool)] -= r.unbacked

    def _model_expire(self, r: MRes) -> None:
        self._return_allocations(r)
        r.status = "expired"
        self.expected.add(r.account, r.pool, _entry_type(r.mode, "expire"), r.estimate)
        self.dirty.add(r.account)

    def _available(self, key: tuple[str, str]) -> int:
        """A pool's balance as balance, adjust and refund define it: unexpired lots' available,
        minus debt, minus unbacked holds (negative when it owes or holds more than it has)."""
        return sum(self._drawable(lot) for lot in self.lots[key]) - self.debt[key] - self.unbacked[key]

    def _credit_lot(self, account: str, pool: str, amount: int, expires: float | None, source: str,
                    lot_id: str) -> int:
        """A new lot (mint, top-up credit, grant, credit adjustment): the pool's debt is settled
        first, so that part of it starts consumed. Returns what it settled."""
        key = (account, pool)
        settle = min(self.debt[key], amount)
        self.debt[key] -= settle
        self.debt_items.add(key)  # every new lot bumps the pool item's seq
        self.lots[key].append(MLot(lot_id=lot_id, seq=self.minted, original=amount, available=amount - settle,
                                   reserved=0, consumed=settle, expires=expires, source=source))
        self.minted += 1
        self.minted_total += amount
        self.dirty.add(account)
        return settle

    def _debit(self, account: str, pool: str, amount: int) -> None:
        """A debit (adjust, refund): unexpired lots in draw-down order, available -> consumed; what
        they cannot cover becomes debt. Reserved credit is not touched."""
        key = (account, pool)
        remaining = amount
        for lot in sorted(self.lots[key], key=MLot.draw_order):
            take = min(self._drawable(lot), remaining)
            lot.available -= take
            lot.consumed += take
            remaining -= take
        self.debt[key] += remaining
        self.debt_items.add(key)  # the pool item is pinned and written by every exact change
        self.dirty.add(account)

    def _lot_view(self, account: str, pool: str, amount: int, source: str, description: str,
                  expires_at: str | None) -> dict[str, str | None]:
        """What a new lot's response says (settledDebtMicro: the pool's debt, settled first)."""
        settle = min(self.debt[(account, pool)], amount)
        return {"accountId": account, "poolId": pool, "originalMicro": str(amount),
                "availableMicro": str(amount - settle), "reservedMicro": "0", "consumedMicro": str(settle),
                "sourceType": source, "description": description, "expiresAt": expires_at,
                "settledDebtMicro": str(settle)}

    def _near_now(self, stamp: str) -> None:
        from billing_core.kernel import clock

        assert abs(clock.parse_iso(stamp) - self.now) < 0.1, (stamp, self.now)

    # -- opening, mode, mint --------------------------------------------------------------------

    @initialize(mode=st.sampled_from(("live", "soft", "live", "soft", "shadow")), grants=st.lists(
        st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(POOLS), st.integers(1, 120),
                  st.sampled_from(LOT_EXPIRIES)), max_size=4))
    def opening(self, mode: str, grants: list[tuple[str, str, int, int | None]]) -> None:
        """Most examples start with some credit, mostly in a mode that moves money (a new
        deployment is in shadow), so that spending meets credit often."""
        for account, pool, amount, expiry in grants:
            self._mint(account, pool, amount, expiry, keyed=False, source="grant")
        if mode != self.mode:
            self.set_mode(mode)

    @precondition(lambda self: self.checks - self.mode_set_at >= 6)  # a switch costs ~40 ms: not every other step
    @rule(mode=st.sampled_from(MODES))
    def set_mode(self, mode: str) -> None:
        from billing_core.api.models.ledger import ModeChangeResponse
        from billing_core.ledger import config

        result = ModeChangeResponse.of(config.set_mode(_ctx(*ADMIN), mode))
        assert (result["mode"], result["previousMode"]) == (mode, self.mode), result
        self.mode = mode
        self.mode_set_at = self.checks

    @rule(data=st.data(), account=st.sampled_from(ACCOUNTS), pool=st.sampled_from(POOLS),
          amount=st.integers(1, 120), expiry=st.sampled_from(LOT_EXPIRIES), keyed=st.booleans(),
          source=st.sampled_from(SOURCE_TYPES), into_debt=st.booleans())
    def mint(self, data: st.DataObject, account: str, pool: str, amount: int, expiry: int | None, keyed: bool,
             source: str, into_debt: bool) -> None:
        """Credit, with or without expiry and idempotencyKey; half of the time into a pool in debt
        when there is one (the deposit settles the debt first)."""
        in_debt = [key for key, debt in self.debt.items() if debt]
        if into_debt and in_debt:
            account, pool = data.draw(st.sampled_from(in_debt), label="pool in debt")
        self._mint(account, pool, amount, expiry, keyed=keyed, source=source)

    def _mint(self, account: str, pool: str, amount: int, expiry: int | None, *, keyed: bool, source: str) -> None:
        from billing_core.kernel import clock
        from billing_core.ledger import lots

        expires = None if expiry is None else math.floor(self.grid) + expiry
        body: dict[str, Any] = {"account_id": account, "pool_id": pool, "amount": amount, "source_type": source,
                "description": f"model credit {amount}", "expires_at": None if expires is None else clock.iso(expires)}
        key = self._fresh("mint-key") if keyed else None
        result, error = _attempt(lots.mint, _ctx(*ADMIN), **body, idempotency_key=key, model=_models().LotResponse)
        assert error is None, error

        expected = self._lot_view(account, pool, amount, source, body["description"], body["expires_at"])
        assert {k: result[k] for k in expected} == expected, (result, expected)
        settle = self._credit_lot(account, pool, amount, expires, source, result["lotId"])
        event("mint: settles debt" if settle else "mint")
        self.expected.add(account, pool, "deposit", amount)
        if key is not None:
            self.mints[key] = MMint(body=body, expires=expires, response=result)

    @precondition(lambda self: self.mints)
    @rule(data=st.data(), same=st.booleans(), late=st.booleans())
    def mint_again(self, data: st.DataObject, same: bool, late: bool) -> None:
        """A retry of a keyed mint returns the original lot and mints nothing, also when it comes
        late, after the lot has expired (it is still the same request); the key with another
        request is 409."""
        from billing_core.ledger import lots

        key = data.draw(st.sampled_from(list(self.mints)), label="idempotencyKey")
        original = self.mints[key]
        if late and original.expires is not None and original.expires + 1 > self.grid:
            self._advance(original.expires + 1 - self.grid)
        body = dict(original.body)
        if not same:
            body["amount"] += 1
            body["expires_at"] = None  # valid in its own right: only the key is reused
        result, error = _attempt(lots.mint, _ctx(*ADMIN), **body, idempotency_key=key, model=_models().LotResponse)
        if same:
            lapsed = original.expires is not None and original.expires <= self.now
            event(f"mint retry: same request{', lot expired since' if lapsed else ''}")
            assert error is None, f"retry of mint {key} {body} at {self.now} -> {error}, expected the original lot"
            assert result == original.response
        else:
            event("mint retry: other request")
            assert error == (409, "IDEMPOTENCY_KEY_REUSED"), (result, error)

    # -- adjustments, refunds, top-ups ------------------------------------------------------------

    def _pool_pick(self, data: st.DataObject, account: str, pool: str, into_debt: bool) -> tuple[str, str]:
        """(account, pool) as drawn, or, when asked and there is one, a pool in debt."""
        in_debt = [key for key, debt in self.debt.items() if debt]
        if into_debt and in_debt:
            return data.draw(st.sampled_from(in_debt), label="pool in debt")
        return account, pool

    def _changed(self, result: Any, account: str, pool: str, previous: int, change: int, entry_type: str,
                 reason: str, response_model: Any) -> dict[str, Any]:
        """A balance change that went through (adjust, refund): its answer, its entry, and the
        model moved by it. Credit: a new lot (sourceType adjustment) settling debt first; debit
        (or none, a set to the current balance): live lots in draw-down order, then debt."""
        from billing_core.kernel import settings
        from billing_core.store import keys

        view: dict[str, Any] = response_model.of(result)
        expected = {"accountId": account, "poolId": pool, "previousBalanceMicro": str(previous),
                    "newBalanceMicro": str(previous + change), "deltaMicro": str(change), "reason": reason,
                    "entryType": entry_type, "lifetimePaidMicro": str(self.lifetime_paid[account])}
        assert {k: view[k] for k in expected} == expected, (view, expected)
        self._near_now(view["createdAt"])
        entry = _backend_item(settings.get().ledger_table, keys.entry_pk(account),
                              keys.entry_sk(result.created_at, result.entry_id))
        metadata = entry["metadata"]
        assert (entry["entryType"], entry["amountMicro"], entry["description"], entry["poolId"]) == (
            entry_type, abs(change), reason, pool), entry
        assert (metadata["previousBalanceMicro"], metadata["newBalanceMicro"]) == (previous, previous + change), entry
        if change > 0:
            assert entry["lotId"] and entry["lotId"] not in {lot.lot_id for lot in self.lots[(account, pool)]}
            settle = self._credit_lot(account, pool, change, None, "adjustment", entry["lotId"])
            assert (metadata["direction"], metadata["settledDebtMicro"]) == ("credit", settle), entry
            event(f"{entry_type}: credit{', settles debt' if settle else ''}")
        else:
            drawable = sum(self._drawable(lot) for lot in self.lots[(account, pool)])
            from_lots = min(drawable, -change)
            assert (metadata["direction"], metadata["fromLotsMicro"], metadata["toDebtMicro"]) == (
                "debit" if change else "none", from_lots, -change - from_lots), (entry, drawable)
            self._debit(account, pool, -change)
            event(f"{entry_type}: {'debit' if change else 'no change'}{', into debt' if from_lots < -change else ''}")
        self.expected.add(account, pool, entry_type, abs(change))
        return view

    @rule(data=st.data(), account=st.sampled_from(ACCOUNTS), pool=st.sampled_from(POOLS),
          how=st.sampled_from(("credit", "debit", "debit past zero", "set", "set negative", "set same", "zero")),
          amount=st.integers(1, 120), keyed=st.booleans(), into_debt=st.booleans())
    def adjust(self, data: st.DataObject, account: str, pool: str, how: str, amount: int, keyed: bool,
               into_debt: bool) -> None:
        """adjustments.adjust by an admin: move the balance by a delta or set it (negative allowed);
        a zero delta is refused and changes nothing, nor uses up its key."""
        from billing_core.api.models.ledger import BalanceChangeResponse
        from billing_core.ledger import adjustments

        account, pool = self._pool_pick(data, account, pool, into_debt)
        previous = self._available((account, pool))
        balance, delta = {
            "credit": (None, amount), "debit": (None, -amount), "debit past zero": (None, -(max(previous, 0) + amount)),
            "set": (amount, None), "set negative": (-amount, None), "set same": (previous, None), "zero": (None, 0),
        }[how]
        body: dict[str, Any] = {"account_id": account, "pool_id": pool, "balance": balance, "delta": delta,
                "reason": f"model adjust: {how}"}
        key = self._fresh("adjust-key") if keyed else None
        result, error = _attempt(adjustments.adjust, _ctx(*ADMIN), **body, idempotency_key=key)
        if how == "zero":
            event("adjust: zero delta refused")
            assert error == (422, "INVALID_ADJUSTMENT"), (result, error)
            return
        assert error is None, (body, error)
        change = delta if delta is not None else balance - previous  # type: ignore[operator]
        view = self._changed(result, account, pool, previous, change, "adjustment", body["reason"],
                             BalanceChangeResponse)
        if key is not None:
            self.adjust_keys[key] = MKeyed(body=body, response=view)

    @precondition(lambda self: self.adjust_keys)
    @rule(data=st.data(), variant=st.sampled_from(("same", "same", "reason", "pool", "amount")))
    def adjust_again(self, data: st.DataObject, variant: str) -> None:
        """A keyed adjustment sent again: the same request answers the original and moves
        nothing, whatever happened since; the key with another request is 409."""
        from billing_core.api.models.ledger import BalanceChangeResponse
        from billing_core.ledger import adjustments

        key = data.draw(st.sampled_from(sorted(self.adjust_keys)), label="idempotencyKey")
        original = self.adjust_keys[key]
        body = dict(original.body)
        if variant == "reason":
            body["reason"] += " (another)"
        elif variant == "pool":
            body["pool_id"] = next(p for p in POOLS if p != body["pool_id"])
        elif variant == "amount":
            name = "delta" if body["delta"] is not None else "balance"
            body[name] = 2 * body[name] if body[name] else 1  # a delta is never zero
        result, error = _attempt(adjustments.adjust, _ctx(*ADMIN), **body, idempotency_key=key,
                                 model=BalanceChangeResponse)
        event(f"adjust retry: {variant}")
        if variant == "same":
            assert error is None, error
            assert result == original.response
        else:
            assert error == (409, "IDEMPOTENCY_KEY_REUSED"), (result, error)

    def _refund(self, account: str, pool: str, amount: int, order_id: str | None,
                key: str | None) -> tuple[dict[str, Any], Any, tuple[int, str] | None]:
        from billing_core.payments import refunds

        body = {"account_id": account, "pool_id": pool, "amount": amount, "order_id": order_id,
                "reason": f"model refund of {amount}"}
        return (body, *_attempt(refunds.refund, _ctx(*ADMIN), **body, idempotency_key=key))

    def _refunded(self, body: dict[str, Any], result: Any, previous: int, key: str | None) -> None:
        from billing_core.api.models.ledger import RefundResponse

        account, pool, amount = body["account_id"], body["pool_id"], body["amount"]
        view = self._changed(result, account, pool, previous, -amount, "refund", body["reason"], RefundResponse)
        assert (view["refundedMicro"], view["orderId"]) == (str(amount), body["order_id"]), view
        self.lifetime_refunded[account] += amount
        self.totals_items.add(account)
        self.dirty_totals.add(account)
        if key is not None:
            self.refund_keys[key] = MKeyed(body=body, response=view, order_id=body["order_id"])

    @rule(data=st.data(), account=st.sampled_from(ACCOUNTS), pool=st.sampled_from(POOLS),
          amount=st.integers(1, 120), keyed=st.booleans(), into_debt=st.booleans())
    def refund(self, data: st.DataObject, account: str, pool: str, amount: int, keyed: bool, into_debt: bool) -> None:
        """An operator's refund with no top-up: an audited debit (a `refund` entry; past zero into
        debt) that adds to lifetime refunded."""
        account, pool = self._pool_pick(data, account, pool, into_debt)
        previous = self._available((account, pool))
        key = self._fresh("refund-key") if keyed else None
        body, result, error = self._refund(account, pool, amount, None, key)
        assert error is None, (body, error)
        self._refunded(body, result, previous, key)

    @precondition(lambda self: self.payments)
    @rule(data=st.data(), how=st.sampled_from(("part", "rest", "rest, sent again", "over", "another account",
                                               "another pool")), keyed=st.booleans())
    def refund_topup(self, data: st.DataObject, how: str, keyed: bool) -> None:
        """An operator's refund counted against a top-up: at most what it credited and is not
        refunded yet (409 REFUND_EXCEEDS_PAYMENT, nothing moves); another account's top-up is 404;
        naming a pool other than the one the top-up credited is 422 (the deposit would stay spendable)."""
        credited = [o for o, p in self.payments.items() if p.credited > p.refunded]
        if credited and bool(data.draw(st.integers(0, 3), label="prefer")):
            p = self.payments[data.draw(st.sampled_from(credited), label="orderId")]
        else:
            p = self.payments[data.draw(st.sampled_from(list(self.payments)), label="orderId")]
        from billing_core.api.models.ledger import RefundResponse
        from billing_core.payments import refunds

        refundable = p.credited - p.refunded
        amount = {"part": max(1, refundable // 3), "rest": max(1, refundable), "rest, sent again": max(1, refundable),
                  "over": refundable + CENT, "another account": 1, "another pool": 1}[how]
        keyed = keyed or how == "rest, sent again"
        account = next(a for a in ACCOUNTS if a != p.account) if how == "another account" else p.account
        previous = self._available((account, "general"))
        key = self._fresh("refund-key") if keyed else None
        body, result, error = self._refund(account, "gpu" if how == "another pool" else "general", amount,
                                           p.order_id, key)
        if how == "another pool":
            event("refund top-up: another pool")
            assert error == (422, "REFUND_POOL_MISMATCH"), (result, error)
        elif how == "another account":
            event("refund top-up: another account's")
            assert error == (404, "TOPUP_NOT_FOUND"), (result, error)
        elif amount > refundable:
            event(f"refund top-up: exceeds ({p.status})")
            assert error == (409, "REFUND_EXCEEDS_PAYMENT"), (result, error, p)
        else:
            assert error is None, (body, error, p)
            self._refunded(body, result, previous, key)
            p.refunded += amount
            p.status = "refunded" if p.refunded == p.credited else "partially_refunded"
            p.rank = RANKS[p.status]
            event(f"refund top-up: {p.status}")
            if how == "rest, sent again":  # nothing refundable left: the retry still answers the refund
                assert key is not None
                again, error = _attempt(refunds.refund, _ctx(*ADMIN), **body, idempotency_key=key,
                                        model=RefundResponse)
                event("refund top-up: sent again once used up")
                assert error is None, (body, error, p)
                assert again == self.refund_keys[key].response, (again, self.refund_keys[key].response)

    @precondition(lambda self: self.refund_keys)
    @rule(data=st.data(), variant=st.sampled_from(("same", "same", "amount", "order")))
    def refund_again(self, data: st.DataObject, variant: str) -> None:
        """A keyed refund sent again answers the first refund and moves nothing, also when its
        top-up has nothing refundable left since; the key with another request is 409."""
        from billing_core.api.models.ledger import RefundResponse
        from billing_core.payments import refunds

        counted = sorted(k for k, keyed in self.refund_keys.items() if keyed.order_id is not None)
        if counted and bool(data.draw(st.integers(0, 3), label="prefer")):  # mostly one counted against a top-up
            key = data.draw(st.sampled_from(counted), label="idempotencyKey")
        else:
            key = data.draw(st.sampled_from(sorted(self.refund_keys)), label="idempotencyKey")
        original = self.refund_keys[key]
        body = dict(original.body)
        if variant == "amount":
            body["amount"] += 1
        elif variant == "order":
            body["order_id"] = None if body["order_id"] else next(iter(self.payments), "ord_none")
        result, error = _attempt(refunds.refund, _ctx(*ADMIN), **body, idempotency_key=key, model=RefundResponse)
        exhausted = original.order_id is not None and not (
            self.payments[original.order_id].credited - self.payments[original.order_id].refunded)
        event(f"refund retry: {variant}{', top-up exhausted' if exhausted and variant == 'same' else ''}")
        if variant == "same":
            assert error is None, (body, error)
            assert result == original.response
        else:
            assert error == (409, "IDEMPOTENCY_KEY_REUSED"), (result, error)

    @precondition(lambda self: sum(p.rank < RANKS["finished"] for p in self.payments.values()) < 2)
    @rule(account=st.sampled_from(ACCOUNTS), provider=st.sampled_from(PROVIDERS),
          amount=st.sampled_from(TOPUP_AMOUNTS))
    def topup(self, account: str, provider: str, amount: int) -> None:
        """topups.create by the account's user: a pending payment record, no provider here (at most
        two top-ups waiting for their payment at a time)."""
        from billing_core.api.models.payments import TopupResponse
        from billing_core.payments import topups

        result, error = _attempt(topups.create, _ctx("user", account), account_id=account, amount=amount,
                                 provider=provider, model=TopupResponse)
        assert error is None, error
        expected = {"accountId": account, "poolId": "general", "provider": provider, "status": "pending",
                    "amountMicro": str(amount), "currency": "usd", "paymentUrl": None,
                    "providerInvoiceCreated": False, "creditedMicro": "0", "refundedMicro": "0", "lotId": None}
        assert {k: result[k] for k in expected} == expected, result
        order_id = result["orderId"]
        assert order_id not in self.payments
        self.payments[order_id] = MPay(order_id=order_id, account=account, provider=provider, amount=amount,
                                       payment_id=self._fresh("pi"))
        event("topup: created")

    @precondition(lambda self: self.payments)
    @rule(data=st.data(), kind=st.sampled_from(("paid", "paid", "paid", "in progress", "failed", "paid, other amount",
                                                "redelivered")))
    def provider_event(self, data: st.DataObject, kind: str) -> None:
        """A verified provider event through events.apply_event: it applies only if it raises the
        top-up's rank; the paid state credits the order's amount once (a deposit lot in general,
        settling debt first, lifetime paid grows); a paid amount other than the order's is for a
        human (NEEDS_MANUAL_REVIEW, nothing recorded); the same event again is a duplicate."""
        from billing_core.payments import events
        from billing_core.payments.model import PaymentEvent

        if kind == "redelivered" and not self.deliveries:
            kind = "paid"  # nothing sent yet
        if kind == "redelivered":
            sent = data.draw(st.sampled_from(self.deliveries), label="event")
            outcome = events.apply_event(sent)
            event("provider event: redelivered")
            assert (outcome.outcome, outcome.order_id) == ("duplicate", sent.order_id), outcome
            return
        unpaid = [o for o, p in self.payments.items() if p.rank < RANKS["finished"]]
        if unpaid and bool(data.draw(st.integers(0, 3), label="prefer")):  # mostly one not paid yet
            p = self.payments[data.draw(st.sampled_from(unpaid), label="orderId")]
        else:
            p = self.payments[data.draw(st.sampled_from(list(self.payments)), label="orderId")]
        stripe = p.provider == "stripe"
        if kind.startswith("paid"):
            status = "completed" if stripe else "finished"
        elif kind == "in progress":
            status = "processing" if stripe else data.draw(st.sampled_from(
                ("waiting", "confirming", "confirmed", "sending", "partially_paid")), label="status")
        else:
            status = data.draw(st.sampled_from(("failed", "expired")), label="status")
        paid = p.amount + (CENT if kind == "paid, other amount" else 0) if status in PAID else None
        sent = PaymentEvent(provider=p.provider, event_id=self._fresh("evt"), order_id=p.order_id, status=status,
                            provider_status=status, provider_payment_id=p.payment_id, paid_micro=paid,
                            provider_currency="usd", provider_amount=None if paid is None else str(paid / USD))
        outcome, error = _attempt(events.apply_event, sent)
        rank = RANKS[status]
        if rank <= p.rank:
            expect = "ignored_out_of_order"
        elif status in PAID and paid != p.amount:
            event("provider event: paid another amount, for review")
            assert error == (409, "NEEDS_MANUAL_REVIEW"), (outcome, error)
            return
        elif status in PAID:
            expect = "credited"
        else:
            expect = "applied"
        event(f"provider event: {kind}, {expect}")
        assert error is None, (sent, error, p)
        assert (outcome.outcome, outcome.order_id) == (expect, p.order_id), (outcome, p)
        if expect == "credited":
            assert outcome.credited_micro == p.amount and outcome.lot_id, outcome
            settle = self._credit_lot(p.account, "general", p.amount, None, "deposit", outcome.lot_id)
            if settle:
                event("provider event: credit settles debt")
            self.expected.add(p.account, "general", "deposit", p.amount)
            p.credited, p.lot_id = p.amount, outcome.lot_id
            self.lifetime_paid[p.account] += p.amount
            self.totals_items.add(p.account)
            self.dirty_totals.add(p.account)
        elif expect == "applied":
            assert (outcome.status, outcome.failed) == (status, status in ("failed", "expired")), outcome
        if expect != "ignored_out_of_order":
            p.status, p.rank = status, rank
        self.pay_events[(p.provider, sent.event_id)] = (p.order_id, expect)
        self.deliveries.append(sent)

    # -- campaigns --------------------------------------------------------------------------------

    @precondition(lambda self: len(self.campaigns) < 3)  # rather grant from them than make more
    @rule(pool=st.sampled_from(POOLS), budget=st.integers(20, 300), cap=st.sampled_from((None, None, 10, 60, 150)),
          expiry=st.sampled_from(CAMPAIGN_EXPIRIES))
    def campaign_create(self, pool: str, budget: int, cap: int | None, expiry: int | None) -> None:
        """budget.create: an active campaign with a budget, an optional cap per account and an
        optional grantExpiresAt (the expiry of its grants' lots)."""
        from billing_core.api.models.campaigns import CampaignResponse
        from billing_core.campaigns import budget as campaigns
        from billing_core.kernel import clock

        campaign_id = self._fresh("cmp")
        expires = None if expiry is None else math.floor(self.grid) + expiry
        definition: dict[str, Any] = {"name": f"model campaign {campaign_id}", "budget": budget, "per_account_cap": cap,
                      "pool_id": pool, "grant_expires_at": None if expires is None else clock.iso(expires),
                      "description": None}
        result, error = _attempt(campaigns.create, _ctx(*ADMIN), campaign_id=campaign_id, **definition,
                                 model=CampaignResponse)
        assert error is None, error
        c = self.campaigns[campaign_id] = MCampaign(campaign_id=campaign_id, name=definition["name"], budget=budget,
                                                    cap=cap, pool=pool, expires=expires, definition=definition)
        self._campaign_matches(c, result)
        event("campaign: created")

    def _campaign_matches(self, c: MCampaign, view: dict[str, Any]) -> None:
        expected = {"campaignId": c.campaign_id, "status": c.status, "budgetMicro": str(c.budget),
                    "grantedMicro": str(c.granted), "remainingMicro": str(c.remaining),
                    "perAccountCapMicro": None if c.cap is None else str(c.cap), "poolId": c.pool,
                    "grantCount": c.count}
        assert {k: view[k] for k in expected} == expected, (view, expected)

    @precondition(lambda self: self.campaigns)
    @rule(data=st.data(), op=st.sampled_from(("pause", "resume", "create again", "create other")))
    def campaign_status(self, data: st.DataObject, op: str) -> None:
        """pause/resume (already there: the campaign as it is; from the other status only); the
        same create again is a replay, another definition under its id is 409 CAMPAIGN_EXISTS."""
        from billing_core.api.models.campaigns import CampaignResponse
        from billing_core.campaigns import budget as campaigns

        c = self.campaigns[data.draw(st.sampled_from(sorted(self.campaigns)), label="campaignId")]
        event(f"campaign: {op}, {c.status}")
        if op.startswith("create"):
            definition = dict(c.definition)
            if op == "create other":
                definition["budget"] += 1
            if c.expires is not None and c.expires <= self.now:
                return  # an expiry in the past is refused before the id is looked at
            result, error = _attempt(campaigns.create, _ctx(*ADMIN), campaign_id=c.campaign_id, **definition,
                                     model=CampaignResponse)
            if op == "create other":
                assert error == (409, "CAMPAIGN_EXISTS"), (result, error)
                return
        else:
            result, error = _attempt(getattr(campaigns, op), _ctx(*ADMIN), c.campaign_id, model=CampaignResponse)
            c.status = "paused" if op == "pause" else "active"
        assert error is None, error
        self._campaign_matches(c, result)

    @precondition(lambda self: self.campaigns)
    @rule(data=st.data(), account=st.sampled_from(ACCOUNTS),
          size=st.sampled_from(("small", "small", "cap", "over cap", "rest", "over")),
          amount=st.integers(1, 60), keyed=st.booleans())
    def campaign_grant(self, data: st.DataObject, account: str, size: str, amount: int, keyed: bool) -> None:
        """grants.grant: a lot of the campaign's pool (sourceType campaign, expiring with the
        campaign's grants, settling debt first) within the budget and the account's cap, while
        the campaign is active and its grants have not expired; refusals move nothing."""
        from billing_core.api.models.campaigns import GrantResponse
        from billing_core.campaigns import grants

        c = self.campaigns[data.draw(st.sampled_from(sorted(self.campaigns)), label="campaignId")]
        granted, _ = c.grantees.get(account, [0, 0])
        cap_left = None if c.cap is None else c.cap - granted
        amount = {"small": amount, "cap": cap_left or amount, "over cap": (cap_left or 0) + 1,
                  "rest": max(1, c.remaining), "over": c.remaining + 1}[size]
        key = self._fresh("grant-key") if keyed else None
        body = {"account_id": account, "amount": amount, "description": None}
        result, error = _attempt(grants.grant, _ctx(*ADMIN), c.campaign_id, **body, idempotency_key=key,
                                 model=GrantResponse)
        if c.expires is not None and c.expires <= self.now:
            refusal: tuple[int, str] | None = (409, "CAMPAIGN_EXPIRED")
        elif c.status != "active":
            refusal = (409, "CAMPAIGN_NOT_ACTIVE")
        elif amount > c.remaining:
            refusal = (409, "CAMPAIGN_BUDGET_EXHAUSTED")
        elif cap_left is not None and amount > cap_left:
            refusal = (409, "ACCOUNT_CAP_EXCEEDED")
        else:
            refusal = None
        event(f"campaign grant: {refusal[1] if refusal else 'granted'}")
        if refusal is not None:
            assert error == refusal, (result, error, c, amount)
            return
        assert error is None, (error, c, amount)
        description = f"campaign grant: {c.name}"
        lot_view = self._lot_view(account, c.pool, amount, "campaign", description, c.definition["grant_expires_at"])
        assert {k: result["lot"][k] for k in lot_view} == lot_view, (result, lot_view)
        settle = self._credit_lot(account, c.pool, amount, c.expires, "campaign", result["lotId"])
        if settle:
            event("campaign grant: settles debt")
        self.expected.add(account, c.pool, "deposit", amount)
        c.granted += amount
        c.count += 1
        c.grantees[account] = [granted + amount, c.grantees.get(account, [0, 0])[1] + 1]
        expected = {"campaignId": c.campaign_id, "accountId": account, "amountMicro": str(amount),
                    "remainingMicro": str(c.remaining), "lotId": result["lot"]["lotId"]}
        assert {k: result[k] for k in expected} == expected, (result, expected)
        if key is not None:
            self.grant_keys[(c.campaign_id, key)] = MKeyed(body=body, response=result, campaign_id=c.campaign_id)

    @precondition(lambda self: self.grant_keys)
    @rule(data=st.data(), same=st.booleans())
    def campaign_grant_again(self, data: st.DataObject, same: bool) -> None:
        """A keyed grant sent again: the original grant (the same grant and lot; remainingMicro
        as the campaign stands now), whatever happened to the campaign since; the key with another
        amount is 409."""
        from billing_core.api.models.campaigns import GrantResponse
        from billing_core.campaigns import grants

        campaign_id, key = data.draw(st.sampled_from(sorted(self.grant_keys)), label="grant key")
        original = self.grant_keys[(campaign_id, key)]
        c = self.campaigns[campaign_id]
        body = dict(original.body)
        if not same:
            body["amount"] += 1
        result, error = _attempt(grants.grant, _ctx(*ADMIN), campaign_id, **body, idempotency_key=key,
                                 model=GrantResponse)
        event(f"campaign grant retry: {'same' if same else 'other amount'}, {c.status}")
        if same:
            assert error is None, error
            assert result == {**original.response, "remainingMicro": str(c.remaining)}, (result, original.response)
        else:
            assert error == (409, "IDEMPOTENCY_KEY_REUSED"), (result, error)

    # -- reserve --------------------------------------------------------------------------------

    @rule(account=st.sampled_from(ACCOUNTS), pool=st.sampled_from(POOLS), estimate=st.integers(1, 80),
          ttl=st.sampled_from(TTLS), named=st.integers(0, 4), service=st.sampled_from(SERVICES))
    def reserve(self, account: str, pool: str, estimate: int, ttl: int | None, named: int, service: str) -> None:
        self._reserve(account, pool, estimate, ttl, named, service)

    @precondition(lambda self: any(self._drawable(lot) for lots in self.lots.values() for lot in lots))
    @rule(data=st.data(), share=st.sampled_from((0.25, 0.5, 0.75, 1, 1, 1.5)), ttl=st.sampled_from(TTLS),
          named=st.integers(0, 4), service=st.sampled_from(SERVICES))
    def reserve_from_credit(self, data: st.DataObject, share: float, ttl: int | None, named: int,
                            service: str) -> None:
        """A reservation sized to what a pool with credit can draw: part of it, all of it, more."""
        funded = {key: sum(self._drawable(lot) for lot in lots) for key, lots in self.lots.items()}
        account, pool = data.draw(st.sampled_from([key for key, n in funded.items() if n]), label="pool")
        self._reserve(account, pool, max(1, int(funded[(account, pool)] * share)), ttl, named, service)

    def _reserve(self, account: str, pool: str, estimate: int, ttl: int | None, named: int, service: str) -> None:
        from billing_core.kernel import clock, settings
        from billing_core.ledger import reservations
        from billing_core.store import keys

        rid = self._fresh("res") if named else None  # 1 in 5 lets the core pick the id
        pool_key = (account, pool)
        ordered = sorted(self.lots[pool_key], key=MLot.draw_order)
        available = sum(self._drawable(lot) for lot in ordered) - self.debt[pool_key] - self.unbacked[pool_key]
        before = self.now
        result, error = _attempt(reservations.reserve, _ctx("internal", service), account_id=account, pool_id=pool,
                                 estimate=estimate, reservation_id=rid, ttl_seconds=ttl,
                                 model=_reservation_models().ReserveResponse)
        if self.mode == "live" and available < estimate:
            event("reserve: live, refused")
            assert error == (402, "INSUFFICIENT_CREDIT"), (result, error, available, estimate)
            return
        assert error is None, (error, self.mode, available, estimate)
        if rid is None:
            rid = result["reservationId"]
            assert rid not in self.res
        plan: list[tuple[str, int]] = []
        if self.mode != "shadow":  # shadow records the reservation and leaves the lots alone
            remaining = estimate
            for lot in ordered:
                take = min(self._drawable(lot), remaining)
                if take > 0:
                    plan.append((lot.lot_id, take))
                    remaining -= take
        backing = "unbacked" if not plan else "partly backed" if sum(t for _, t in plan) < estimate else "backed"
        event(f"reserve: {self.mode}, {backing}, {len(plan)} lots")
        assert (result["reservationId"], result["reservedMicro"], result["billingMode"]) == (
            rid, str(estimate), self.mode), result
        # It lasts at least ttlSeconds (expiresAt may be rounded up to a whole second), and it
        # expires at exactly the expiresAt it reports.
        expires = clock.parse_iso(result["expiresAt"])
        ttl_seconds = DEFAULT_TTL if ttl is None else ttl
        assert before + ttl_seconds <= expires < self.now + ttl_seconds + 1, (result, before, ttl_seconds)
        for lot_id, take in plan:
            lot = self._lot(pool_key, lot_id)
            lot.available -= take
            lot.reserved += take
        key = keys.reservation_key(rid)
        r = self.res[rid] = MRes(
            rid=rid, request=(account, pool, estimate, ttl, service), mode=self.mode, expires=expires,
            allocations=plan, response=result,
            snapshot=_backend_item(settings.get().billing_table, key["pk"], key["sk"]))
        if r.unbacked:
            self.unbacked[pool_key] += r.unbacked
            self.debt_items.add(pool_key)
        self.expected.add(account, pool, _entry_type(self.mode, "reserve"), estimate)
        self.dirty.add(account)

    @precondition(lambda self: self.res)
    @rule(data=st.data(), variant=st.sampled_from(
        ("same", "same", "ttl_spelling", "estimate", "service", "pool", "account", "ttl")))
    def reserve_again(self, data: st.DataObject, variant: str) -> None:
        """The same reservationId: the same request gets the original 201 body and changes nothing,
        whatever happened since; any other request is 409 IDEMPOTENCY_KEY_REUSED."""
        from billing_core.ledger import reservations

        r = self._pick(data, "finalized", "released", "expired")
        account, pool, estimate, ttl, service = r.request
        if variant == "ttl_spelling":  # ttlSeconds omitted and ttlSeconds=300 are the same request
            ttl = {None: DEFAULT_TTL, DEFAULT_TTL: None}.get(ttl, ttl)
        elif variant == "estimate":
            estimate += 1
        elif variant == "service":
            service = next(s for s in SERVICES if s != service)
        elif variant == "pool":
            pool = next(p for p in POOLS if p != pool)
        elif variant == "account":
            account = next(a for a in ACCOUNTS if a != account)
        elif variant == "ttl":
            ttl = 600 if ttl != 600 else 30
        result, error = _attempt(reservations.reserve, _ctx("internal", service), account_id=account, pool_id=pool,
                                 estimate=estimate, reservation_id=r.rid, ttl_seconds=ttl,
                                 model=_reservation_models().ReserveResponse)
        event(f"reserve retry: {variant}, {r.status}")
        if variant in ("same", "ttl_spelling"):
            assert error is None, (variant, error)
            assert result == r.response
        else:
            assert error == (409, "IDEMPOTENCY_KEY_REUSED"), (variant, result, error)

    @rule(case=st.sampled_from(("system-mint", "system-reserve", "ttl-0", "ttl-negative", "ttl-too-long",
                                "unknown-finalize", "unknown-release")),
          system=st.sampled_from(tuple(SHARES)))
    def refused(self, case: str, system: str) -> None:
        """Requests that change nothing: system accounts cannot hold or spend credit, ttlSeconds is
        1..86400, and a reservation that does not exist cannot be settled."""
        from billing_core.ledger import lots, reservations

        caller = _ctx("internal", SERVICES[0])
        if case == "system-mint":
            _, error = _attempt(lots.mint, _ctx(*ADMIN), account_id=system, pool_id="general", amount=5,
                                source_type="grant",
                                description="to a system account", expires_at=None, idempotency_key=None)
            assert error == (422, "SYSTEM_ACCOUNT")
        elif case == "system-reserve":
            _, error = _attempt(reservations.reserve, caller, account_id=system, pool_id="general", estimate=5,
                                reservation_id=self._fresh("res"), ttl_seconds=None)
            assert error == (422, "SYSTEM_ACCOUNT")
        elif case.startswith("ttl-"):
            ttl = {"ttl-0": 0, "ttl-negative": -1, "ttl-too-long": 86_401}[case]
            _, error = _attempt(reservations.reserve, caller, account_id=ACCOUNTS[0], pool_id=POOLS[0], estimate=1,
                                reservation_id=self._fresh("res"), ttl_seconds=ttl)
            assert error == (422, "INVALID_TTL")
        elif case == "unknown-finalize":
            _, error = _attempt(reservations.finalize, caller, reservation_id=self._fresh("missing"), actual=1)
            assert error == (404, "RESERVATION_NOT_FOUND")
        else:
            _, error = _attempt(reservations.release, caller, reservation_id=self._fresh("missing"))
            assert error == (404, "RESERVATION_NOT_FOUND")

    # -- finalize / release / expire ------------------------------------------------------------

    def _owner_or_admin(self, r: MRes, admin: bool) -> Any:
        return _ctx(*ADMIN) if admin else _ctx("internal", r.service)

    def _refusal(self, r: MRes) -> tuple[int, str] | None:
        """What a finalize/release of a released, expired or overdue reservation gets (None: it
        proceeds). A pending reservation past its expiresAt is expired on the spot: money back."""
        if r.status == "released":
            return (409, "RESERVATION_RELEASED")
        if r.status == "expired":
            return (409, "RESERVATION_EXPIRED")
        if r.status == "pending" and r.expires <= self.now:
            event("settle: past expiresAt, expired on the spot")
            self._model_expire(r)
            return (409, "RESERVATION_EXPIRED")
        return None

    def _finalize(self, r: MRes, actual: int, caller: Any) -> None:
        from billing_core.kernel import clock
        from billing_core.ledger import reservations

        status = r.status
        result, error = _attempt(reservations.finalize, caller, reservation_id=r.rid, actual=actual,
                                 model=_reservation_models().FinalizeResponse)
        if status == "finalized":
            event(f"finalize again: {'same' if actual == r.actual else 'other'} amount")
            if actual == r.actual:
                assert error is None, (error, actual)
                assert result == r.finalize_response
            else:
                assert error == (409, "ALREADY_FINALIZED"), (result, error)
            return
        refused = self._refusal(r)
        if refused is not None:
            event(f"finalize: refused, {status}")
            assert error == refused, (r.rid, status, r.expires, self.now, result, error, refused)
            return
        assert error is None, (r.rid, status, r.expires, self.now, error)

        estimate = r.estimate
        relation = "below" if actual < estimate else "equal to" if actual == estimate else "above"
        event(f"finalize: {r.mode}, actual {relation} the estimate")
        # soft charges the actual cost in full; live caps it at the estimate; shadow moves no
        # money and reports what live would charge.
        charged = actual if r.mode == "soft" else min(actual, estimate)
        released = estimate - min(actual, estimate)
        overrun = max(0, actual - estimate)
        assert {k: result[k] for k in ("reservationId", "finalizedMicro", "releasedMicro", "overrunMicro",
                                       "billingMode")} == {
            "reservationId": r.rid, "finalizedMicro": str(charged), "releasedMicro": str(released),
            "overrunMicro": str(overrun), "billingMode": r.mode}, (result, actual, r)
        assert abs(clock.parse_iso(result["finalizedAt"]) - self.now) < 0.1, result
        remaining = 0 if r.mode == "shadow" else charged
        for lot_id, amount in r.allocations:  # consumed from the held lots in draw order, the rest back
            lot = self._lot((r.account, r.pool), lot_id)
            consume = min(amount, remaining)
            remaining -= consume
            lot.reserved -= amount
            lot.consumed += consume
            lot.available += amount - consume
        self.unbacked[(r.account, r.pool)] -= r.unbacked
        if r.mode == "soft" and remaining:  # soft: what the held lots do not cover is owed by the pool
            event("finalize: soft, leaves debt")
            self.debt[(r.account, r.pool)] += remaining
            self.debt_items.add((r.account, r.pool))
        else:
            assert remaining == 0, "a live reservation is fully backed"
        r.status, r.actual, r.finalize_response = "finalized", actual, result
        self.expected.add(r.account, r.pool, _entry_type(r.mode, "finalize"), charged)
        shares = {acct: charged * bps // 10_000 for acct, bps in SHARES.items() if charged * bps // 10_000 > 0}
        if r.mode != "shadow" and shares:
            self.shares[r.rid] = shares
        self.dirty.add(r.account)

    def _release(self, r: MRes, caller: Any) -> None:
        from billing_core.kernel import clock
        from billing_core.ledger import reservations

        status = r.status
        result, error = _attempt(reservations.release, caller, reservation_id=r.rid,
                                 model=_reservation_models().ReleaseResponse)
        event(f"release: {status}")
        if status == "released":
            assert error is None, error
            assert result == r.release_response
            return
        if status == "finalized":
            assert error == (409, "ALREADY_FINALIZED"), (result, error)
            return
        refused = self._refusal(r)
        if refused is not None:
            assert error == refused, (r.rid, status, r.expires, self.now, result, error, refused)
            return
        assert error is None, (r.rid, status, r.expires, self.now, error)
        assert {k: result[k] for k in ("reservationId", "status", "releasedMicro", "billingMode")} == {
            "reservationId": r.rid, "status": "released", "releasedMicro": str(r.estimate),
            "billingMode": r.mode}, result
        assert abs(clock.parse_iso(result["releasedAt"]) - self.now) < 0.1, result
        self._return_allocations(r)
        r.status, r.release_response = "released", result
        self.expected.add(r.account, r.pool, _entry_type(r.mode, "release"), r.estimate)
        self.dirty.add(r.account)

    @precondition(lambda self: self.res)
    @rule(data=st.data(), how=st.sampled_from(("zero", "below", "equal", "above", "again", "again-other")),
          delta=st.integers(1, 60), admin=st.booleans())
    def finalize(self, data: st.DataObject, how: str, delta: int, admin: bool) -> None:
        """By the owning service or an admin, with the actual cost below, equal to or above the
        estimate; "again": a finalized one once more, with the same amount (the original
        response) or another (409)."""
        if how.startswith("again"):
            r = self._pick(data, "finalized")
            actual = r.estimate if r.actual is None else r.actual + (how == "again-other")
        else:
            r = self._pick(data, "pending")
            actual = {"zero": 0, "below": max(0, r.estimate - delta), "equal": r.estimate,
                      "above": r.estimate + delta}[how]
        self._finalize(r, actual, self._owner_or_admin(r, admin))

    @precondition(lambda self: self.res)
    @rule(data=st.data(), admin=st.booleans())
    def release(self, data: st.DataObject, admin: bool) -> None:
        r = self._pick(data, "pending", "released")
        self._release(r, self._owner_or_admin(r, admin))

    @precondition(lambda self: self.res)
    @rule(data=st.data(), op=st.sampled_from(("finalize", "release")))
    def foreign_service(self, data: st.DataObject, op: str) -> None:
        """Another service may not settle, nor learn the state of, a reservation it did not make."""
        from billing_core.ledger import reservations

        r = self._pick(data, "pending")
        caller = _ctx("internal", next(s for s in SERVICES if s != r.service))
        event(f"foreign service: {op} a {r.status} reservation")
        if op == "finalize":
            actual = r.estimate if r.actual is None else r.actual
            result, error = _attempt(reservations.finalize, caller, reservation_id=r.rid, actual=actual)
        else:
            result, error = _attempt(reservations.release, caller, reservation_id=r.rid,
                                     model=_reservation_models().ReleaseResponse)
        assert error == (403, "NOT_RESERVATION_OWNER"), (op, r.status, result, error)

    @precondition(lambda self: self.res)
    @rule(data=st.data(), stale=st.booleans())
    def sweep(self, data: st.DataObject, stale: bool) -> None:
        """The sweeper path: reservations.expire with the item as read now, or with the stale copy
        written by reserve (another writer settled it since): True only for a pending, due one."""
        from billing_core.kernel import settings
        from billing_core.ledger import reservations
        from billing_core.store import dynamo, keys
        from billing_core.store import reservations as reservation_store

        r = self._pick(data, "pending")
        item = r.snapshot if stale else dynamo.get(settings.get().billing_table, keys.reservation_key(r.rid))
        assert item is not None
        due = r.status == "pending" and r.expires <= self.now
        event(f"sweep: {'stale' if stale else 'fresh'} item, {r.status}, {'due' if due else 'not due'}")
        expired = reservations.expire(_ctx("system", "sweeper"), reservation_store.from_item(item))
        assert expired is due, (r.rid, r.status, r.expires, self.now, stale, expired)
        if due:
            self._model_expire(r)

    # -- time -----------------------------------------------------------------------------------

    @rule(data=st.data(), to=st.sampled_from(("by", "by", "reservation expiry", "lot expiry")),
          seconds=st.sampled_from(ADVANCES), near=st.sampled_from(NEAR))
    def advance(self, data: st.DataObject, to: str, seconds: float, near: float) -> None:
        """Move the clock: by an amount, or to just before, at or just after the expiresAt of a
        reservation or the expiry of the next lot (or campaign's grants) to expire."""
        deadlines: list[float] = []
        if to == "reservation expiry" and self.res:
            deadlines = [self._pick(data, "pending").expires]
        elif to == "lot expiry":
            deadlines = [lot.expires for lots in self.lots.values() for lot in lots
                         if lot.expires is not None and lot.expires + near > self.grid]
            deadlines += [c.expires for c in self.campaigns.values()  # and of the campaigns' grants
                          if c.expires is not None and c.expires + near > self.grid]
        if to == "by":
            self._advance(seconds)
        elif deadlines:
            target = math.floor((min(deadlines) + near) * 8) / 8  # on the 1/8 s grid
            if target > self.grid:
                self._advance(target - self.grid)

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def tables_match_model(self) -> None:
        from billing_core.kernel import settings

        lots_seen: dict[str, dict[str, Any]] = {}
        shortfalls: dict[tuple[str, str], tuple[int, int]] = {}
        res_items: dict[str, dict[str, Any]] = {}
        pay_items: dict[str, dict[str, Any]] = {}
        event_items: dict[tuple[str, str], tuple[str, str]] = {}
        totals: dict[str, tuple[int, int]] = {}
        campaign_items: dict[str, dict[str, Any]] = {}
        grantee_items: dict[tuple[str, str], tuple[int, int, int | None]] = {}
        mode = None
        for item in _backend_items(settings.get().billing_table):
            if "#LOT#" in item["sk"]:
                for name in ("original", "available", "reserved", "consumed"):
                    assert item[name] >= 0, item
                assert item["available"] + item["reserved"] + item["consumed"] == item["original"], item
                lots_seen[item["lotId"]] = item
            elif item["sk"].endswith("#DEBT"):
                assert item.get("debt", 0) >= 0 and item.get("unbacked", 0) >= 0, item
                shortfalls[(item["accountId"], item["poolId"])] = (item.get("debt", 0), item.get("unbacked", 0))
            elif item["pk"].startswith("RES#"):
                res_items[item["reservationId"]] = item
            elif item["pk"] == "CONFIG":
                mode = item["mode"]
            elif item["sk"] == "PAY":
                pay_items[item["orderId"]] = item
            elif item["sk"] == "PAYEVT":
                event_items[(item["provider"], item["eventId"])] = (item["orderId"], item["outcome"])
            elif item["pk"] == "CAMPAIGNS":
                campaign_items[item["campaignId"]] = item
            elif item["sk"].startswith("GRANTEE#"):
                grantee_items[(item["campaignId"], item["accountId"])] = (
                    item["granted"], item["grantCount"], item.get("capLeft"))
            elif item["sk"] == "TOTALS":
                totals[item["pk"].removeprefix("ACCT#")] = (
                    item.get("lifetimePaid", 0), item.get("lifetimeRefunded", 0))
        assert mode == self.mode
        assert set(pay_items) == set(self.payments)
        for order_id, p in self.payments.items():
            item = pay_items[order_id]
            assert (item["accountId"], item["poolId"], item["provider"], item["amountMicro"], item["status"],
                    item["statusRank"], item["creditedMicro"], item["refundedMicro"], item.get("lotId")) == (
                p.account, "general", p.provider, p.amount, p.status, p.rank, p.credited, p.refunded, p.lot_id), (
                item, p)
        assert event_items == self.pay_events, (event_items, self.pay_events)
        assert totals == {a: (self.lifetime_paid[a], self.lifetime_refunded[a]) for a in self.totals_items}, totals
        assert set(campaign_items) == set(self.campaigns)
        for campaign_id, c in self.campaigns.items():
            item = campaign_items[campaign_id]
            assert (item["status"], item["budget"], item["granted"], item["remaining"], item["grantCount"],
                    item["poolId"], item.get("perAccountCap")) == (
                c.status, c.budget, c.granted, c.remaining, c.count, c.pool, c.cap), (item, c)
        assert grantee_items == {
            (campaign_id, account): (granted, n, None if c.cap is None else c.cap - granted)
            for campaign_id, c in self.campaigns.items() for account, (granted, n) in c.grantees.items()}, (
            grantee_items)

        model_lots = {lot.lot_id: (key, lot) for key, lots in self.lots.items() for lot in lots}
        assert set(lots_seen) == set(model_lots)
        for lot_id, ((account, pool), lot) in model_lots.items():
            item = lots_seen[lot_id]
            assert (item["accountId"], item["poolId"]) == (account, pool), item
            assert (item["original"], item["available"], item["reserved"], item["consumed"], item["sourceType"]) == (
                lot.original, lot.available, lot.reserved, lot.consumed, lot.source), (item, lot)
        assert sum(item["original"] for item in lots_seen.values()) == self.minted_total
        assert shortfalls == {key: (self.debt[key], self.unbacked[key]) for key in self.debt_items}, (
            shortfalls, dict(self.debt), dict(self.unbacked))

        assert set(res_items) == set(self.res)
        for rid, r in self.res.items():
            item = res_items[rid]
            assert (item["status"], item["mode"], item["estimateMicro"]) == (r.status, r.mode, r.estimate), (item, r)
            assert [(a["lotId"], a["amount"]) for a in item.get("allocations") or []] == r.allocations, (item, r)

        count: Counter[Any] = Counter()
        amount: Counter[Any] = Counter()
        shares: dict[str, dict[str, int]] = defaultdict(dict)
        credits: Counter[Any] = Counter()  # per pool: what created lots (deposits, credit adjustments)
        granted: Counter[Any] = Counter()  # per campaign: its grants' deposit entries
        debits: Counter[Any] = Counter()  # per pool: what was consumed or owed (finalizes, refunds, debit adjustments)
        for item in _backend_items(settings.get().ledger_table):
            account = item["accountId"]
            pool_key = (account, item["poolId"])
            if item["entryType"] == "deposit" or (
                    item["entryType"] == "adjustment" and item["metadata"]["direction"] == "credit"):
                credits[pool_key] += item["amountMicro"]
                assert lots_seen[item["lotId"]]["original"] == item["amountMicro"], item  # the entry that made it
                if "campaignId" in (item.get("metadata") or {}):
                    granted[item["metadata"]["campaignId"]] += item["amountMicro"]
            elif item["entryType"] in ("finalize", "refund", "adjustment"):
                debits[pool_key] += item["amountMicro"]
            assert account not in SHARES, item  # system accounts' shares ride on the finalize entries
            assert item["pk"] == f"ACCT#{account}", item
            for system, share in (item.get("revenueShares") or {}).items():
                assert item["entryType"] == "finalize", item  # soft/live finalizes only
                assert share == {"basisPoints": SHARES[system], "amountMicro": share["amountMicro"]}, item
                assert system not in shares[item["reservationId"]], item
                shares[item["reservationId"]][system] = share["amountMicro"]
            count[(account, item["poolId"], item["entryType"])] += 1
            amount[(account, item["poolId"], item["entryType"])] += item["amountMicro"]
        assert count == self.expected.count, (count, self.expected.count)
        assert amount == self.expected.amount, (amount, self.expected.amount)
        # floor(bps * finalized / 10,000) per system account for each soft/live finalize; none in shadow
        assert dict(shares) == self.shares, (dict(shares), self.shares)

        # The raw tables balance on their own, pool by pool, as a reconciler would have them.
        originals: Counter[Any] = Counter()
        spent: Counter[Any] = Counter()
        held: Counter[Any] = Counter()
        for item in lots_seen.values():
            originals[(item["accountId"], item["poolId"])] += item["original"]
            spent[(item["accountId"], item["poolId"])] += item["consumed"]
            held[(item["accountId"], item["poolId"])] += item["reserved"]
        for key, (debt, unbacked) in shortfalls.items():
            spent[key] += debt
            held[key] += unbacked
        holds: Counter[Any] = Counter()
        for item in res_items.values():
            if item["status"] == "pending" and item["mode"] != "shadow":
                holds[(item["accountId"], item["poolId"])] += item["estimateMicro"]
        assert +originals == +credits, (originals, credits)
        assert +spent == +debits, (spent, debits)
        assert +held == +holds, (held, holds)
        assert +granted == +Counter({cid: item["granted"] for cid, item in campaign_items.items()}), granted

    @invariant()
    def core_views_match_model(self) -> None:
        """balances.balance (balances.operator_balance, with the lifetime totals, when they moved)
        and entries.history (every page) of the accounts the last step touched."""
        from billing_core.api.models.ledger import BalanceResponse, OperatorBalanceResponse
        from billing_core.ledger import balances

        self.checks += 1
        for account in sorted(self.dirty | self.dirty_balance | self.dirty_totals):
            if account in self.dirty_totals:
                view = OperatorBalanceResponse.of(balances.operator_balance(account))
                assert (view["lifetimePaidMicro"], view["lifetimeRefundedMicro"]) == (
                    str(self.lifetime_paid[account]), str(self.lifetime_refunded[account])), view
            else:
                view = BalanceResponse.of(balances.balance(account))
            expected_pools = {}
            for pool in POOLS:
                key = (account, pool)
                lots = self.lots[key]
                if not lots and key not in self.debt_items:
                    continue
                live = [lot for lot in lots if lot.expires is None or lot.expires > self.now]
                dead = [lot for lot in lots if lot.expires is not None and lot.expires <= self.now]
                expected_pools[pool] = {
                    "poolId": pool,
                    "availableMicro": str(sum(lot.available for lot in live) - self.debt[key] - self.unbacked[key]),
                    "reservedMicro": str(sum(lot.reserved for lot in lots) + self.unbacked[key]),
                    "consumedMicro": str(sum(lot.consumed for lot in lots)),
                    "expiredMicro": str(sum(lot.available for lot in dead)),
                    "debtMicro": str(self.debt[key]),
                }
            assert view["accountId"] == account
            assert {p["poolId"]: p for p in view["pools"]} == expected_pools, (view, expected_pools, self.now)
            assert view["totalAvailableMicro"] == str(sum(int(p["availableMicro"]) for p in expected_pools.values()))

            if account in self.dirty:
                self._history_matches(account, None)
                if self.checks % 8 == 0:  # and now and then through the by-pool index
                    self._history_matches(account, POOLS[self.checks // 8 % len(POOLS)])
        self.dirty.clear()
        self.dirty_balance.clear()
        self.dirty_totals.clear()

    def _history_matches(self, account: str, pool: str | None) -> None:
        from billing_core.api import pagination
        from billing_core.api.models.ledger import EntryResponse
        from billing_core.ledger import history

        limit = (100, 4, 100, 100)[self.checks % 4]
        seen: list[dict[str, Any]] = []
        pages: list[tuple[int, bool]] = []  # (entries, cursor given) of each page
        cursor = None
        while True:
            listed = history.page(account, pool_id=pool, entry_type=None, limit=limit,
                                  start=pagination.decode(cursor, [pool, None]))
            page = [EntryResponse.of(e) for e in listed.entries]
            cursor = pagination.encode(listed.next_start, [pool, None])
            pages.append((len(page), cursor is not None))
            seen.extend(page)
            if cursor is None:
                break
            assert len(pages) <= len(seen) // limit + 1, pages  # every page with a cursor is full: no loop
        ids = [e["entryId"] for e in seen]
        assert len(ids) == len(set(ids)), ids
        stamps = [e["createdAt"] for e in seen]
        assert stamps == sorted(stamps, reverse=True), "newest first"
        assert all(e["accountId"] == account and (pool is None or e["poolId"] == pool) for e in seen), seen
        got = Counter(e["entryType"] for e in seen)
        want: Counter[Any] = Counter()
        for (acct, p, entry_type), n in self.expected.count.items():
            if acct == account and pool in (None, p):
                want[entry_type] += n
        assert got == want, (account, pool, got, want)
        # Every page but the last is full and has a cursor; the last has none and holds the rest. When
        # the entries fill the pages exactly, the last full page may still give a cursor (to an empty page).
        full, rest = divmod(sum(want.values()), limit)
        exact = [(limit, True)] * (full - 1) + [(limit, False)] if full and not rest else None
        assert pages in ([(limit, True)] * full + [(rest, False)], exact), (pages, limit, want)


def test_ledger_matches_model(_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", boto3.DEFAULT_SESSION)  # the examples share one; put it back
    # Every example creates the template's tables with devserver.template.create_tables; parse the
    # SAM template once rather than once per example (~0.1 s each).
    from devserver import template

    parse = template.load_template
    parsed = parse(TEMPLATE)

    def load_template(path: str | Path = template.DEFAULT_TEMPLATE) -> dict[str, Any]:
        return copy.deepcopy(parsed) if Path(path).resolve() == TEMPLATE else parse(path)

    monkeypatch.setattr(template, "load_template", load_template)
    # Cache the config item as production does (5 s there): set_mode invalidates this process's
    # copy, so every step still sees the mode it set, and the item itself is checked every step.
    monkeypatch.setenv("BILLING_CONFIG_CACHE_SECONDS", "3600")
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            print_blob=True,
            # No explain phase: it re-runs the shrunk failure many times to list covered lines.
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        ),
    )
