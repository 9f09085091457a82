"""Model-based test of the credit ledger core: mode, mint, reserve, finalize, release, expire.

A hypothesis state machine drives billing_core directly (no HTTP) against a fresh, patched,
in-process moto per example and compares every step with a small model written from the
documented semantics, not from the core's helpers:

* lots: original / available / reserved / consumed, expiry and mint order (draw-down is earliest
  expiry first, then oldest, non-expiring last; expired lots are not drawable);
* per account and pool, soft mode's shortfall: debt (consumption the lots did not cover, settled
  by the next mint) and unbacked holds (the part of pending soft reservations no lot backs; both
  count against availability, the holds also as reserved); the ledger entries, by type and amount;
* reservations: request, mode, status, allocations and the original responses (idempotency);
* revenue shares: floor(bps * finalized / 10,000) per system account for each soft/live finalize,
  carried by the finalize entry (`revenueShares`).

After every step the raw tables must match the model (every lot conserves its original and has
nothing negative, total minted = sum of originals, debt and holds, reservation statuses and allocations,
every ledger entry by account, pool, type and amount, the revenue-share entries), and so must
balances.balance and every page of entries.history of the accounts the step touched.

Time. billing_core.kernel.clock adds its offset (clock.advance) to time.time(). For exact, repeatable
expiry decisions the machine swaps the `time` that clock reads for a stand-in that starts at a
whole second + 0.5 and moves 10 microseconds per call. Every advance is a multiple of 1/8 s, so
the clock is always a point of a 1/8 s grid plus a drift that only grows and stays far below 1/8 s.
Deadlines (lot expiries the machine picks, a reservation's expiresAt in whole seconds) are grid
points, so whether one has passed never depends on how many calls a step happened to make.

Runtime (about 80-95 s for the defaults on one core; mostly moto serializing responses): each
example gets a fresh moto, DynamoDB client and tables, but the SAM template is parsed once, boto3's
default session is kept across examples, and the config item is cached in-process as production
does (set_mode invalidates it). A failing run also spends up to hypothesis' 5 minutes shrinking.
LEDGER_MODEL_EXAMPLES / LEDGER_MODEL_STEPS override the defaults for a longer local search;
settings are otherwise fixed and database-less so CI runs the same kind of search every time.
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
class Expected:
    """The model's ledger entries: (account, pool, type) -> count and summed amount."""

    count: Counter = field(default_factory=Counter)
    amount: Counter = field(default_factory=Counter)

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
    from moto.core import DEFAULT_ACCOUNT_ID
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
        return [dynamo.from_item(i.to_json()["Attributes"]) for i in _backend_table(name).all_items()]  # type: ignore[misc]


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
        return dynamo.from_item(item.to_json()["Attributes"])  # type: ignore[return-value]


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
        clock.time = self.stepping  # type: ignore[attr-defined]
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
        if preferred and data.draw(st.integers(0, 3), label="prefer"):
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
        body = {"account_id": account, "pool_id": pool, "amount": amount, "source_type": source,
                "description": f"model credit {amount}", "expires_at": None if expires is None else clock.iso(expires)}
        key = self._fresh("mint-key") if keyed else None
        result, error = _attempt(lots.mint, _ctx(*ADMIN), **body, idempotency_key=key, model=_models().LotResponse)
        assert error is None, error

        pool_key = (account, pool)
        settle = min(self.debt[pool_key], amount)  # debt first; the lot starts with that part consumed
        expected = {
            "accountId": account, "poolId": pool, "originalMicro": str(amount),
            "availableMicro": str(amount - settle), "reservedMicro": "0", "consumedMicro": str(settle),
            "sourceType": source, "description": body["description"], "expiresAt": body["expires_at"],
            "settledDebtMicro": str(settle),
        }
        assert {k: result[k] for k in expected} == expected, (result, expected)
        event("mint: settles debt" if settle else "mint")
        self.debt[pool_key] -= settle
        self.debt_items.add(pool_key)  # every deposit bumps the pool item's seq
        self.lots[pool_key].append(MLot(lot_id=result["lotId"], seq=self.minted, original=amount,
                                        available=amount - settle, reserved=0, consumed=settle, expires=expires))
        self.minted += 1
        self.minted_total += amount
        self.expected.add(account, pool, "deposit", amount)
        self.dirty.add(account)
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
        reservation or the expiry of the next lot to expire."""
        deadlines: list[float] = []
        if to == "reservation expiry" and self.res:
            deadlines = [self._pick(data, "pending").expires]
        elif to == "lot expiry":
            deadlines = [lot.expires for lots in self.lots.values() for lot in lots
                         if lot.expires is not None and lot.expires + near > self.grid]
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
        assert mode == self.mode

        model_lots = {lot.lot_id: (key, lot) for key, lots in self.lots.items() for lot in lots}
        assert set(lots_seen) == set(model_lots)
        for lot_id, ((account, pool), lot) in model_lots.items():
            item = lots_seen[lot_id]
            assert (item["accountId"], item["poolId"]) == (account, pool), item
            assert (item["original"], item["available"], item["reserved"], item["consumed"]) == (
                lot.original, lot.available, lot.reserved, lot.consumed), (item, lot)
        assert sum(item["original"] for item in lots_seen.values()) == self.minted_total
        assert shortfalls == {key: (self.debt[key], self.unbacked[key]) for key in self.debt_items}, (
            shortfalls, dict(self.debt), dict(self.unbacked))

        assert set(res_items) == set(self.res)
        for rid, r in self.res.items():
            item = res_items[rid]
            assert (item["status"], item["mode"], item["estimateMicro"]) == (r.status, r.mode, r.estimate), (item, r)
            assert [(a["lotId"], a["amount"]) for a in item.get("allocations") or []] == r.allocations, (item, r)

        count: Counter = Counter()
        amount: Counter = Counter()
        shares: dict[str, dict[str, int]] = defaultdict(dict)
        for item in _backend_items(settings.get().ledger_table):
            account = item["accountId"]
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

    @invariant()
    def core_views_match_model(self) -> None:
        """balances.balance and entries.history (every page) of the accounts the last step touched."""
        from billing_core.api.models.ledger import BalanceResponse
        from billing_core.ledger import balances

        self.checks += 1
        for account in sorted(self.dirty | self.dirty_balance):
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

    def _history_matches(self, account: str, pool: str | None) -> None:
        from billing_core.api import pagination
        from billing_core.api.models.ledger import EntryResponse
        from billing_core.ledger import history

        limit = (100, 4, 100, 100)[self.checks % 4]
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            listed = history.page(account, pool_id=pool, entry_type=None, limit=limit,
                                  start=pagination.decode(cursor, [pool, None]))
            page = [EntryResponse.of(e) for e in listed.entries]
            cursor = pagination.encode(listed.next_start, [pool, None])
            has_more = cursor is not None
            assert has_more == (cursor is not None)
            assert len(page) == limit if has_more else len(page) <= limit
            seen.extend(page)
            if not has_more:
                break
        ids = [e["entryId"] for e in seen]
        assert len(ids) == len(set(ids)), ids
        stamps = [e["createdAt"] for e in seen]
        assert stamps == sorted(stamps, reverse=True), "newest first"
        assert all(e["accountId"] == account and (pool is None or e["poolId"] == pool) for e in seen), seen
        got = Counter(e["entryType"] for e in seen)
        want: Counter = Counter()
        for (acct, p, entry_type), n in self.expected.count.items():
            if acct == account and pool in (None, p):
                want[entry_type] += n
        assert got == want, (account, pool, got, want)


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
