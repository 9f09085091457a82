"""Credit-billing benchmark: DynamoDB calls and write capacity per operation, handler overhead,
cold start and finalize cost vs ledger size. `make bench` runs `.venv/bin/python bench/run.py`.

Everything runs in-process: the real Lambda handlers (functions/*/app.py) are invoked with API
Gateway proxy events against moto's in-process DynamoDB (mock_aws) patched by
devserver.engine.apply_moto_patches(), with the tables created from template.yaml
(devserver.inprocess.billing_backend, the tests' setup). Human-readable lines first; the last
line is one JSON object.

    .venv/bin/python bench/run.py            # the benchmark
    .venv/bin/python bench/run.py --profile  # + cProfile of the handlers' own code (canned DynamoDB)
    .venv/bin/python bench/run.py --clock wall  # JSON ratios from wall-clock medians (default: cpu)

One module per measurement: calls.py (DynamoDB calls per operation), wcu.py (write capacity of
reserve/finalize, priced by capacity.py), overhead.py (handler vs bare calls), finalize_cost.py
(10k vs 100 ledger entries), cold_start.py; backend.py and harness.py are what they share.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

import backend
import calls
import cold_start
import cost
import finalize_cost
import harness
import overhead
import timing
import wcu
from harness import say

GOALS = {"calls": {"reserve": 2, "finalize": 2, "balance": 1, "history_page": 1}, "wcu_per_pair": 20,
         "handler_overhead_ratio": 1.5, "cold_start_ratio": 1.25, "finalize_cost_ratio_10k_vs_100": 1.2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", action="store_true",
                        help="print a cProfile of warm handler pairs (DynamoDB answered from canned responses)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default=timing.CLOCK,
                        help="clock of the JSON ratios (both are printed); default %(default)s")
    args = parser.parse_args()
    timing.CLOCK = args.clock
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # the handlers' EMF lines
        _measure(args)


def _measure(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    harness.apply_env()
    from devserver import engine

    engine.apply_moto_patches()
    say(f"credit-billing benchmark (python {sys.version.split()[0]}, in-process moto with devserver patches)")
    say(f"timings: medians on both clocks; the JSON ratios use the {timing.CLOCK} clock "
        "(cpu = this thread's CPU time, robust to other processes on a shared machine; --clock wall)")

    with backend.fresh() as client:
        backend.go_live(backend.ACCOUNT)
        ddb_calls = calls.measure_calls(client)
        other_calls = calls.measure_other_calls(client)
        wcu_totals = wcu.measure_wcu(client)
        overhead_ratio = overhead.measure_overhead(client, args.profile)
    t_main = time.perf_counter() - started
    cost_ratio, _ = finalize_cost.measure_finalize_cost()
    t_cost = time.perf_counter() - started - t_main
    cold, cold_lean = cold_start.measure_cold_start()
    elapsed = time.perf_counter() - started

    wcu_pair = wcu_totals["reserve"] + wcu_totals["finalize"]
    rru_pair = wcu.READS.get("reserve", 1) + wcu.READS.get("finalize", 1)
    shapes = {op: cost.function_shape(harness.TEMPLATE, fn) for op, fn in
              (("reserve", "ReserveFunction"), ("finalize", "FinalizeFunction"))}
    priced = cost.usd_per_million_pairs(wcu=wcu_pair, rru=rru_pair, durations_ms=overhead.DURATIONS_MS,
                                        shapes=shapes)
    arm = cost.usd_per_million_pairs(wcu=wcu_pair, rru=rru_pair, durations_ms=overhead.DURATIONS_MS,
                                     shapes=shapes, architecture="arm64")
    say()
    say(f"== Cost: one million reserve+finalize pairs, on demand, {cost.REGION} list prices of {cost.PRICES_DATE} ==")
    say(f"   (docs/pricing.md) DynamoDB {wcu_pair} WRU + {rru_pair:g} RRU per pair; Lambda 2 requests at "
        f"{shapes['reserve'].memory_mb} MB {shapes['reserve'].architecture}, billed duration = measured handler "
        f"median ({timing.CLOCK} clock; in-process moto, no network: a floor) {priced['durations_ms']}; "
        "API Gateway REST 2 requests")
    say(f"   usd_per_million_pairs {priced['usd']:.2f} = DynamoDB {priced['dynamodb_usd']:.2f} + Lambda compute "
        f"{priced['lambda_compute_usd']:.2f} + Lambda requests {priced['lambda_requests_usd']:.2f} + API Gateway "
        f"{priced['api_gateway_usd']:.2f}")
    slower = {k: v + 20 for k, v in overhead.DURATIONS_MS.items()}  # 2 calls x 10 ms each
    networked = cost.usd_per_million_pairs(wcu=wcu_pair, rru=rru_pair, shapes=shapes, durations_ms=slower)
    say(f"   informational: on arm64 {arm['usd']:.2f}; with 10 ms of DynamoDB latency per call added to the "
        f"durations: {networked['usd']:.2f}")

    say()
    say("== Goals ==")
    missed = []
    if wcu_pair > GOALS["wcu_per_pair"]:
        missed.append(f"wcu per pair = {wcu_pair} > {GOALS['wcu_per_pair']}")
    for op, goal in GOALS["calls"].items():
        if ddb_calls[op] > goal:
            missed.append(f"ddb_calls.{op} = {ddb_calls[op]} > {goal}: see the call sequence above")
    if overhead_ratio > GOALS["handler_overhead_ratio"]:
        missed.append(f"handler_overhead_ratio = {overhead_ratio:.3f} > {GOALS['handler_overhead_ratio']}: the "
                      "handler's own work (auth, validation, Powertools resolver, core) per pair is large "
                      "relative to in-process moto; see the canned-response line and run with --profile")
    if cold > GOALS["cold_start_ratio"]:
        missed.append(f"cold_start_ratio = {cold:.3f} > {GOALS['cold_start_ratio']} ({cold_lean:.3f} without "
                      "the dev-only packages): the handler imports Powertools' event_handler and Tracer "
                      "(aws_xray_sdk), pydantic (and builds its models at import) and PyJWT on top of boto3; "
                      "see the per-package import times")
    if cost_ratio > GOALS["finalize_cost_ratio_10k_vs_100"]:
        missed.append(f"finalize_cost_ratio_10k_vs_100 = {cost_ratio:.3f} > "
                      f"{GOALS['finalize_cost_ratio_10k_vs_100']}: finalize time still grows with stored data; "
                      "compare the cpu and wall ratios (wall alone is sensitive to machine load)")
    for line in missed:
        say(f"   MISSED {line}")
    if not missed:
        say("   all goals met")
    say(f"   elapsed {elapsed:.1f} s (calls+wcu+overhead {t_main:.1f} s, finalize cost {t_cost:.1f} s, "
        f"cold start {elapsed - t_main - t_cost:.1f} s)")

    say(json.dumps({
        "ddb_calls": ddb_calls,
        "ddb_calls_other": other_calls,
        "wcu": wcu_totals,
        "wcu_per_pair": wcu_pair,
        "usd_per_million_pairs": priced["usd"],
        "usd_per_million_pairs_detail": priced,
        "handler_overhead_ratio": round(overhead_ratio, 3),
        "cold_start_ratio": round(cold, 3),
        **cold_start.OUTSIDE,
        "finalize_cost_ratio_10k_vs_100": round(cost_ratio, 3),
    }))


if __name__ == "__main__":
    main()
