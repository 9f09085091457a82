"""Cold start: a fresh interpreter importing a handler (functions/reserve) and creating its
DynamoDB client, vs one importing boto3 and creating a client; interleaved subprocess runs,
medians. Informational: the same without the dev-venv-only packages, and per-package import
self time (-X importtime)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter

import harness
from harness import say
from timing import Samples, both, ms, ratio_both

RUNS = 7
RUNS_LEAN = 3

_HANDLER_SNIPPET = """
import json, sys, time
sys.path[:0] = [{layer!r}, {code!r}]
{hide}
t0, c0 = time.perf_counter(), time.process_time()
import app
from billing_core.store import dynamo
dynamo.client()
print(json.dumps({{"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}}))
"""
_BASELINE_SNIPPET = """
import json, sys, time
{hide}
t0, c0 = time.perf_counter(), time.process_time()
import boto3
boto3.client("dynamodb")
print(json.dumps({{"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}}))
"""
# Installed in this dev venv (moto, SAM CLI) but not in the Lambda layer's requirements; boto3 and
# PyJWT import them opportunistically. "lean" runs hide them (an import of them fails, as in Lambda).
DEV_ONLY_MODULES = ("awscrt", "OpenSSL", "cryptography")


def _snippet(variant: str, lean: bool) -> str:
    hide = f"for _m in {DEV_ONLY_MODULES!r}: sys.modules[_m] = None" if lean else ""
    if variant == "boto3":
        return _BASELINE_SNIPPET.format(hide=hide)
    return _HANDLER_SNIPPET.format(layer=str(harness.LAYER), code=str(harness.ROOT / "functions" / variant),
                                   hide=hide)


# What the Lambda runtime sets in every execution environment. It matters: outside Lambda the
# X-Ray SDK (imported by Powertools' Tracer) builds two botocore clients for centralized sampling
# at import (~100 ms); with LAMBDA_TASK_ROOT set it uses its local sampler, as production does.
LAMBDA_ENV = {
    "LAMBDA_TASK_ROOT": str(harness.ROOT / "functions" / "reserve"),
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "AWS_LAMBDA_FUNCTION_NAME": "ReserveFunction",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/ReserveFunction",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
    "_HANDLER": "app.lambda_handler",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
}
ENVIRONMENTS = ("lambda", "outside")
ENVIRONMENT = "lambda"  # the one the goal is judged on (bench/run.py --cold-start-env)


def _run_fresh(variant: str, *, lean: bool = False, importtime: bool = False,
               environment: str | None = None) -> tuple[dict[str, float], float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(harness.BENCH_ENV)
    if (environment or ENVIRONMENT) == "lambda":
        env.update(LAMBDA_ENV)
    args = [sys.executable, *(("-X", "importtime") if importtime else ()), "-c", _snippet(variant, lean)]
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=harness.ROOT, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"cold start subprocess ({variant}) failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall, proc.stderr


def _import_self_time(stderr: str, own: bool = False) -> Counter[str]:
    """-X importtime output summed as self time per top-level package (seconds); own=True: per
    billing_core module instead."""
    out: Counter[str] = Counter()
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        parts = line.split("|")
        name = parts[2].strip()
        if own:
            if name.startswith("billing_core"):
                out[name] += int(parts[0].split(":")[1]) / 1e6
        else:
            out[name.split(".")[0]] += int(parts[0].split(":")[1]) / 1e6
    return out


def _cold_runs(variants: tuple[str, ...], runs: int, lean: bool,
               environment: str | None = None) -> tuple[dict[str, Samples], dict[str, float]]:
    for variant in variants:  # warm-up (bytecode and page caches), discarded
        _run_fresh(variant, lean=lean, environment=environment)
    inside = {v: Samples() for v in variants}
    process: dict[str, list[float]] = {v: [] for v in variants}
    for i in range(runs):
        for variant in variants if i % 2 == 0 else variants[::-1]:
            got, wall, _ = _run_fresh(variant, lean=lean, environment=environment)
            inside[variant].add((0.0, 0.0), (got["wall"], got["cpu"]))
            process[variant].append(wall)
    return inside, {v: statistics.median(w) for v, w in process.items()}


OUTSIDE: dict[str, float] = {}  # the informational figures of the last run, for bench/run.py's JSON


def measure_cold_start() -> tuple[float, float]:
    """(ratio handler/baseline in a Lambda-like environment, the same without the dev-only packages)."""
    variants = ("boto3", "reserve")
    inside, process = _cold_runs(variants, RUNS, lean=False)
    base, handler = inside["boto3"], inside["reserve"]
    ratio = handler.median() / base.median()
    say()
    say(f"== Cold start: fresh interpreter, {RUNS} runs each (interleaved, after one discarded warm-up), "
        "medians ==")
    say("   environment: what the Lambda runtime sets (LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME, ...,")
    say("   cold_start.LAMBDA_ENV): the X-Ray SDK behind Powertools' Tracer then samples locally instead of")
    say("   building botocore clients for centralized sampling at import, as in production.")
    say("   handler = `import app` (functions/reserve, layer on sys.path) + billing_core.store.dynamo.client():")
    say("   the handler creates its DynamoDB client lazily on the first request; it is counted here.")
    say("   (reserve is the heaviest handler: every handler imports billing_core.api.edge, which pulls in")
    say("   reservations, auth and Powertools; reserve/finalize/release/admin also import the pydantic models)")
    say("   baseline = `import boto3` + boto3.client('dynamodb'). Timed inside the process around the")
    say("   import (perf_counter = wall, process_time = cpu); 'process' = whole subprocess wall time.")
    say(f"   boto3 baseline   import {both(base)}   process {ms(process['boto3'])}")
    say(f"   reserve handler  import {both(handler)}   process {ms(process['reserve'])}")
    say(f"   ratio {ratio_both(handler, base)}   (whole process {process['reserve'] / process['boto3']:.3f})")

    outside, _ = _cold_runs(variants, RUNS_LEAN, lean=False, environment="outside")
    OUTSIDE["cold_start_ratio_outside_lambda"] = round(outside["reserve"].median() / outside["boto3"].median(), 3)
    say(f"   informational, outside a Lambda-like environment (no LAMBDA_TASK_ROOT), {RUNS_LEAN} runs each:")
    say(f"     baseline {both(outside['boto3'])}, handler {both(outside['reserve'])}, "
        f"ratio {ratio_both(outside['reserve'], outside['boto3'])}")

    lean, _ = _cold_runs(variants, RUNS_LEAN, lean=True)
    lean_ratio = lean['reserve'].median() / lean['boto3'].median()
    say(f"   informational, without the dev-venv-only {', '.join(DEV_ONLY_MODULES)} (not in the layer's")
    say(f"   requirements; boto3 and PyJWT import them when present), {RUNS_LEAN} runs each:")
    say(f"     baseline {both(lean['boto3'])}, handler {both(lean['reserve'])}, "
        f"ratio {ratio_both(lean['reserve'], lean['boto3'])}")

    handler_self: dict[str, list[float]] = {}
    base_self: dict[str, list[float]] = {}
    for _ in range(2):
        for variant, into in (("reserve", handler_self), ("boto3", base_self)):
            for name, seconds in _import_self_time(_run_fresh(variant, importtime=True)[2]).items():
                into.setdefault(name, []).append(seconds)
    extra = sorted(((statistics.median(v) - statistics.median(base_self.get(k, [0.0])), k)
                    for k, v in handler_self.items()), reverse=True)
    say("   import self time per top-level package, handler minus baseline (-X importtime, median of 2,")
    say("   inflated by the tracing):")
    say("     " + ", ".join(f"{name} {d * 1000:+.0f} ms" for d, name in extra[:9] if d > 0.002))
    own: dict[str, list[float]] = {}
    for _ in range(2):
        for name, seconds in _import_self_time(_run_fresh("reserve", importtime=True)[2], own=True).items():
            own.setdefault(name, []).append(seconds)
    mine = sorted(((statistics.median(v), k) for k, v in own.items()), reverse=True)
    OUTSIDE["billing_core_import_ms"] = round(sum(v for v, _ in mine) * 1000, 1)
    say(f"   billing_core's own modules imported by the reserve handler: {len(mine)}, self time "
        f"{sum(v for v, _ in mine) * 1000:.0f} ms; the largest:")
    say("     " + ", ".join(f"{name.removeprefix('billing_core.')} {v * 1000:.1f} ms" for v, name in mine[:8]))
    return ratio, lean_ratio
