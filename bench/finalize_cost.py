"""Finalize cost vs ledger size: the full finalize handler on an account with ~10,000 ledger
entries vs one with ~100, each in its own set of the template's tables in one engine, finalizes
interleaved between them so machine load drifts hit both sizes alike. Informational: the same
without devserver's moto patch."""

from __future__ import annotations

import gc
import time
from typing import Any

import backend
import harness
from backend import ACTUAL, ESTIMATE, POOL, finalize_body, go_live, pair, reserve_body
from harness import LambdaContext, new_reservation_id, say
from timing import Samples, both, ratio_both, stamp

SIZES = (100, 10_000)
FINALIZES = 61  # per ledger size, with the patch
FINALIZES_UNPATCHED = {100: 5, 10_000: 1}  # informational; unpatched moto is slow at 10k
WARM = 3


def _fill_history(client: Any, account: str, entries: int) -> None:
    """Write what entries/2 reserve+finalize cycles leave in the account's partitions, directly
    with BatchWriteItem: its reserve/finalize ledger entries and its finalized reservation items,
    both built by the store modules (store.entries.put, store.reservations.put_pending plus the
    attributes store.reservations.finalize sets). (The revenue-share entries those cycles would
    also have left live in the system accounts' partitions; they are not written: moto stores
    ~1 ms per item and they would not change the account's entry count.)"""
    from billing_core.kernel import clock, settings
    from billing_core.ledger import model
    from billing_core.ledger.model import Allocation, Entry, Reservation
    from billing_core.store import dynamo
    from billing_core.store import entries as entry_store
    from billing_core.store import reservations as reservation_store

    start = clock.now() - entries - 60
    ledger: list[dict[str, Any]] = []
    billing: list[dict[str, Any]] = []
    actor = "internal:svc-bench"
    for i in range(entries):
        cycle, step = divmod(i, 2)
        rid = f"res_fill{cycle:028d}"
        created = clock.iso(start + i)
        if step == 0:
            ledger.append(entry_store.put(Entry(
                account_id=account, pool_id=POOL, entry_type="reserve", amount=ESTIMATE, entry_id=f"{rid}:reserve",
                created_at=created, actor=actor, description="reserve", reservation_id=rid,
                metadata={"backedMicro": ESTIMATE, "expiresAt": clock.iso(start + i + 300)},
            )).body["Item"])
            continue
        ledger.append(entry_store.put(Entry(
            account_id=account, pool_id=POOL, entry_type="finalize", amount=ACTUAL, entry_id=f"{rid}:finalize",
            created_at=created, actor=actor, description="finalize", reservation_id=rid,
            metadata={"actualCostMicro": ACTUAL, "releasedMicro": ESTIMATE - ACTUAL, "overrunMicro": 0,
                      "debtMicro": 0},
        )).body["Item"])
        item = reservation_store.put_pending(Reservation(
            reservation_id=rid, account_id=account, pool_id=POOL, service_id="svc-bench", status="pending",
            mode="live", estimate=ESTIMATE, backed=ESTIMATE,
            allocations=(Allocation(f"BAL#{POOL}#LOT#~#fill", "lot_fill", ESTIMATE),),
            revenue_shares=model.DEFAULT_REVENUE_SHARES, expires_at=clock.iso(start + i + 299),
            expires_at_epoch=int(start + i + 299), request_hash="0" * 64, created_at=clock.iso(start + i - 1),
        )).body["Item"]
        del item["pendingPk"]  # finalized: out of the pending-by-expiry index
        item.update(dynamo.to_item({
            "status": "finalized", "actualCostMicro": ACTUAL, "finalizedMicro": ACTUAL,
            "releasedMicro": ESTIMATE - ACTUAL, "overrunMicro": 0, "finalizedAt": created}))
        billing.append(item)
    for table, items in ((settings.get().ledger_table, ledger), (settings.get().billing_table, billing)):
        for i in range(0, len(items), 25):
            request = {table: [{"PutRequest": {"Item": item}} for item in items[i:i + 25]]}
            while request:
                request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def _timed_finalize(token: str, account: str, into: Samples, *, plain: bool = False,
                    reserves: Samples | None = None) -> None:
    """Reserve (patched moto; timed into `reserves` if given), then time one finalize handler call."""
    from devserver import engine

    rid = new_reservation_id()
    ev = harness.event("reserve", reserve_body(rid, account), token=token)
    t0 = stamp()
    result = harness.handler("reserve")(ev, LambdaContext())
    if reserves is not None:
        reserves.add(t0, stamp())
    if result["statusCode"] != 201:
        raise RuntimeError(f"reserve answered {result['statusCode']}: {result['body']}")
    ev, ctx = harness.event("finalize", finalize_body(rid), token=token), LambdaContext()
    finalize_h = harness.handler("finalize")
    if plain:
        engine.remove_moto_patches()
    try:
        t0 = stamp()
        result = finalize_h(ev, ctx)
        into.add(t0, stamp())
    finally:
        if plain:
            engine.apply_moto_patches()
    if result["statusCode"] != 200:
        raise RuntimeError(f"finalize answered {result['statusCode']}: {result['body']}")


def measure_finalize_cost() -> tuple[float, float]:
    """(ratio 10k/100 with the patch, the same without it); a fresh backend of its own."""
    from billing_core.ledger import bootstrap
    from billing_core.store import keys

    token = harness.internal_token()
    times = {s: Samples() for s in SIZES}
    plain = {s: Samples() for s in SIZES}
    reserves = {s: Samples() for s in SIZES}
    entries: dict[int, list[int]] = {s: [] for s in SIZES}
    tables: dict[int, str] = {}
    say()
    say("== Finalize cost vs ledger size (full finalize handler, live mode) ==")
    with backend.fresh() as client:
        sets = {size: backend.create_table_set(client, str(size)) for size in SIZES}
        for size in SIZES:
            with backend.table_set(sets[size]):
                bootstrap.seed()
                go_live(f"acct-{size}")
                # Each timed cycle adds 2 entries (reserve, finalize), the mint 1, the warm-up 2 each:
                # start low enough that the median patched finalize sees ~`size` entries.
                fill = max(0, size - 1 - 2 * WARM - FINALIZES)
                t0 = time.perf_counter()
                _fill_history(client, f"acct-{size}", fill)
                say(f"   filled acct-{size}: {fill} entries + {fill // 2} reservations "
                    f"in {time.perf_counter() - t0:.1f} s")
                for _ in range(WARM):
                    pair(token, f"acct-{size}")

        def entry_count(size: int) -> int:
            return backend.count(client, TableName=sets[size]["LEDGER_TABLE"], Select="COUNT",
                                 KeyConditionExpression="pk = :pk",
                                 ExpressionAttributeValues={":pk": {"S": keys.entry_pk(f"acct-{size}")}})

        for size in SIZES:
            entries[size].append(entry_count(size))
        gc.collect()
        for i in range(FINALIZES):  # interleaved, alternating which size goes first
            for size in SIZES if i % 2 == 0 else SIZES[::-1]:
                with backend.table_set(sets[size]):
                    _timed_finalize(token, f"acct-{size}", times[size], reserves=reserves[size])
        for size in SIZES:
            entries[size].append(entry_count(size))
        for i in range(max(FINALIZES_UNPATCHED.values())):  # informational: plain moto
            for size in SIZES if i % 2 == 0 else SIZES[::-1]:
                if i < FINALIZES_UNPATCHED[size]:
                    with backend.table_set(sets[size]):
                        _timed_finalize(token, f"acct-{size}", plain[size], plain=True)
        for size in SIZES:
            ledger = backend.count(client, TableName=sets[size]["LEDGER_TABLE"], Select="COUNT")
            billing = backend.count(client, TableName=sets[size]["BILLING_TABLE"], Select="COUNT")
            tables[size] = f"ledger {ledger}, billing {billing}"

    for size in SIZES:
        say(f"   {size:>6} entries: patched median {both(times[size])} over {len(times[size])} finalizes "
            f"(account entries {entries[size][0]}..{entries[size][1]})")
        say(f"   {'':>6}          plain moto median {both(plain[size])} over {len(plain[size])} "
            f"(informational, run after; tables then: {tables[size]} items)")
    ratio = times[10_000].median() / times[100].median()
    plain_ratio = plain[10_000].median() / plain[100].median()
    say(f"   ratio 10k/100 with devserver.engine.apply_moto_patches(): {ratio_both(times[10_000], times[100])}")
    say(f"   informational, without the patch (devserver.engine.remove_moto_patches()): "
        f"{ratio_both(plain[10_000], plain[100])}")
    say(f"   informational, the reserve before each finalize (patched): 100 {both(reserves[100])}, "
        f"10k {both(reserves[10_000])}, ratio {ratio_both(reserves[10_000], reserves[100])}")
    return ratio, plain_ratio
