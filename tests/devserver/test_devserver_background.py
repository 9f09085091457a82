"""Background work of the local stack: queues, SQS triggers and schedules from the template,
the queue pollers' Lambda semantics, the schedule timers, and the real stack end to end (an
expired reservation released by the sweeper, a failed webhook retried through both queues)."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
import uuid
from pathlib import Path

import boto3
import pytest
import requests
import yaml

from devserver.background import (
    BackgroundJobs,
    QueueJob,
    ScheduledJob,
    failed_message_ids,
    local_interval,
    scheduled_event,
    sqs_event,
    summarize,
)
from devserver.engine import serialized_engine
from devserver.runner import WorkerPoolRunner, function_environment
from devserver.template import (
    ScheduleSpec,
    TemplateError,
    function_specs,
    parse_schedule_expression,
    queue_definitions,
    queue_triggers,
    schedules,
)
from tests.support.banner import fake_stack

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
FIXTURE = Path(__file__).parent / "fixtures" / "background" / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """CloudFormation short-form tags as {"!Tag": value}, to read the template independently."""


_CfnLoader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: {
        "!" + suffix: loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
        else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node)
    },
)


def _resources(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_CfnLoader)["Resources"]  # a SafeLoader subclass


def _events(path: Path, *types: str) -> list[tuple[str, str, dict]]:
    return [
        (name, event_name, event.get("Properties") or {})
        for name, resource in _resources(path).items()
        if resource["Type"] == "AWS::Serverless::Function"
        for event_name, event in (resource["Properties"].get("Events") or {}).items()
        if event["Type"] in types
    ]


# -- the template ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [TEMPLATE, FIXTURE], ids=["template.yaml", "fixture"])
def test_queues_come_from_the_template_dead_letter_queues_first(path):
    expected = {name: res["Properties"] for name, res in _resources(path).items() if res["Type"] == "AWS::SQS::Queue"}
    assert expected, "the template defines queues"
    specs = queue_definitions(path)
    assert set(specs) == set(expected)
    order = list(specs)
    for name, props in expected.items():
        spec = specs[name]
        assert spec.name == name
        for attribute in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds"):
            assert spec.attributes.get(attribute) == (str(props[attribute]) if attribute in props else None)
        assert "SqsManagedSseEnabled" not in spec.attributes
        redrive = props.get("RedrivePolicy")
        if redrive:
            target = redrive["deadLetterTargetArn"]["!GetAtt"].split(".")[0]
            assert (spec.dead_letter_queue, spec.max_receive_count) == (target, redrive["maxReceiveCount"])
            assert order.index(target) < order.index(name)
        else:
            assert spec.dead_letter_queue is None


def test_the_billing_template_has_the_work_queue_and_its_dead_letter_queue():
    specs = queue_definitions(TEMPLATE)
    assert list(specs) == ["DeadLetterQueue", "WorkQueue", "WebhookDeadLetterQueue", "WebhookQueue",
                           "EventDispatchFailureQueue"]
    assert (specs["WorkQueue"].dead_letter_queue, specs["WorkQueue"].max_receive_count) == ("DeadLetterQueue", 3)
    assert (specs["WebhookQueue"].dead_letter_queue, specs["WebhookQueue"].max_receive_count) == \
        ("WebhookDeadLetterQueue", 10)


@pytest.mark.parametrize("path", [TEMPLATE, FIXTURE], ids=["template.yaml", "fixture"])
def test_sqs_triggers_come_from_the_template(path):
    expected = {
        (fn, props["Queue"]["!GetAtt"].split(".")[0], props.get("BatchSize", 10),
         "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []))
        for fn, _, props in _events(path, "SQS")
    }
    assert expected
    got = {(t.function_id, t.queue_id, t.batch_size, t.report_batch_item_failures) for t in queue_triggers(path)}
    assert got == expected


def test_billing_template_triggers_and_schedules():
    triggers = {t.function_id: t for t in queue_triggers(TEMPLATE)}
    assert triggers["WorkQueueFunction"].queue_id == "WorkQueue"
    assert triggers["DeadLetterFunction"].queue_id == "DeadLetterQueue"
    assert all(t.batch_size == 10 and t.report_batch_item_failures for t in triggers.values())
    expected = {(fn, props.get("ScheduleExpression") or props.get("Schedule"))
                for fn, _, props in _events(TEMPLATE, "Schedule", "ScheduleV2")}
    found = {s.function_id: s for s in schedules(TEMPLATE)}
    assert {(s.function_id, s.expression) for s in found.values()} == expected
    assert (found["SweeperFunction"].kind, found["SweeperFunction"].rate_seconds) == ("rate", 60)
    assert found["ReconcilerFunction"].kind == "cron"


@pytest.mark.parametrize(
    ("expression", "parsed"),
    [
        ("rate(1 minute)", ("rate", 60)),
        ("rate(5 minutes)", ("rate", 300)),
        ("rate(2 hours)", ("rate", 7200)),
        ("rate(1 day)", ("rate", 86400)),
        ("cron(15 3 * * ? *)", ("cron", None)),
        ("at(2030-01-01T00:00:00)", ("at", None)),
    ],
)
def test_schedule_expressions(expression, parsed):
    assert parse_schedule_expression(expression) == parsed


@pytest.mark.parametrize("expression", ["rate(0 minutes)", "rate(1 second)", "every minute", "cron(15 3 * * ?)"])
def test_bad_schedule_expressions_are_template_errors(expression):
    with pytest.raises(TemplateError):
        parse_schedule_expression(expression)


def _write(tmp_path: Path, resources: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text('AWSTemplateFormatVersion: "2010-09-09"\nTransform: AWS::Serverless-2016-10-31\n'
                    "Resources:\n" + resources)
    return path


def test_a_trigger_on_a_queue_outside_the_template_is_refused(tmp_path):
    path = _write(tmp_path, """
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      Runtime: python3.11
      Events:
        Q:
          Type: SQS
          Properties: {Queue: "arn:aws:sqs:us-east-1:123456789012:SomebodyElses"}
""")
    with pytest.raises(TemplateError, match="not a queue of this template"):
        queue_triggers(path)


def test_a_redrive_cycle_is_refused(tmp_path):
    path = _write(tmp_path, """
  A:
    Type: AWS::SQS::Queue
    Properties: {RedrivePolicy: {deadLetterTargetArn: !GetAtt B.Arn, maxReceiveCount: 1}}
  B:
    Type: AWS::SQS::Queue
    Properties: {RedrivePolicy: {deadLetterTargetArn: !GetAtt A.Arn, maxReceiveCount: 1}}
""")
    with pytest.raises(TemplateError, match="cycle"):
        queue_definitions(path)


# -- local intervals ---------------------------------------------------------------------------


def _schedules():
    return {s.function_id: s for s in schedules(TEMPLATE)}


def test_default_local_intervals():
    found = _schedules()
    assert local_interval(found["SweeperFunction"], {})[0] == 10  # rate(1 minute) / 6
    assert local_interval(found["ReconcilerFunction"], {})[0] == 300  # any cron
    day = ScheduleSpec("F", "E", "ScheduleV2", "rate(1 day)", "rate", 86400)
    assert local_interval(day, {})[0] == 300
    assert local_interval(ScheduleSpec("F", "E", "ScheduleV2", "at(2030-01-01T00:00:00)", "at"), {})[0] is None
    disabled = ScheduleSpec("F", "E", "Schedule", "rate(1 minute)", "rate", 60, enabled=False)
    assert local_interval(disabled, {})[0] is None


def test_local_interval_knobs():
    found = _schedules()
    sweeper, reconciler = found["SweeperFunction"], found["ReconcilerFunction"]
    scale = {"BILLING_LOCAL_SCHEDULE_SCALE": "0.1"}
    assert local_interval(sweeper, scale)[0] == pytest.approx(1.0)
    assert local_interval(reconciler, scale)[0] == pytest.approx(30.0)
    assert local_interval(sweeper, {"BILLING_LOCAL_SCHEDULE_SECONDS_SweeperFunction": "2", **scale})[0] == 2
    assert local_interval(sweeper, {"BILLING_LOCAL_SCHEDULE_SECONDS_SWEEPERFUNCTION": "3"})[0] == 3
    assert local_interval(reconciler, {"BILLING_LOCAL_SCHEDULE_SECONDS_ReconcilerFunction": "0"})[0] is None
    assert local_interval(reconciler, {"BILLING_LOCAL_SCHEDULE_SECONDS_ReconcilerFunction": "off"})[0] is None
    with pytest.raises(ValueError, match="BILLING_LOCAL_SCHEDULE_SCALE"):
        local_interval(sweeper, {"BILLING_LOCAL_SCHEDULE_SCALE": "fast"})


# -- queues in the emulation -------------------------------------------------------------------


def test_engine_creates_the_queues_with_the_redrive_policy_and_moto_redrives_at_receive():
    with serialized_engine() as engine:
        urls = engine.create_queues(TEMPLATE)
        assert set(urls) == {"WorkQueue", "DeadLetterQueue", "WebhookQueue", "WebhookDeadLetterQueue",
                             "EventDispatchFailureQueue"}
        assert urls["WorkQueue"] == f"{engine.url}/123456789012/WorkQueue"
        sqs = engine.client("sqs")
        attributes = sqs.get_queue_attributes(QueueUrl=urls["WorkQueue"], AttributeNames=["All"])["Attributes"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=urls["DeadLetterQueue"], AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        assert (attributes["VisibilityTimeout"], attributes["MessageRetentionPeriod"]) == ("60", "345600")
        assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}

        sqs.send_message(QueueUrl=urls["WorkQueue"], MessageBody='{"itemId": "wk_1"}')
        counts = []
        for _ in range(3):  # received maxReceiveCount times, never deleted (visible again at once)
            [message] = sqs.receive_message(QueueUrl=urls["WorkQueue"], WaitTimeSeconds=0, VisibilityTimeout=0,
                                            AttributeNames=["All"])["Messages"]
            counts.append(message["Attributes"]["ApproximateReceiveCount"])
        assert counts == ["1", "2", "3"]
        assert sqs.receive_message(QueueUrl=urls["WorkQueue"], WaitTimeSeconds=0).get("Messages") is None
        [moved] = sqs.receive_message(QueueUrl=urls["DeadLetterQueue"], WaitTimeSeconds=0)["Messages"]
        assert moved["Body"] == '{"itemId": "wk_1"}'


def test_in_process_backend_has_the_queue_the_tests_environment_names(aws):
    import os

    from billing_core.store import queues

    assert os.environ["WORK_QUEUE_URL"] == "https://sqs.us-east-1.amazonaws.com/123456789012/WorkQueue"
    queues.send(os.environ["WORK_QUEUE_URL"], {"itemId": "wk_2"})
    got = queues.client().receive_message(QueueUrl=os.environ["WORK_QUEUE_URL"], WaitTimeSeconds=0)["Messages"]
    assert json.loads(got[0]["Body"]) == {"itemId": "wk_2"}
    redrive = queues.client().get_queue_attributes(QueueUrl=os.environ["WORK_QUEUE_URL"],
                                                   AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    assert json.loads(redrive)["deadLetterTargetArn"].endswith(":DeadLetterQueue")


# -- the functions' environment ----------------------------------------------------------------


def test_a_variable_naming_a_queue_becomes_its_url():
    specs = function_specs(TEMPLATE)
    url = "http://127.0.0.1:5555/123456789012/WorkQueue"
    shell = {"WORK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/Real", "PATH": "/usr/bin"}
    for name in ("WebhooksFunction", "WorkQueueFunction", "DeadLetterFunction"):
        assert specs[name].template_env["WORK_QUEUE_URL"] == "WorkQueue"  # what SAM resolves !Ref to
        env = function_environment(specs[name], moto_url="http://127.0.0.1:5555", environ=shell,
                                   queue_urls={"WorkQueue": url, "DeadLetterQueue": url + "-dlq"})
        assert env["WORK_QUEUE_URL"] == url
        assert env["BILLING_TABLE"] == "BillingTable"  # tables keep their names
        assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5555"
    plain = function_environment(specs["WebhooksFunction"], moto_url=None, environ={})
    assert plain["WORK_QUEUE_URL"] == "WorkQueue"  # no queues given: as SAM resolves it


# -- events and batch semantics ----------------------------------------------------------------


def _received(body: str, receive_count: int = 1) -> dict:
    return {
        "MessageId": str(uuid.uuid4()),
        "ReceiptHandle": "rh-" + uuid.uuid4().hex,
        "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "Body": body,
        "Attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "1700000000000",
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1700000000001"},
        "MessageAttributes": {"kind": {"StringValue": "payment", "DataType": "String"},
                              "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"}},
    }


def test_sqs_event_is_lambdas_and_powertools_reads_it():
    from aws_lambda_powertools.utilities.data_classes import SQSEvent

    messages = [_received('{"itemId": "wk_3"}', 2)]
    arn = "arn:aws:sqs:us-east-1:123456789012:WorkQueue"
    event = sqs_event(messages, arn)
    [record] = event["Records"]
    assert record["eventSource"] == "aws:sqs" and record["awsRegion"] == "us-east-1"
    assert record["md5OfBody"] == messages[0]["MD5OfBody"]
    assert record["messageAttributes"]["kind"] == {"stringValue": "payment", "stringListValues": [],
                                                   "binaryListValues": [], "dataType": "String"}
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    parsed = next(iter(SQSEvent(json.loads(json.dumps(event))).records))
    assert parsed.message_id == messages[0]["MessageId"]
    assert parsed.receipt_handle == messages[0]["ReceiptHandle"]
    assert parsed.json_body == {"itemId": "wk_3"}
    assert parsed.attributes.approximate_receive_count == "2"
    assert parsed.attributes.sent_timestamp == "1700000000000"
    assert parsed.event_source_arn == arn
    assert parsed.message_attributes["kind"].string_value == "payment"


def test_batch_item_failures_are_read_as_lambda_does():
    ids = ["a", "b", "c"]
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids, True) == {"b"}
    assert failed_message_ids({"batchItemFailures": []}, ids, True) == set()
    assert failed_message_ids(None, ids, True) == set()
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids, False) == set()
    # A malformed report fails the whole batch.
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "zz"}]}, ids, True) == set(ids)
    assert failed_message_ids({"batchItemFailures": [{"id": "b"}]}, ids, True) == set(ids)
    assert failed_message_ids({"batchItemFailures": "b"}, ids, True) == set(ids)


def test_job_lines_summarize_what_a_run_did_and_nothing_when_it_did_nothing():
    idle = {"expired": 0, "lostRaces": 0, "scanned": 0, "errors": [], "complete": True}
    assert summarize(idle) is None
    assert summarize({**idle, "expired": 1, "scanned": 1}) == "expired 1 reservation"
    assert summarize({**idle, "expired": 2, "lostRaces": 1, "complete": False}) == (
        "expired 2 reservations, 1 lost race (settled meanwhile), incomplete (the next run carries on)")
    reconciled = {"status": "ok", "lotsChecked": 3, "accountsChecked": 1, "complete": True,
                  "invariantViolationsTotal": 0, "manualReviewItems": 2}
    assert summarize(reconciled) == "status ok, 3 lots, 1 account checked, work items in manual review: 2"
    assert summarize({"anything": "else"}) == '{"anything":"else"}'


def test_scheduled_event_is_eventbridge_like_or_the_templates_input():
    schedule = _schedules()["SweeperFunction"]
    event = scheduled_event(schedule)
    assert (event["source"], event["detail-type"], event["detail"]) == ("local.scheduler", "Scheduled Event", {})
    arn = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/SweeperFunctionEveryMinute"
    assert event["resources"] == [arn]
    with_input = ScheduleSpec("F", "E", "ScheduleV2", "rate(1 minute)", "rate", 60, input='{"light": true}')
    assert scheduled_event(with_input) == {"light": True}


# -- BackgroundJobs on the fixture app ---------------------------------------------------------


@pytest.fixture(scope="module")
def emulation():
    with serialized_engine(template=None) as engine:
        engine.create_tables(FIXTURE)
        urls = engine.create_queues(FIXTURE)
        with WorkerPoolRunner(FIXTURE, workers=2, moto_url=engine.url, environ={}, queue_urls=urls,
                              log_errors=False) as runner:
            yield engine, runner, urls


def _jobs(emulation, **environ) -> BackgroundJobs:
    engine, runner, urls = emulation
    return BackgroundJobs(runner, FIXTURE, client_factory=lambda: engine.client("sqs"), queue_urls=urls,
                          environ=environ, out=io.StringIO())


def _records(engine, pk: str) -> list[dict]:
    items = engine.client("dynamodb").query(
        TableName="RecordsTable", KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": pk}}
    )["Items"]
    return [json.loads(item.get("record", item.get("event"))["S"]) | {"_env": item.get("queueUrlEnv", {}).get("S")}
            for item in items]


def _depth(engine, url: str) -> tuple[int, int]:
    attributes = engine.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_jobs_are_the_templates_with_their_local_intervals(emulation):
    jobs = _jobs(emulation, BILLING_LOCAL_QUEUE_POLL_SECONDS="0.2")
    described = jobs.describe()
    assert "TickFunction: rate(1 minute) -> every 10 s locally" in described
    assert ("JobsQueue -> ConsumerFunction (batch 5, partial batch failures, after 2 receives -> JobsDeadLetters), "
            "polled every 0.2 s") in described
    assert "JobsDeadLetters -> DeadLettersFunction (batch 10), polled every 0.2 s" in described
    assert any("cron(0 2 * * ? *)" in line and "disabled" in line for line in described)


def test_poller_deletes_what_succeeded_keeps_what_failed_and_redrives(emulation, caplog):
    engine, _, urls = emulation
    jobs = _jobs(emulation)  # not started: each poll is run by hand
    consumer, dead = jobs.job("JobsQueue"), jobs.job("JobsDeadLetters")
    assert isinstance(consumer, QueueJob) and isinstance(dead, QueueJob)
    sqs = engine.client("sqs")
    tag = uuid.uuid4().hex[:8]
    for body in (f"ok-a-{tag}", f"fail-b-{tag}", f"ok-c-{tag}"):
        sqs.send_message(QueueUrl=urls["JobsQueue"], MessageBody=body)

    with caplog.at_level(logging.INFO, logger="devserver.background"):
        batch = consumer.poll_once()
    assert (batch.received, batch.succeeded, batch.failed) == (3, 2, 1)
    assert "JobsQueue -> ConsumerFunction: 3 messages, 2 done, 1 failed -> retry" in caplog.text
    assert sum(_depth(engine, urls["JobsQueue"])) == 1  # the two that succeeded are gone, the failed one stays
    [seen] = _records(engine, f"consumer#ok-a-{tag}")
    assert seen["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:JobsQueue"
    assert seen["attributes"]["ApproximateReceiveCount"] == "1"
    assert seen["_env"] == urls["JobsQueue"]  # JOBS_QUEUE_URL: !Ref JobsQueue -> the moto URL

    # Back after the queue's VisibilityTimeout (1 s); after maxReceiveCount (2) failed receives,
    # moto moves it to the dead-letter queue at the next receive.
    deadline = time.monotonic() + 15
    while sum(_depth(engine, urls["JobsQueue"])):
        assert time.monotonic() < deadline, "the failed message was never redriven"
        time.sleep(0.2)
        assert consumer.poll_once().succeeded == 0
    assert dead.poll_once().succeeded == 1
    [redriven] = _records(engine, f"dead#fail-b-{tag}")
    assert redriven["eventSourceARN"].endswith(":JobsDeadLetters")
    assert _depth(engine, urls["JobsDeadLetters"]) == (0, 0)
    receives = sorted(r["attributes"]["ApproximateReceiveCount"] for r in _records(engine, f"consumer#fail-b-{tag}"))
    assert receives == ["1", "2"]


def test_a_failed_invocation_deletes_nothing_and_the_poller_carries_on(emulation, caplog):
    engine, _, urls = emulation
    jobs = _jobs(emulation)
    consumer = jobs.job("JobsQueue")
    sqs = engine.client("sqs")
    sqs.send_message(QueueUrl=urls["JobsQueue"], MessageBody="crash")
    sqs.send_message(QueueUrl=urls["JobsQueue"], MessageBody="ok-with-the-crash")
    with caplog.at_level(logging.INFO, logger="devserver.background"):
        batch = consumer.poll_once()
    assert batch.invocation_failed and batch.succeeded == 0
    assert sum(_depth(engine, urls["JobsQueue"])) == batch.received == 2  # nothing deleted
    failures = [r.getMessage() for r in caplog.records if "invocation failed" in r.getMessage()]
    assert len(failures) == 1 and "RuntimeError: the consumer crashed (at app.py:" in failures[0]
    assert "\n" not in failures[0]
    # Drain what the crash left behind so later tests see an empty queue.
    dead = jobs.job("JobsDeadLetters")
    deadline = time.monotonic() + 15
    while _depth(engine, urls["JobsQueue"]) != (0, 0) or _depth(engine, urls["JobsDeadLetters"]) != (0, 0):
        assert time.monotonic() < deadline, "the crash's messages were never redriven"
        time.sleep(0.3)
        consumer.poll_once()
        dead.poll_once()
    assert len(_records(engine, "dead#crash")) == 1  # redriven after maxReceiveCount failed invocations


def test_started_jobs_run_the_schedule_and_consume_the_queue_then_stop(emulation, caplog):
    engine, _, urls = emulation
    before = len(_records(engine, "tick"))
    jobs = _jobs(emulation, BILLING_LOCAL_SCHEDULE_SECONDS_TickFunction="0.3",
                 BILLING_LOCAL_QUEUE_POLL_SECONDS="0.1")
    tick = jobs.job("TickFunction")
    assert isinstance(tick, ScheduledJob) and tick.interval == pytest.approx(0.3)
    body = f"ok-started-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.INFO, logger="devserver.background"):
        jobs.start()
        try:
            engine.client("sqs").send_message(QueueUrl=urls["JobsQueue"], MessageBody=body)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (len(_records(engine, "tick")) < before + 3
                                                   or not _records(engine, f"consumer#{body}")):
                time.sleep(0.1)
        finally:
            jobs.stop()
    ticks = _records(engine, "tick")
    assert len(ticks) >= before + 3
    assert {t["source"] for t in ticks} == {"local.scheduler"}
    assert len(_records(engine, f"consumer#{body}")) == 1
    assert all(job.thread is None for job in jobs.jobs)  # every thread ended
    assert "[background] TickFunction: {\"ticked\":1}" in caplog.text
    assert "tick ran" in jobs.out.getvalue()  # the function's own output, passed on
    settled = len(_records(engine, "tick"))
    time.sleep(0.8)
    assert len(_records(engine, "tick")) == settled  # stopped means stopped


def test_a_failing_schedule_is_logged_in_one_line_and_keeps_its_timer(caplog):
    class Failing:
        calls = 0

        def invoke_direct(self, function_id, event):
            Failing.calls += 1
            raise RuntimeError(f"{function_id} is broken")

    jobs = BackgroundJobs(Failing(), FIXTURE, client_factory=lambda: None, queue_urls={"JobsQueue": "u",
                          "JobsDeadLetters": "u"}, environ={"BILLING_LOCAL_SCHEDULE_SECONDS_TickFunction": "0.1"})
    jobs.jobs = [job for job in jobs.jobs if isinstance(job, ScheduledJob)]
    with caplog.at_level(logging.WARNING, logger="devserver.background"):
        jobs.start()
        time.sleep(0.6)
        jobs.stop()
    assert Failing.calls >= 3  # the thread survived every failure
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["[background] TickFunction: scheduled run failed: RuntimeError: TickFunction is broken"]


# -- the real stack --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from devserver.testing import start_stack

    running = start_stack(
        workers=3,
        log_dir=tmp_path_factory.mktemp("background-stack"),
        env={
            "BILLING_LOCAL_SCHEDULE_SECONDS_SweeperFunction": "1",
            "BILLING_LOCAL_SCHEDULE_SECONDS_ReconcilerFunction": "0",
            "BILLING_RETRY_BASE_SECONDS": "1",  # backoff 1, 2, 4, 8 s
            "BILLING_MAX_WORK_ATTEMPTS": "5",  # the webhook's try + 3 work-queue tries + 1 DLQ try
        },
    )
    try:
        yield running
    finally:
        assert running.stop() == 0, running.log()[-3000:]


def _admin(stack) -> dict[str, str]:
    # A fresh admin subject per call: the per-admin rate limit (30/min) must not pace the polling.
    return {"Authorization": f"Bearer {stack.token('admin', 'ops-bg-' + uuid.uuid4().hex[:8])}"}


def _wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_make_run_banner_lists_the_background_jobs(stack):
    log = stack.log()
    assert "SweeperFunction: rate(1 minute) -> every 1 s locally" in log
    assert ("WorkQueue -> WorkQueueFunction (batch 10, partial batch failures, after 3 receives -> DeadLetterQueue)"
            in log)
    assert "ReconcilerFunction: cron(15 3 * * ? *) -> off (BILLING_LOCAL_SCHEDULE_SECONDS_ReconcilerFunction)" in log
    client = boto3.client("sqs", endpoint_url=stack.moto_url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    assert sorted(u.rsplit("/", 1)[1] for u in client.list_queues()["QueueUrls"]) == [
        "DeadLetterQueue", "EventDispatchFailureQueue", "WebhookDeadLetterQueue", "WebhookQueue", "WorkQueue"]
    assert "BillingTable stream -> EventDispatcherFunction (batch 100, from TRIM_HORIZON" in log


def test_the_sweeper_releases_an_expired_reservation_nobody_finalized(stack):
    url, account = stack.url, f"acct-bg-{uuid.uuid4().hex[:10]}"
    assert requests.put(f"{url}/admin/billing/config/mode", json={"mode": "live"}, headers=_admin(stack),
                        timeout=30).status_code == 200
    minted = requests.post(f"{url}/admin/billing/accounts/{account}/mint", headers=_admin(stack), timeout=30,
                           json={"amountMicro": "1000", "sourceType": "deposit", "description": "bg test"})
    assert minted.status_code == 201, minted.text
    reserved = requests.post(f"{url}/api/internal/billing/reserve", timeout=30,
                             headers={"Authorization": f"Bearer {stack.token('internal')}"},
                             json={"accountId": account, "estimatedCostMicro": "400", "ttlSeconds": 1})
    assert reserved.status_code == 201, reserved.text
    reservation_id = reserved.json()["reservationId"]
    user = {"Authorization": f"Bearer {stack.token('user', account)}"}

    def expired():
        entries = requests.get(f"{url}/api/billing/history", headers=user, timeout=30).json()["entries"]
        return [e for e in entries if e["entryType"] == "expire"]

    [entry] = _wait_for(expired, 20, "the sweeper to expire the reservation")
    assert (entry["reservationId"], entry["amountMicro"], entry["actor"]) == (reservation_id, "400", "sweeper")
    [pool] = [p for p in requests.get(f"{url}/api/billing/balance", headers=user, timeout=30).json()["pools"]
              if p["poolId"] == "general"]
    assert (pool["availableMicro"], pool["reservedMicro"]) == ("1000", "0"), pool
    _wait_for(lambda: "[background] SweeperFunction: expired 1 reservation" in stack.log(), 5, "the job's log line")


def test_a_failed_webhook_is_retried_through_both_queues_then_parked(stack):
    body = {"payment_id": f"pay-{uuid.uuid4().hex[:10]}", "payment_status": "finished",
            "order_id": f"ord-unknown-{uuid.uuid4().hex[:10]}", "price_amount": 5, "price_currency": "usd",
            "pay_currency": "btc", "actually_paid": 0.0001}
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"))
    signature = hmac.new(stack.secrets["NOWPAYMENTS_IPN_SECRET"].encode(), raw.encode(), hashlib.sha512).hexdigest()
    answer = requests.post(f"{stack.url}/api/billing/webhooks/nowpayments", data=raw, timeout=30,
                           headers={"x-nowpayments-sig": signature, "Content-Type": "application/json"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["outcome"] == "queued"
    item_id = answer.json()["itemId"]

    def parked():
        listing = requests.get(f"{stack.url}/admin/billing/dlq", params={"status": "manual_review"},
                               headers=_admin(stack), timeout=30)
        assert listing.status_code == 200, listing.text
        return [i for i in listing.json()["items"] if i["itemId"] == item_id]

    [item] = _wait_for(parked, 45, "the work item to be parked for manual review")
    assert item["attempts"] == 5 and item["lastError"].startswith("UNKNOWN_ORDER"), item
    log = stack.log()
    assert "[background] WorkQueue -> WorkQueueFunction: 1 message, 1 failed -> retry when visible again" in log
    assert "[background] WorkQueue -> WorkQueueFunction: 1 message, 1 failed -> DeadLetterQueue" in log
    assert "[background] DeadLetterQueue -> DeadLetterFunction: 1 message, 1 done" in log


# -- the banner and the flag -------------------------------------------------------------------


QUEUE_URLS = {name: f"http://127.0.0.1:5000/123456789012/{name}"
              for name in ("DeadLetterQueue", "WorkQueue", "WebhookDeadLetterQueue", "WebhookQueue")}


def test_banner_lists_the_background_jobs_and_how_to_see_the_sweeper():
    from devserver.__main__ import banner

    jobs = BackgroundJobs(object(), TEMPLATE, client_factory=lambda: None, environ={},
                          queue_urls=QUEUE_URLS)
    text = banner(fake_stack(background=jobs, queues=QUEUE_URLS))
    assert "queues: DeadLetterQueue, WorkQueue, WebhookDeadLetterQueue, WebhookQueue" in text
    assert "  BillingTable stream -> EventDispatcherFunction (batch 100, from TRIM_HORIZON, partial batch failures, " \
        "1 filter), polled every 0.5 s" in text
    assert "  SweeperFunction: rate(1 minute) -> every 10 s locally" in text
    assert "  ReconcilerFunction: cron(15 3 * * ? *) -> every 300 s locally" in text
    assert "  DeadLetterQueue -> DeadLetterFunction (batch 10, partial batch failures), polled every 0.5 s" in text
    assert "BILLING_LOCAL_SCHEDULE_SECONDS_<FunctionId>" in text and "--no-background" in text
    assert '"estimatedCostMicro": "1000000", "ttlSeconds": 5}' in text

    off = banner(fake_stack(queues=QUEUE_URLS))
    assert "Background jobs: off (--no-background)" in off
    assert "ttlSeconds" not in off


def test_no_background_flag():
    from devserver.__main__ import _parser

    assert _parser().parse_args(["--no-background"]).no_background is True
    assert _parser().parse_args([]).no_background is False
