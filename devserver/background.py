"""The background work AWS would run for the template, run by the local stack itself.

moto fires no EventBridge schedules and no SQS event source mappings, so `BackgroundJobs` does
what Lambda and EventBridge would, from the template (devserver.template), through the same
worker pool the API uses (`runner.invoke_direct`):

* one timer thread per Schedule/ScheduleV2 event: invokes the function with a scheduler-like
  event (or the event's `Input`) every *local* interval;
* one poller thread per SQS event: receives up to BatchSize messages (WaitTimeSeconds=0: moto's
  server runs under one lock, a long poll would hold it), invokes the function with Lambda's SQS
  event, then deletes what succeeded. With ReportBatchItemFailures the messages the function
  lists in `batchItemFailures` stay; if the invocation itself fails nothing is deleted. A message
  left in the queue comes back after its visibility timeout (which the function may have pushed
  out for backoff), and moto moves it to the dead-letter queue once it was received
  maxReceiveCount times (at the next receive, as SQS does).

Local intervals (a dev session is not a day long):

* rate(...) schedules run 6x as often as deployed, clamped to 10..300 s: the sweeper's
  rate(1 minute) runs every 10 s, so an expired reservation is released within seconds;
* cron(...) schedules run every 300 s (the nightly reconciler included); at(...) never.
* BILLING_LOCAL_SCHEDULE_SCALE=F multiplies those defaults (0.1 = ten times as often);
* BILLING_LOCAL_SCHEDULE_SECONDS_<FunctionLogicalId>=N sets one function's interval outright
  (the logical id as written or upper-cased, e.g. ..._SweeperFunction or ..._SWEEPERFUNCTION);
  0 or "off" turns that schedule off;
* BILLING_LOCAL_QUEUE_POLL_SECONDS=N: how often an idle queue is polled (default 0.5 s).

* one poller thread per DynamoDB (stream) event: reads the table's stream from moto (its one
  shard) from TRIM_HORIZON or LATEST, keeps the records the event's FilterCriteria match, and
  invokes the function with Lambda's DynamoDB event, up to BatchSize records, one batch at a time
  (in order, as Lambda does per shard). With ReportBatchItemFailures it goes on after the last
  record before the first one the function lists; if the invocation fails, the same batch is
  retried on the next turn. Polled as often as the queues.

A failing job is logged in one line and retried on its next turn; nothing here stops a thread
but `stop()`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from devserver.engine import REGION
from devserver.template import (
    DEFAULT_TEMPLATE,
    QueueSpec,
    QueueTrigger,
    ScheduleSpec,
    StreamTrigger,
    passes_filters,
    queue_definitions,
    queue_triggers,
    schedules,
    stream_triggers,
)

ACCOUNT_ID = "123456789012"

RATE_SPEEDUP = 6  # locally, a rate() schedule runs this many times as often as deployed...
MIN_LOCAL_SECONDS = 10.0  # ...but not more often than this...
MAX_LOCAL_SECONDS = 300.0  # ...nor less often than this
CRON_LOCAL_SECONDS = 300.0  # a cron() schedule (e.g. nightly) runs this often locally
FLOOR_SECONDS = 0.1  # whatever the knobs say
DEFAULT_POLL_SECONDS = 0.5
SQS_MAX_BATCH = 10  # ReceiveMessage / DeleteMessageBatch ceiling

SCALE_ENV = "BILLING_LOCAL_SCHEDULE_SCALE"
SECONDS_ENV_PREFIX = "BILLING_LOCAL_SCHEDULE_SECONDS_"
POLL_ENV = "BILLING_LOCAL_QUEUE_POLL_SECONDS"

logger = logging.getLogger("devserver.background")

_OFF = {"0", "off", "false", "no", "none", "disabled"}


def _float(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number") from None
    if value != value or value < 0:  # NaN or negative
        raise ValueError(f"{name}={text!r} must be >= 0")
    return value


def default_interval(schedule: ScheduleSpec) -> float | None:
    """The local interval before any knob: see the module docstring. None = not run locally."""
    if schedule.kind == "rate" and schedule.rate_seconds:
        return min(MAX_LOCAL_SECONDS, max(MIN_LOCAL_SECONDS, schedule.rate_seconds / RATE_SPEEDUP))
    if schedule.kind == "cron":
        return CRON_LOCAL_SECONDS
    return None  # at(): a one-time schedule in the future has no local meaning


def local_interval(schedule: ScheduleSpec, environ: Mapping[str, str]) -> tuple[float | None, str]:
    """(seconds between runs locally or None when off, where that number came from)."""
    if not schedule.enabled:
        return None, "disabled in the template"
    for name in (SECONDS_ENV_PREFIX + schedule.function_id, SECONDS_ENV_PREFIX + schedule.function_id.upper()):
        raw = (environ.get(name) or "").strip()
        if raw:
            if raw.lower() in _OFF or _float(raw, name) == 0:
                return None, f"off ({name})"
            return max(FLOOR_SECONDS, _float(raw, name)), name
    interval = default_interval(schedule)
    if interval is None:
        return None, f"{schedule.kind}() schedules do not run locally"
    raw_scale = (environ.get(SCALE_ENV) or "").strip()
    if raw_scale:
        scale = _float(raw_scale, SCALE_ENV)
        if scale == 0:
            return None, f"off ({SCALE_ENV}=0)"
        return max(FLOOR_SECONDS, interval * scale), f"default x {SCALE_ENV}={raw_scale}"
    return interval, "default"


def poll_interval(environ: Mapping[str, str]) -> float:
    raw = (environ.get(POLL_ENV) or "").strip()
    return max(0.05, _float(raw, POLL_ENV)) if raw else DEFAULT_POLL_SECONDS


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# -- events ----------------------------------------------------------------------------------


def scheduled_event(schedule: ScheduleSpec, now: float | None = None) -> dict[str, Any]:
    """What the function receives: the event's Input when the template sets one, else an
    EventBridge-style scheduled event (source "local.scheduler")."""
    if schedule.input is not None:
        return json.loads(schedule.input)
    when = time.gmtime(time.time() if now is None else now)
    name = f"{schedule.function_id}{schedule.event_name}"
    if schedule.event_type == "ScheduleV2":
        resource = f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/default/{name}"
    else:
        resource = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{name}"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "local.scheduler",
        "account": ACCOUNT_ID,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", when),
        "region": REGION,
        "resources": [resource],
        "detail": {},
    }


def _message_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """SQS API message attributes -> the Lambda event's shape (camelCase, binary as base64)."""

    def b64(value: Any) -> str:
        return base64.b64encode(value if isinstance(value, bytes) else str(value).encode()).decode()

    converted = {}
    for name, value in attributes.items():
        entry: dict[str, Any] = {
            "stringListValues": list(value.get("StringListValues") or []),
            "binaryListValues": [b64(v) for v in value.get("BinaryListValues") or []],
            "dataType": value.get("DataType"),
        }
        if "StringValue" in value:
            entry["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            entry["binaryValue"] = b64(value["BinaryValue"])
        converted[name] = entry
    return converted


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Lambda's SQS event for messages as ReceiveMessage returned them."""
    records = []
    for message in messages:
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": {k: str(v) for k, v in (message.get("Attributes") or {}).items()},
            "messageAttributes": _message_attributes(message.get("MessageAttributes") or {}),
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": REGION,
        }
        if message.get("MD5OfMessageAttributes"):
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        records.append(record)
    return {"Records": records}


def failed_message_ids(response: Any, message_ids: list[str], report_batch_item_failures: bool) -> set[str]:
    """The messages Lambda would leave in the queue after a successful invocation.

    Without ReportBatchItemFailures: none. With it: the `batchItemFailures` identifiers; an
    empty or missing list means all succeeded, and a malformed one (not a list, an entry
    without a known itemIdentifier) fails the whole batch, as Lambda does.
    """
    if not report_batch_item_failures or not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures")
    if not failures:
        return set()
    if not isinstance(failures, list):
        return set(message_ids)
    failed = set()
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return set(message_ids)
        failed.add(identifier)
    return failed


def summarize(result: Any) -> str | None:
    """One line about a scheduled run worth logging, or None when it did nothing."""
    if isinstance(result, dict) and {"expired", "lostRaces", "scanned"} <= set(result):  # the sweeper
        parts = []
        if result.get("expired"):
            parts.append(f"expired {_plural(int(result['expired']), 'reservation')}")
        if result.get("lostRaces"):
            parts.append(f"{_plural(int(result['lostRaces']), 'lost race')} (settled meanwhile)")
        if result.get("errors"):
            parts.append(f"{_plural(len(result['errors']), 'error')}: {', '.join(map(str, result['errors'][:3]))}")
        if result.get("complete") is False:
            parts.append("incomplete (the next run carries on)")
        return ", ".join(parts) or None
    if isinstance(result, dict) and {"status", "lotsChecked", "accountsChecked"} <= set(result):  # the reconciler
        parts = [f"status {result['status']}", f"{_plural(int(result['lotsChecked'] or 0), 'lot')}",
                 f"{_plural(int(result['accountsChecked'] or 0), 'account')} checked"]
        for key, label in (("invariantViolationsTotal", "invariant violations"),
                           ("driftedAccountsTotal", "drifted accounts"), ("errorsTotal", "errors"),
                           ("manualReviewItems", "work items in manual review")):
            if result.get(key):
                parts.append(f"{label}: {result[key]}")
        if result.get("complete") is False:
            parts.append("incomplete (time budget)")
        return ", ".join(parts)
    if result is None:
        return None
    text = json.dumps(result, separators=(",", ":"), sort_keys=True, default=str)
    return text if len(text) <= 240 else text[:237] + "..."


def _error_line(exc: BaseException) -> str:
    """'ErrorType: message (at file:line in fn)' from a LambdaInvocationError, or the exception."""
    payload = getattr(exc, "payload", None)
    if not isinstance(payload, dict):
        return f"{type(exc).__name__}: {exc}"
    where = ""
    for line in reversed(payload.get("stackTrace") or []):
        text = str(line).strip()
        if text.startswith("File "):
            first = text.splitlines()[0]
            with contextlib.suppress(ValueError, IndexError):
                file_part, line_part, fn_part = first.split(", ", 2)
                where = f" (at {Path(file_part[6:-1]).name}:{line_part.removeprefix('line ')} {fn_part})"
            break
    message = " ".join(str(payload.get("errorMessage") or "").split())
    if len(message) > 200:
        message = message[:197] + "..."
    return f"{payload.get('errorType')}: {message}{where}"


# -- the jobs --------------------------------------------------------------------------------


class _Job:
    name: str

    def __init__(self, jobs: BackgroundJobs) -> None:
        self.jobs = jobs
        self.thread: threading.Thread | None = None
        self.runs = 0
        self.failures = 0
        self._last_error: tuple[str, float] | None = None

    def describe(self) -> str:
        raise NotImplementedError

    def run(self) -> None:
        raise NotImplementedError

    def log_error(self, what: str, exc: BaseException) -> None:
        """One line per failure; the same failure again within a minute is not repeated."""
        self.failures += 1
        line = f"{self.name}: {what} failed: {_error_line(exc)}"
        now = time.monotonic()
        if self._last_error is not None and self._last_error[0] == line and now - self._last_error[1] < 60:
            return
        self._last_error = (line, now)
        self.jobs.log.warning("[background] %s", line)


class ScheduledJob(_Job):
    def __init__(self, jobs: BackgroundJobs, schedule: ScheduleSpec, interval: float, source: str) -> None:
        super().__init__(jobs)
        self.schedule = schedule
        self.interval = interval
        self.source = source
        self.name = schedule.function_id
        self.last_result: Any = None

    def describe(self) -> str:
        line = f"{self.name}: {self.schedule.expression} -> every {_seconds(self.interval)} locally"
        return line if self.source == "default" else f"{line} ({self.source})"

    def run_once(self) -> Any:
        """Invoke the function once now (also what the timer does); returns its result. The
        function's own log lines are shown only for a run that did something or failed."""
        try:
            result, output = self.jobs.invoke(self.name, scheduled_event(self.schedule))
        except Exception as exc:
            if not self.jobs.stopping:
                self.jobs.echo(getattr(exc, "output", None))
                self.log_error("scheduled run", exc)
            return None
        self.runs += 1
        self.last_result = result
        line = summarize(result)
        if line:
            self.jobs.echo(output)
            self.jobs.log.info("[background] %s: %s", self.name, line)
        return result

    def run(self) -> None:
        next_at = time.monotonic() + self.interval
        while not self.jobs.stop_event.wait(max(0.0, next_at - time.monotonic())):
            self.run_once()
            # Fixed rate; a run longer than the interval skips the runs it overlapped.
            next_at += self.interval
            now = time.monotonic()
            if next_at < now:
                next_at = now + self.interval


@dataclass
class _Batch:
    received: int = 0
    succeeded: int = 0
    failed: int = 0
    invocation_failed: bool = False


class QueueJob(_Job):
    def __init__(
        self, jobs: BackgroundJobs, trigger: QueueTrigger, queue: QueueSpec, url: str, interval: float
    ) -> None:
        super().__init__(jobs)
        self.trigger = trigger
        self.queue = queue
        self.url = url
        self.interval = interval
        self.name = f"{queue.logical_id} -> {trigger.function_id}"
        self.arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue.name}"
        self.messages = 0  # received, in all
        self._client: Any = None

    def describe(self) -> str:
        extras = [f"batch {self.trigger.batch_size}"]
        if self.trigger.report_batch_item_failures:
            extras.append("partial batch failures")
        if self.queue.dead_letter_queue:
            extras.append(f"after {self.queue.max_receive_count} receives -> {self.queue.dead_letter_queue}")
        return f"{self.name} ({', '.join(extras)}), polled every {_seconds(self.interval)}"

    def _sqs(self) -> Any:
        if self._client is None:
            self._client = self.jobs.client_factory()
        return self._client

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.trigger.batch_size:
            got = self._sqs().receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=min(SQS_MAX_BATCH, self.trigger.batch_size - len(messages)),
                WaitTimeSeconds=0,  # never long-poll: the emulation serves one request at a time
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages") or []
            messages += got
            if len(got) < SQS_MAX_BATCH:
                break
        return messages

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_MAX_BATCH):
            chunk = messages[start : start + SQS_MAX_BATCH]
            response = self._sqs().delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            for failure in response.get("Failed") or []:
                self.jobs.log.warning(
                    "[background] %s: could not delete a message: %s", self.name, failure.get("Message")
                )

    def poll_once(self) -> _Batch:
        """Receive one batch, invoke the function with it, delete what succeeded."""
        batch = _Batch()
        messages = self._receive()
        if not messages:
            return batch
        batch.received = len(messages)
        self.messages += len(messages)
        ids = [m["MessageId"] for m in messages]
        try:
            response, output = self.jobs.invoke(self.trigger.function_id, sqs_event(messages, self.arn))
        except Exception as exc:
            batch.invocation_failed = True
            batch.failed = len(messages)
            if not self.jobs.stopping:  # at stop, the runner ends a run in flight: not news
                self.jobs.echo(getattr(exc, "output", None))
                self.log_error(f"{_plural(len(messages), 'message')}, invocation", exc)
                self._log_batch(batch, messages, set(ids))
            return batch
        self.jobs.echo(output)
        self.runs += 1
        failed = failed_message_ids(response, ids, self.trigger.report_batch_item_failures)
        self._delete([m for m in messages if m["MessageId"] not in failed])
        batch.failed = len(failed)
        batch.succeeded = len(messages) - len(failed)
        self._log_batch(batch, messages, failed)
        return batch

    def _log_batch(self, batch: _Batch, messages: list[dict[str, Any]], failed: set[str]) -> None:
        line = _plural(batch.received, "message")
        if batch.succeeded:
            line += f", {batch.succeeded} done"
        if batch.failed:
            line += f", {batch.failed} failed"
            redriven = 0
            if self.queue.dead_letter_queue and self.queue.max_receive_count:
                redriven = sum(
                    1
                    for m in messages
                    if m["MessageId"] in failed
                    and int((m.get("Attributes") or {}).get("ApproximateReceiveCount", 0))
                    >= self.queue.max_receive_count
                )
            if redriven == batch.failed:
                line += f" -> {self.queue.dead_letter_queue} (received {self.queue.max_receive_count} times)"
            elif redriven:
                line += f" -> retry ({redriven} of them -> {self.queue.dead_letter_queue})"
            else:
                line += " -> retry when visible again"
        self.jobs.log.info("[background] %s: %s", self.name, line)

    def run(self) -> None:
        while not self.jobs.stopping:
            full = False
            try:
                batch = self.poll_once()
                full = batch.received >= self.trigger.batch_size and not batch.failed
            except Exception as exc:
                if self.jobs.stopping:
                    return
                self.log_error("poll", exc)
                self._client = None  # a fresh client next time
            if not full and self.jobs.stop_event.wait(self.interval):
                return


def stream_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A DynamoDB Streams API record -> Lambda's event record (creation time as epoch seconds)."""
    data = dict(record.get("dynamodb") or {})
    created = data.get("ApproximateCreationDateTime")
    if hasattr(created, "timestamp"):
        data["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record.get("eventID"),
        "eventName": record.get("eventName"),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": data,
        "eventSourceARN": stream_arn,
    }


class StreamJob(_Job):
    """Lambda's event source mapping on a table's stream, locally (see the module docstring)."""

    def __init__(self, jobs: BackgroundJobs, trigger: StreamTrigger, interval: float) -> None:
        super().__init__(jobs)
        self.trigger = trigger
        self.interval = interval
        self.name = f"{trigger.table_id} stream -> {trigger.function_id}"
        self.records = 0  # handed to the function, in all
        self._clients: tuple[Any, Any] | None = None
        self._stream: tuple[str, str] | None = None  # (stream ARN, shard id)
        self._iterator: str | None = None
        self._resume: str | None = None  # sequence number to go on from after a failure

    def describe(self) -> str:
        extras = [f"batch {self.trigger.batch_size}", f"from {self.trigger.starting_position}"]
        if self.trigger.report_batch_item_failures:
            extras.append("partial batch failures")
        if self.trigger.filters:
            extras.append(f"{_plural(len(self.trigger.filters), 'filter')}")
        return f"{self.name} ({', '.join(extras)}), polled every {_seconds(self.interval)}"

    def _api(self) -> tuple[Any, Any]:
        if self._clients is None:
            factory = self.jobs.service_client
            if factory is None:
                raise RuntimeError("stream triggers need a service_client factory")
            self._clients = (factory("dynamodb"), factory("dynamodbstreams"))
        return self._clients

    def _shard_iterator(self) -> str:
        dynamodb, streams = self._api()
        if self._stream is None:
            arn = dynamodb.describe_table(TableName=self.trigger.table_id)["Table"]["LatestStreamArn"]
            shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
            self._stream = (arn, shard)
        arn, shard = self._stream
        if self._resume is not None:
            got = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER",
                                             SequenceNumber=self._resume)
        else:
            got = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                             ShardIteratorType=self.trigger.starting_position)
        return str(got["ShardIterator"])

    def poll_once(self) -> int:
        """Read up to BatchSize records and hand those the filters keep to the function; the
        number of records read (0: nothing new)."""
        if self._iterator is None:
            self._iterator = self._shard_iterator()
        _, streams = self._api()
        got = streams.get_records(ShardIterator=self._iterator, Limit=self.trigger.batch_size)
        raw = got.get("Records") or []
        if not raw:
            self._iterator = got.get("NextShardIterator") or self._iterator
            return 0
        assert self._stream is not None
        records = [stream_record(r, self._stream[0]) for r in raw]
        kept = [r for r in records if passes_filters(r, self.trigger.filters)]
        if kept:
            try:
                response, output = self.jobs.invoke(self.trigger.function_id, {"Records": kept})
            except Exception as exc:
                # Nothing is checkpointed: the same records again on the next turn.
                self._resume, self._iterator = str(raw[0]["dynamodb"]["SequenceNumber"]), None
                if not self.jobs.stopping:
                    self.jobs.echo(getattr(exc, "output", None))
                    self.log_error(f"{_plural(len(kept), 'record')}, invocation", exc)
                return 0
            self.jobs.echo(output)
            self.runs += 1
            self.records += len(kept)
            sequences = [str(r["dynamodb"]["SequenceNumber"]) for r in kept]
            failed = failed_message_ids(response, sequences, self.trigger.report_batch_item_failures)
            if failed:
                first = min(failed, key=sequences.index)
                self._resume, self._iterator = first, None
                self.jobs.log.info("[background] %s: %s, %d failed -> retry from the first failed", self.name,
                                   _plural(len(kept), "record"), len(failed))
                return 0
        self._resume = None
        self._iterator = got.get("NextShardIterator")
        return len(raw)

    def run(self) -> None:
        while not self.jobs.stopping:
            full = False
            try:
                full = self.poll_once() >= self.trigger.batch_size
            except Exception as exc:
                if self.jobs.stopping:
                    return
                self.log_error("poll", exc)
                self._clients, self._stream, self._iterator = None, None, None  # start afresh next time
            if not full and self.jobs.stop_event.wait(self.interval):
                return


class BackgroundJobs:
    """The template's schedules and queue triggers, run against `runner` (a started
    WorkerPoolRunner or anything with its invoke_direct) with SQS clients from `client_factory`.

    `queue_urls` maps each queue's logical id to its URL (Engine.create_queues). `concurrency`
    caps how many background invocations run at once, so the API keeps workers to itself. Job
    lines go to `log`; what the functions print goes to `out` (stdout), but a scheduled run that
    did nothing stays silent (the sweeper would otherwise log every 10 s).
    """

    def __init__(
        self,
        runner: Any,
        template: str | Path = DEFAULT_TEMPLATE,
        *,
        client_factory: Callable[[], Any] | None = None,
        queue_urls: Mapping[str, str] | None = None,
        service_client: Callable[[str], Any] | None = None,
        environ: Mapping[str, str] | None = None,
        concurrency: int = 2,
        log: logging.Logger | None = None,
        out: TextIO | None = None,
    ) -> None:
        import os
        import sys

        self.runner = runner
        self.template = Path(template)
        self.client_factory = client_factory
        self.service_client = service_client  # "dynamodb" / "dynamodbstreams" clients for stream triggers
        self.queue_urls = dict(queue_urls or {})
        self.environ = dict(os.environ if environ is None else environ)
        self.log = log or logger
        self.out = out or sys.stdout  # where the functions' own output goes
        self.stop_event = threading.Event()
        self._slots = threading.BoundedSemaphore(max(1, concurrency))
        self.jobs: list[_Job] = []
        self.skipped: list[str] = []  # schedules/triggers not run locally, and why

        for schedule in schedules(self.template):
            interval, source = local_interval(schedule, self.environ)
            if interval is None:
                self.skipped.append(f"{schedule.function_id}: {schedule.expression} -> {source}")
                continue
            self.jobs.append(ScheduledJob(self, schedule, interval, source))
        queues = queue_definitions(self.template)
        every = poll_interval(self.environ)
        for trigger in queue_triggers(self.template):
            name = f"{trigger.queue_id} -> {trigger.function_id}"
            if not trigger.enabled:
                self.skipped.append(f"{name}: disabled in the template")
                continue
            if trigger.queue_id not in self.queue_urls:
                raise ValueError(f"{name}: no URL for queue {trigger.queue_id} (create the queues first)")
            if client_factory is None:
                raise ValueError("queue triggers need a client_factory for SQS clients")
            url = self.queue_urls[trigger.queue_id]
            self.jobs.append(QueueJob(self, trigger, queues[trigger.queue_id], url, every))
        for stream in stream_triggers(self.template):
            name = f"{stream.table_id} stream -> {stream.function_id}"
            if not stream.enabled:
                self.skipped.append(f"{name}: disabled in the template")
                continue
            self.jobs.append(StreamJob(self, stream, every))  # its clients come from service_client

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def invoke(self, function_id: str, event: Any) -> tuple[Any, str]:
        """Run one background invocation (at most `concurrency` at once): (result, output)."""
        with self._slots:
            captured = getattr(self.runner, "invoke_captured", None)
            if captured is not None:
                return captured(function_id, event)
            return self.runner.invoke_direct(function_id, event), ""

    def echo(self, output: str | None) -> None:
        """Pass a function's captured output on, as if it had printed it itself."""
        if output:
            self.out.write(output if output.endswith("\n") else output + "\n")
            self.out.flush()

    def describe(self) -> list[str]:
        """One line per job (the banner's), then what is not run locally."""
        return [job.describe() for job in self.jobs] + [f"{line} (not run)" for line in self.skipped]

    def job(self, name: str) -> _Job:
        """A job by function logical id (schedules), "Queue -> Function" / queue id (queue pollers) or
        "Table stream -> Function" (stream pollers)."""
        for job in self.jobs:
            if job.name == name or (isinstance(job, QueueJob) and job.queue.logical_id == name):
                return job
        raise KeyError(name)

    def start(self) -> BackgroundJobs:
        self.stop_event.clear()
        for job in self.jobs:
            job.thread = threading.Thread(
                target=job.run, name=f"devserver-background-{job.name}", daemon=True
            )
            job.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every thread: no new run starts; a run in flight gets `timeout` to finish (then it
        is abandoned: the runner's stop ends it)."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for job in self.jobs:
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.monotonic()))
                if job.thread.is_alive():
                    self.log.warning("[background] %s: still running at stop, abandoned", job.name)
                else:
                    job.thread = None

    def __enter__(self) -> BackgroundJobs:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
