"""Handler overhead: a warm reserve+finalize pair through the handlers vs the same DynamoDB calls
replayed bare with a plain boto3 client on the same engine (interleaved, medians). Informational:
the handler pair with DynamoDB answered from canned responses (the handler's own cost), and with
--profile a cProfile of that."""

from __future__ import annotations

import cProfile
import gc
import pstats
from collections.abc import Callable
from typing import Any

import harness
from backend import finalize_body, pair, pair_events, reserve_body
from harness import LambdaContext, Recorder, expect, new_reservation_id, say
from timing import Samples, both, ms, ratio_both, stamp

PAIRS = 200
CANNED_PAIRS = 300
CANNED_WARM = 30
PROFILED_PAIRS = 200
DURATIONS_MS: dict[str, float] = {}  # median CPU time of each handler in the last run (bench/cost.py)


def _swap(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: _swap(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, old, new) for v in value]
    return value


class _CannedClient:
    """Answers the handler's calls with the responses captured from one real pair."""

    def __init__(self, responses: dict[str, dict[str, Any]]) -> None:
        self.responses = responses

    def query(self, **_: Any) -> dict[str, Any]:
        return self.responses["Query"]

    def get_item(self, **_: Any) -> dict[str, Any]:
        return self.responses["GetItem"]

    def transact_write_items(self, **_: Any) -> dict[str, Any]:
        return self.responses["TransactWriteItems"]


def _canned_pair_time(client: Any, token: str, profile: bool) -> Samples:
    from billing_core.store import dynamo

    rid = new_reservation_id()
    with Recorder(client) as rec:
        expect("reserve", reserve_body(rid), 201, token=token)
        expect("finalize", finalize_body(rid), 200, token=token)  # its GetItem saw the pending item
    responses = rec.responses
    reserve_h, finalize_h = harness.handler("reserve"), harness.handler("finalize")
    inputs = [pair_events(token) for _ in range(CANNED_PAIRS + CANNED_WARM)]
    samples = Samples()
    profiler = cProfile.Profile() if profile else None
    saved, dynamo._client = dynamo._client, _CannedClient(responses)
    try:
        for i, (ev_r, ev_f) in enumerate(inputs):
            ctx_r, ctx_f = LambdaContext(), LambdaContext()
            t0 = stamp()
            r1, r2 = reserve_h(ev_r, ctx_r), finalize_h(ev_f, ctx_f)
            t1 = stamp()
            if (r1["statusCode"], r2["statusCode"]) != (201, 200):
                raise RuntimeError(f"canned pair failed: {r1['body']} {r2['body']}")
            if i >= CANNED_WARM:  # the first ones warm up
                samples.add(t0, t1)
        if profiler is not None:
            again = [pair_events(token) for _ in range(PROFILED_PAIRS)]
            profiler.enable()
            for ev_r, ev_f in again:
                reserve_h(ev_r, LambdaContext())
                finalize_h(ev_f, LambdaContext())
            profiler.disable()
    finally:
        dynamo._client = saved
    if profiler is not None:
        say(f"   --profile: {PROFILED_PAIRS} handler pairs with canned DynamoDB responses (the handler's own code):")
        stats = pstats.Stats(profiler, stream=harness.REPORT)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
    return samples


def measure_overhead(client: Any, profile: bool) -> float:
    import boto3
    from botocore import xform_name

    token = harness.internal_token()
    for _ in range(10):
        pair(token)
    from billing_core.ledger import config

    config.invalidate()
    config.current()  # a fresh config cache: the captured pair is the steady-state one
    rid0 = new_reservation_id()
    with Recorder(client) as rec:  # the steady-state calls of one pair, as sent
        expect("reserve", reserve_body(rid0), 201, token=token)
        reserve_calls = rec.calls
        rec.take()
        expect("finalize", finalize_body(rid0), 200, token=token)
        finalize_calls = rec.calls
    template = reserve_calls + finalize_calls
    split = len(reserve_calls)
    bare = boto3.client("dynamodb")  # a plain client on the same in-process engine

    def bare_inputs() -> list[tuple[Callable[..., Any], dict[str, Any]]]:
        rid = new_reservation_id()  # same length as rid0: same request sizes
        return [(getattr(bare, xform_name(op)), _swap(params, rid0, rid)) for op, params in template]

    def handler_inputs() -> tuple[dict, dict, LambdaContext, LambdaContext]:
        return (*pair_events(token), LambdaContext(), LambdaContext())

    reserve_h, finalize_h = harness.handler("reserve"), harness.handler("finalize")
    n = PAIRS
    h_in = [handler_inputs() for _ in range(n)]
    b_in = [bare_inputs() for _ in range(n)]
    for calls in [bare_inputs() for _ in range(10)]:  # warm the bare client
        for method, params in calls:
            method(**params)

    h_res, h_fin, b_res, b_fin = Samples(), Samples(), Samples(), Samples()
    statuses = []

    def run_handler(i: int) -> None:
        ev_r, ev_f, ctx_r, ctx_f = h_in[i]
        t0 = stamp()
        r1 = reserve_h(ev_r, ctx_r)
        t1 = stamp()
        r2 = finalize_h(ev_f, ctx_f)
        t2 = stamp()
        h_res.add(t0, t1)
        h_fin.add(t1, t2)
        statuses.append((r1["statusCode"], r2["statusCode"]))

    def run_bare(i: int) -> None:
        calls = b_in[i]
        t0 = stamp()
        for method, params in calls[:split]:
            method(**params)
        t1 = stamp()
        for method, params in calls[split:]:
            method(**params)
        t2 = stamp()
        b_res.add(t0, t1)
        b_fin.add(t1, t2)

    gc.collect()
    for i in range(n):  # interleaved, alternating which goes first
        if i % 2:
            run_bare(i)
            run_handler(i)
        else:
            run_handler(i)
            run_bare(i)
    bad = [s for s in statuses if s != (201, 200)]
    if bad:
        raise RuntimeError(f"handler pairs failed during timing: {bad[:3]}")

    h_pair, b_pair = h_res + h_fin, b_res + b_fin
    # The clock of the JSON ratios (cpu by default): in-process moto does no I/O, so on an idle
    # machine CPU time is the handler's wall time, and a loaded machine does not inflate it.
    DURATIONS_MS.update(reserve=h_res.median() * 1000, finalize=h_fin.median() * 1000)
    ratio = h_pair.median() / b_pair.median()
    say()
    say(f"== Handler overhead: warm reserve+finalize pair, {n} interleaved iterations, live mode ==")
    say("   handler = the two lambda_handler calls (JWT, body checks, Powertools validation, core, DynamoDB)")
    say("   bare = the same calls replayed with a plain boto3 client on the same engine (captured params,")
    say(f"   new reservation id of the same length): {' + '.join(op for op, _ in template)}")
    say(f"   handler pair  median {both(h_pair)}   (reserve {both(h_res)}; finalize {both(h_fin)})")
    say(f"   bare calls    median {both(b_pair)}   (reserve {both(b_res)}; finalize {both(b_fin)})")
    say(f"   ratio of medians: {ratio_both(h_pair, b_pair)};  of 10%-trimmed means: "
        f"cpu {h_pair.trimmed('cpu') / b_pair.trimmed('cpu'):.3f} / "
        f"wall {h_pair.trimmed('wall') / b_pair.trimmed('wall'):.3f}")
    canned = _canned_pair_time(client, token, profile)
    gap = {c: h_pair.median(c) - b_pair.median(c) for c in ("cpu", "wall")}
    say("   informational: the same handler pair with DynamoDB answered from canned responses (the")
    say(f"   handler's own cost, no engine): {both(canned)};  handler pair - bare calls: "
        f"cpu {ms(gap['cpu'])} / wall {ms(gap['wall'])}")
    return ratio
