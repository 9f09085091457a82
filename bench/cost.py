"""The on-demand cost of one million reserve+finalize pairs, in US dollars, from what the
benchmark measured (write and read units per pair, handler durations) and the list prices in
docs/pricing.md (us-east-1; the same numbers are kept here, with their date).

    DynamoDB   write request units x WRU price + read request units x RRU price
    Lambda     2 requests x request price + GB-seconds (template MemorySize x billed duration,
               1 ms granularity) x GB-second price of the template's architecture
    API Gateway 2 REST API requests x request price

Excluded: storage, PITR backups, data transfer, CloudWatch logs/metrics, X-Ray traces, the
config item re-read (one GetItem per 5 s per execution environment) and the scheduled jobs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRICES_DATE = "2025-06 (DynamoDB on-demand after the November 2024 reduction)"
REGION = "us-east-1"
PRICES = {
    "dynamodb_write_request_unit": 0.625 / 1e6,
    "dynamodb_read_request_unit": 0.125 / 1e6,
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second_x86_64": 0.0000166667,
    "lambda_gb_second_arm64": 0.0000133334,
    "api_gateway_rest_request": 3.50 / 1e6,  # first 333 million requests a month
}


@dataclass(frozen=True)
class FunctionShape:
    memory_mb: int
    architecture: str


def function_shape(template: Path, logical_id: str) -> FunctionShape:
    from devserver.template import load_template

    doc: dict[str, Any] = load_template(template)
    globals_ = (doc.get("Globals") or {}).get("Function") or {}
    props = (doc.get("Resources") or {}).get(logical_id, {}).get("Properties") or {}
    memory = int(props.get("MemorySize") or globals_.get("MemorySize") or 128)
    arch = (props.get("Architectures") or globals_.get("Architectures") or ["x86_64"])[0]
    return FunctionShape(memory, arch)


def usd_per_million_pairs(*, wcu: int, rru: float, durations_ms: dict[str, float],
                          shapes: dict[str, FunctionShape], architecture: str | None = None) -> dict[str, Any]:
    """A breakdown and the total; `architecture` overrides the template's (what-if)."""
    million = 1e6
    dynamodb = million * (wcu * PRICES["dynamodb_write_request_unit"] + rru * PRICES["dynamodb_read_request_unit"])
    gb_seconds = 0.0
    compute = 0.0
    for op, duration in durations_ms.items():
        shape = shapes[op]
        arch = architecture or shape.architecture
        seconds = math.ceil(duration) / 1000  # Lambda bills in 1 ms increments
        gbs = shape.memory_mb / 1024 * seconds
        gb_seconds += gbs
        compute += million * gbs * PRICES[f"lambda_gb_second_{arch}"]
    requests = million * len(durations_ms) * PRICES["lambda_request"]
    gateway = million * len(durations_ms) * PRICES["api_gateway_rest_request"]
    total = dynamodb + compute + requests + gateway
    return {"usd": round(total, 2), "dynamodb_usd": round(dynamodb, 2), "lambda_compute_usd": round(compute, 2),
            "lambda_requests_usd": round(requests, 2), "api_gateway_usd": round(gateway, 2),
            "gb_seconds_per_pair": round(gb_seconds, 6), "wcu_per_pair": wcu, "rru_per_pair": rru,
            "durations_ms": {k: round(v, 2) for k, v in durations_ms.items()}}
