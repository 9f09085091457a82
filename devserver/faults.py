"""Fault injection for the local stack: real DynamoDB's failure modes, on either engine.

Neither moto nor DynamoDB Local ever refuses a write because a transaction holds the item,
throttles, or loses an answer after committing. `BILLING_LOCAL_FAULTS` makes the stack's Lambda
workers do so, at the rates given, seeded by `BILLING_LOCAL_FAULTS_SEED` (default 0):

    BILLING_LOCAL_FAULTS=conflict=0.05,throttle=0.05,lost_response=0.03,crash_after_write=0.01

* conflict: a write is refused as DynamoDB refuses it when another transaction holds the item:
  TransactWriteItems with TransactionCanceledException (one reason TransactionConflict),
  PutItem/UpdateItem/DeleteItem with TransactionConflictException. Nothing is written; botocore
  does not retry either.
* throttle: any DynamoDB call (reads too) answered ProvisionedThroughputExceededException or
  ThrottlingException. Nothing is written; botocore's standard mode retries it with backoff.
* lost_response: a write is sent and applied, then the caller's SDK sees a read timeout or a
  closed connection, and botocore's own retry sends it again (with the same ClientRequestToken
  for a transaction: DynamoDB Local honours it, moto applies it again and the write's own
  conditions refuse it).
* crash_after_write: a write is sent and applied, then the invocation's process dies (as a
  Lambda runtime killed mid-request); the gateway answers 502 and the runner replaces the worker.

Each fault is one line on the stack's stderr containing `injected fault` (kind, operation, the
worker and a serial number). Faults hit only function invocations, never the stack's own seeding.
How it works: one botocore `before-send` hook on the default boto3 session of each worker
process, so every DynamoDB client the core creates carries it; SQS is never touched.
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FAULTS_ENV = "BILLING_LOCAL_FAULTS"
SEED_ENV = "BILLING_LOCAL_FAULTS_SEED"
KINDS = ("conflict", "throttle", "lost_response", "crash_after_write")
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})
SINGLE_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
CRASH_EXIT_CODE = 137  # what a killed runtime reports
MARKER = "injected fault"


@dataclass(frozen=True)
class FaultSpec:
    """Rates per kind (0..1) and the seed. `bool(spec)` is False when nothing is injected."""

    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0

    def __bool__(self) -> bool:
        return any(rate > 0 for rate in self.rates.values())

    def text(self) -> str:
        return ",".join(f"{kind}={rate:g}" for kind, rate in self.rates.items())


def parse(text: str | None, seed: str | int | None = None) -> FaultSpec:
    """'conflict=0.05,throttle=0.05' -> FaultSpec; ValueError naming what is wrong."""
    rates: dict[str, float] = {}
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        kind, sep, value = part.partition("=")
        kind = kind.strip().lower().replace("-", "_")
        if not sep or kind not in KINDS:
            raise ValueError(f"{FAULTS_ENV}: {part!r} is not kind=rate with a kind of {', '.join(KINDS)}")
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"{FAULTS_ENV}: the rate in {part!r} is not a number") from None
        if not 0 <= rate <= 1:
            raise ValueError(f"{FAULTS_ENV}: the rate in {part!r} must be between 0 and 1")
        rates[kind] = rate
    if sum(rates.values()) > 1:
        raise ValueError(f"{FAULTS_ENV}: the rates add up to more than 1")
    try:
        seed_value = int(seed) if seed not in (None, "") else 0
    except ValueError:
        raise ValueError(f"{SEED_ENV}={seed!r} is not an integer") from None
    return FaultSpec(rates, seed_value)


def from_environment(environ: Mapping[str, str] | None = None) -> FaultSpec:
    environ = os.environ if environ is None else environ
    return parse(environ.get(FAULTS_ENV), environ.get(SEED_ENV))


# -- in a worker process ------------------------------------------------------------------------


class _Injector:
    def __init__(self, spec: FaultSpec, worker: int, out_fd: int) -> None:
        self.spec = spec
        self.worker = worker
        self.out_fd = out_fd
        self.random = random.Random(f"{spec.seed}:{worker}")  # noqa: S311 - reproducible faults, not crypto
        self.active = False
        self.serial = 0
        self.lock = threading.Lock()
        self._http: Any = None

    def choose(self, operation: str) -> str | None:
        with self.lock:
            draw = self.random.random()
        edge = 0.0
        for kind in KINDS:
            rate = self.spec.rates.get(kind, 0.0)
            if kind != "throttle" and operation not in WRITES:
                continue  # reads are only ever throttled
            if kind == "conflict" and operation == "BatchWriteItem":
                continue  # DynamoDB reports no transaction conflict for it
            edge += rate
            if draw < edge:
                return kind
        return None

    def log(self, kind: str, operation: str, detail: str) -> None:
        with self.lock:
            self.serial += 1
            serial = self.serial
        line = f"[devserver] {MARKER}: {kind} on {operation} ({detail}; worker {self.worker}, #{serial})\n"
        os.write(self.out_fd, line.encode())

    def send(self, request: Any) -> Any:
        """Send the signed request ourselves (as botocore would) and return the response."""
        if self._http is None:
            from botocore.httpsession import URLLib3Session

            self._http = URLLib3Session(timeout=30)
        return self._http.send(request)

    def __call__(self, request: Any, event_name: str, **_: Any) -> Any:
        if not self.active:
            return None
        operation = event_name.rsplit(".", 1)[-1]
        kind = self.choose(operation)
        if kind is None:
            return None
        if kind == "throttle":
            code = self.random.choice(("ProvisionedThroughputExceededException", "ThrottlingException"))
            self.log(kind, operation, code)
            return _error_response(request, code, "Throughput exceeds the current capacity for one or more "
                                   "partitions (injected)" if code.startswith("Provisioned") else
                                   "Rate of requests exceeds the allowed throughput (injected)")
        if kind == "conflict":
            if operation == "TransactWriteItems":
                count = len(json.loads(request.body or b"{}").get("TransactItems") or [None])
                which = self.random.randrange(count)
                reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
                           if i == which else {"Code": "None"} for i in range(count)]
                self.log(kind, operation, f"TransactionCanceledException, item {which + 1} of {count}")
                return _error_response(
                    request, "TransactionCanceledException",
                    "Transaction cancelled, please refer cancellation reasons for specific reasons "
                    f"[{', '.join(r['Code'] for r in reasons)}]", CancellationReasons=reasons)
            self.log(kind, operation, "TransactionConflictException")
            return _error_response(request, "TransactionConflictException", "Transaction is ongoing for the item")
        # lost_response, crash_after_write: the write really happens first.
        response = self.send(request)
        if kind == "crash_after_write":
            if response.status_code != 200:
                return response  # nothing was written: no crash to inject
            self.log(kind, operation, "the write committed, the invocation dies")
            os._exit(CRASH_EXIT_CODE)
        from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

        error: Exception
        if self.random.random() < 0.5:
            error = ReadTimeoutError(endpoint_url=request.url)
        else:
            error = ConnectionClosedError(endpoint_url=request.url)
        self.log(kind, operation, f"answered {response.status_code}, the caller sees {type(error).__name__}")
        raise error


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def _error_response(request: Any, code: str, message: str, **extra: Any) -> Any:
    from botocore.awsrequest import AWSResponse

    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **extra}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected-fault",
               "Content-Length": str(len(body))}
    return AWSResponse(request.url, 400, headers, _RawBody(body))


_injector: _Injector | None = None


def install(spec: FaultSpec, worker: int) -> None:
    """In a worker process, before any client exists: hook every DynamoDB request of the default
    boto3 session. Inactive until `activate()`."""
    global _injector
    if not spec or _injector is not None:
        return
    import boto3

    _injector = _Injector(spec, worker, os.dup(2))  # stderr as it is now (invocations may capture fd 2)
    boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("before-send.dynamodb", _injector, unique_id="devserver-faults")


def activate(on: bool) -> None:
    if _injector is not None:
        _injector.active = on
