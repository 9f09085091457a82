"""Everything the local stack knows about the app comes from template.yaml, read here.

Tables, queues (with their redrive policies), functions (CodeUri, Handler, layers, Globals +
function environment), the functions' SQS triggers and schedules and, in gateway.py, the routes
are derived from the SAM template (through SAM CLI's own loaders where SAM resolves them), so
there is no second hand-kept definition that could drift from what `sam deploy` creates.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"

TABLE_TYPE = "AWS::DynamoDB::Table"

# CreateTable parameters copied from a table's Properties, as they are (same shape in CFN and the API).
_TABLE_PROPERTIES = (
    "KeySchema",
    "AttributeDefinitions",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "ProvisionedThroughput",
    "StreamSpecification",
)


class TemplateError(ValueError):
    """The template has something the local stack cannot reproduce."""


def load_template(template: str | Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """The template as a dict; SAM's YAML loader keeps !Ref/!GetAtt/!Sub as intrinsic dicts."""
    from samcli.yamlhelper import yaml_parse

    return yaml_parse(Path(template).read_text(encoding="utf-8"))


def _reject_intrinsics(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key.startswith("Fn::") or key == "Ref":
                raise TemplateError(f"{where}: intrinsic {key} cannot be resolved locally")
            _reject_intrinsics(inner, where)
    elif isinstance(value, list):
        for inner in value:
            _reject_intrinsics(inner, where)


def table_definitions(template: str | Path = DEFAULT_TEMPLATE) -> dict[str, dict[str, Any]]:
    """CreateTable keyword arguments for every AWS::DynamoDB::Table, keyed by logical id.

    The table name is the logical id: that is what SAM CLI resolves `!Ref BillingTable` to
    locally, so the functions' BILLING_TABLE/LEDGER_TABLE point at these tables unchanged.
    A "TimeToLive" key carries TimeToLiveSpecification (a separate API call).
    """
    resources = load_template(template).get("Resources") or {}
    tables: dict[str, dict[str, Any]] = {}
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") != TABLE_TYPE:
            continue
        props = resource.get("Properties") or {}
        spec: dict[str, Any] = {"TableName": logical_id}
        for name in _TABLE_PROPERTIES:
            if name in props:
                _reject_intrinsics(props[name], f"{logical_id}.{name}")
                spec[name] = props[name]
        spec.setdefault("BillingMode", "PROVISIONED" if "ProvisionedThroughput" in spec else "PAY_PER_REQUEST")
        if "StreamSpecification" in spec:
            # CloudFormation gives only the view type; the API also wants StreamEnabled.
            spec["StreamSpecification"] = {"StreamEnabled": True, **spec["StreamSpecification"]}
        if "KeySchema" not in spec or "AttributeDefinitions" not in spec:
            raise TemplateError(f"{logical_id}: KeySchema and AttributeDefinitions are required")
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            _reject_intrinsics(ttl, f"{logical_id}.TimeToLiveSpecification")
            spec["TimeToLive"] = ttl
        tables[logical_id] = spec
    return tables


def create_tables(dynamodb_client: Any, template: str | Path = DEFAULT_TEMPLATE, *,
                  only: set[str] | None = None) -> list[str]:
    """Create every template table (or those named in `only`) with `dynamodb_client` (server
    endpoint, mock_aws or DynamoDB Local); return names."""
    names = []
    for name, spec in table_definitions(template).items():
        if only is not None and name not in only:
            continue
        kwargs = {k: v for k, v in spec.items() if k != "TimeToLive"}
        dynamodb_client.create_table(**kwargs)
        ttl = spec.get("TimeToLive")
        if ttl and ttl.get("Enabled"):
            dynamodb_client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        names.append(name)
    return names


@dataclass(frozen=True)
class FunctionSpec:
    """One AWS::Serverless::Function as the local runner needs it (picklable: sent to workers)."""

    logical_id: str
    code_dir: str
    handler: str
    timeout: int
    memory: int
    runtime: str | None
    layer_dirs: tuple[str, ...]
    template_env: dict[str, str] = field(default_factory=dict)

    @property
    def handler_file(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return Path(self.code_dir, *module.split(".")).with_suffix(".py")

    @property
    def handler_attr(self) -> str:
        return self.handler.rpartition(".")[2]


def load_stacks(template: str | Path = DEFAULT_TEMPLATE, parameter_overrides: dict[str, str] | None = None):
    """SAM CLI's view of the template (Globals merged, intrinsics resolved the way `sam local` does)."""
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    with quiet_sam():
        stacks, _ = SamLocalStackProvider.get_stacks(str(template), parameter_overrides=parameter_overrides)
    return stacks


@contextlib.contextmanager
def quiet_sam() -> Iterator[None]:
    """SAM's template validation uses deprecated jsonschema/samtranslator APIs; not ours to fix."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _layer_dir(codeuri: str) -> str:
    # A built Python layer puts packages under python/; the source layout here has them at the root.
    python_dir = Path(codeuri, "python")
    return str(python_dir if python_dir.is_dir() else Path(codeuri))


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, dict | list):
        return ""  # an unresolved intrinsic, as SAM CLI does
    return str(value)


def function_specs(
    template: str | Path = DEFAULT_TEMPLATE, parameter_overrides: dict[str, str] | None = None
) -> dict[str, FunctionSpec]:
    """Every function of the template keyed by logical id, resolved by SamFunctionProvider."""
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider

    stacks = load_stacks(template, parameter_overrides)
    with quiet_sam():
        provider = SamFunctionProvider(stacks)
    specs: dict[str, FunctionSpec] = {}
    for function in provider.get_all():
        if function.inlinecode:
            raise TemplateError(f"{function.name}: inline code is not supported locally")
        if not function.codeuri or not function.handler:
            raise TemplateError(f"{function.name}: needs CodeUri and Handler")
        variables = (function.environment or {}).get("Variables") or {}
        layer_dirs = tuple(
            _layer_dir(layer.codeuri) for layer in function.layers or () if getattr(layer, "codeuri", None)
        )
        specs[function.name] = FunctionSpec(
            logical_id=function.name,
            code_dir=str(function.codeuri),
            handler=function.handler,
            timeout=int(function.timeout or 3),
            memory=int(function.memory or 128),
            runtime=function.runtime,
            layer_dirs=layer_dirs,
            template_env={str(k): _stringify(v) for k, v in variables.items()},
        )
    return specs


# -- queues, queue triggers and schedules -----------------------------------------------------

QUEUE_TYPE = "AWS::SQS::Queue"
FUNCTION_TYPE = "AWS::Serverless::Function"

# CreateQueue attributes copied from a queue's Properties (same names in CFN and the API).
# Encryption (SqsManagedSseEnabled, KmsMasterKeyId, KmsDataKeyReusePeriodSeconds), QueueName,
# RedriveAllowPolicy and Tags are not reproduced locally; RedrivePolicy is handled apart.
_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)


@dataclass(frozen=True)
class QueueSpec:
    """One AWS::SQS::Queue. Named by its logical id (`!Ref WorkQueue` is "WorkQueue" locally;
    the runner turns that into the queue's URL), plus ".fifo" for a FIFO queue."""

    logical_id: str
    name: str
    attributes: dict[str, str] = field(default_factory=dict)
    dead_letter_queue: str | None = None  # logical id of RedrivePolicy.deadLetterTargetArn
    max_receive_count: int | None = None


@dataclass(frozen=True)
class QueueTrigger:
    """An SQS event of a function: Lambda's event source mapping, which the local stack polls."""

    function_id: str
    event_name: str
    queue_id: str
    batch_size: int = 10
    report_batch_item_failures: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class ScheduleSpec:
    """A Schedule (EventBridge rule) or ScheduleV2 (EventBridge Scheduler) event of a function.

    `kind` is "rate", "cron" or "at"; `rate_seconds` is the deployed period of a rate schedule
    (None for cron/at: the local stack runs a cron schedule on a fixed local interval instead).
    `input` is the event's Input (a JSON string) when the template sets one.
    """

    function_id: str
    event_name: str
    event_type: str
    expression: str
    kind: str
    rate_seconds: int | None = None
    input: str | None = None
    enabled: bool = True


_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$", re.IGNORECASE)
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def parse_schedule_expression(expression: str) -> tuple[str, int | None]:
    """`rate(N minute(s)|hour(s)|day(s))` -> ("rate", seconds); `cron(6 fields)` -> ("cron", None);
    `at(yyyy-mm-ddThh:mm:ss)` -> ("at", None). Anything else is a TemplateError."""
    text = expression.strip()
    match = _RATE.match(text)
    if match:
        value = int(match.group(1))
        if value < 1:
            raise TemplateError(f"{expression!r}: a rate must be at least 1")
        return "rate", value * _UNIT_SECONDS[match.group(2).lower().rstrip("s")]
    if text.startswith("cron(") and text.endswith(")"):
        if len(text[5:-1].split()) != 6:
            raise TemplateError(f"{expression!r}: a cron expression has 6 fields")
        return "cron", None
    if text.startswith("at(") and text.endswith(")"):
        return "at", None
    raise TemplateError(f"{expression!r} is not a rate(), cron() or at() expression")


def _resources(template: str | Path) -> dict[str, Any]:
    return load_template(template).get("Resources") or {}


def _queue_reference(value: Any, queues: set[str], where: str, *, attribute: str = "Arn") -> str:
    """The logical id of the template queue that `value` (!GetAtt Q.Arn, or an ARN/URL naming
    a template queue) refers to."""
    target: str | None = None
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "Fn::GetAtt":
            parts = inner.split(".", 1) if isinstance(inner, str) else list(inner)
            if len(parts) == 2 and parts[1] == attribute:
                target = str(parts[0])
        elif key == "Ref" and attribute == "QueueUrl":
            target = str(inner)
    elif isinstance(value, str) and value:
        target = value.rsplit(":", 1)[-1].rsplit("/", 1)[-1].removesuffix(".fifo")
    if target not in queues:
        raise TemplateError(f"{where}: {value!r} is not a queue of this template (locally only those exist)")
    return target  # type: ignore[return-value]


def queue_definitions(template: str | Path = DEFAULT_TEMPLATE) -> dict[str, QueueSpec]:
    """Every AWS::SQS::Queue keyed by logical id, in creation order (a dead-letter queue before
    the queues that redrive to it)."""
    resources = _resources(template)
    found = {
        logical_id: resource.get("Properties") or {}
        for logical_id, resource in resources.items()
        if isinstance(resource, dict) and resource.get("Type") == QUEUE_TYPE
    }
    specs: dict[str, QueueSpec] = {}
    for logical_id, props in found.items():
        attributes: dict[str, str] = {}
        for name in _QUEUE_ATTRIBUTES:
            if name in props:
                _reject_intrinsics(props[name], f"{logical_id}.{name}")
                attributes[name] = _stringify(props[name])
        fifo = attributes.get("FifoQueue") == "true"
        dead_letter_queue = max_receive_count = None
        redrive = props.get("RedrivePolicy")
        if redrive:
            if not isinstance(redrive, dict):
                raise TemplateError(f"{logical_id}.RedrivePolicy must be a mapping")
            dead_letter_queue = _queue_reference(
                redrive.get("deadLetterTargetArn"), set(found), f"{logical_id}.RedrivePolicy.deadLetterTargetArn"
            )
            _reject_intrinsics(redrive.get("maxReceiveCount"), f"{logical_id}.RedrivePolicy.maxReceiveCount")
            try:
                max_receive_count = int(redrive["maxReceiveCount"])
            except (KeyError, TypeError, ValueError):
                raise TemplateError(f"{logical_id}.RedrivePolicy needs an integer maxReceiveCount") from None
        specs[logical_id] = QueueSpec(
            logical_id=logical_id,
            name=logical_id + (".fifo" if fifo else ""),
            attributes=attributes,
            dead_letter_queue=dead_letter_queue,
            max_receive_count=max_receive_count,
        )
    ordered: dict[str, QueueSpec] = {}

    def visit(logical_id: str, path: tuple[str, ...]) -> None:
        if logical_id in ordered:
            return
        if logical_id in path:
            raise TemplateError(f"redrive cycle: {' -> '.join((*path, logical_id))}")
        target = specs[logical_id].dead_letter_queue
        if target is not None:
            visit(target, (*path, logical_id))
        ordered[logical_id] = specs[logical_id]

    for logical_id in specs:
        visit(logical_id, ())
    return ordered


def create_queues(sqs_client: Any, template: str | Path = DEFAULT_TEMPLATE) -> dict[str, str]:
    """Create every template queue with `sqs_client` (server endpoint or mock_aws), dead-letter
    queues first; return {logical id: queue URL}."""
    import json

    urls: dict[str, str] = {}
    arns: dict[str, str] = {}
    for logical_id, spec in queue_definitions(template).items():
        attributes = dict(spec.attributes)
        if spec.dead_letter_queue is not None:
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": arns[spec.dead_letter_queue], "maxReceiveCount": spec.max_receive_count}
            )
        url = sqs_client.create_queue(QueueName=spec.name, Attributes=attributes)["QueueUrl"]
        urls[logical_id] = url
        arns[logical_id] = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
    return urls


def _function_events(template: str | Path) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(function id, event name, event type, event properties) for every function event."""
    for logical_id, resource in _resources(template).items():
        if not isinstance(resource, dict) or resource.get("Type") != FUNCTION_TYPE:
            continue
        for event_name, event in ((resource.get("Properties") or {}).get("Events") or {}).items():
            if isinstance(event, dict):
                yield logical_id, str(event_name), str(event.get("Type")), event.get("Properties") or {}


def _enabled(props: dict[str, Any], where: str) -> bool:
    for name in ("Enabled", "State"):
        if name in props:
            _reject_intrinsics(props[name], f"{where}.{name}")
    if "State" in props:
        return str(props["State"]).upper() == "ENABLED"
    return _stringify(props.get("Enabled", True)).lower() != "false"


def queue_triggers(template: str | Path = DEFAULT_TEMPLATE) -> list[QueueTrigger]:
    """Every SQS event of every function (the event source mappings Lambda would poll)."""
    queues = set(queue_definitions(template))
    triggers = []
    for function_id, event_name, event_type, props in _function_events(template):
        if event_type != "SQS":
            continue
        where = f"{function_id}.Events.{event_name}"
        queue_id = _queue_reference(props.get("Queue"), queues, f"{where}.Queue")
        for name in ("BatchSize", "FunctionResponseTypes"):
            _reject_intrinsics(props.get(name), f"{where}.{name}")
        batch_size = int(props.get("BatchSize") or 10)
        if batch_size < 1:
            raise TemplateError(f"{where}.BatchSize must be >= 1")
        triggers.append(
            QueueTrigger(
                function_id=function_id,
                event_name=event_name,
                queue_id=queue_id,
                batch_size=batch_size,
                report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or ()),
                enabled=_enabled(props, where),
            )
        )
    return triggers


@dataclass(frozen=True)
class StreamTrigger:
    """A DynamoDB event of a function: Lambda's event source mapping on a table's stream, which the
    local stack polls. `filters` are the FilterCriteria patterns (parsed JSON), matched locally too."""

    function_id: str
    event_name: str
    table_id: str
    batch_size: int = 100
    starting_position: str = "TRIM_HORIZON"
    report_batch_item_failures: bool = False
    enabled: bool = True
    filters: tuple[Any, ...] = ()


def stream_triggers(template: str | Path = DEFAULT_TEMPLATE) -> list[StreamTrigger]:
    """Every DynamoDB (stream) event of every function. The stream must be `!GetAtt <Table>.StreamArn`
    of a template table that has a StreamSpecification."""
    import json

    tables = table_definitions(template)
    triggers = []
    for function_id, event_name, event_type, props in _function_events(template):
        if event_type != "DynamoDB":
            continue
        where = f"{function_id}.Events.{event_name}"
        stream = props.get("Stream")
        table_id = None
        if isinstance(stream, dict) and set(stream) == {"Fn::GetAtt"}:
            inner = stream["Fn::GetAtt"]
            parts = inner.split(".", 1) if isinstance(inner, str) else list(inner)
            if len(parts) == 2 and parts[1] == "StreamArn":
                table_id = str(parts[0])
        if table_id not in tables or "StreamSpecification" not in tables[table_id]:
            raise TemplateError(f"{where}.Stream: {stream!r} is not the stream of a template table with one")
        for name in ("BatchSize", "StartingPosition", "FunctionResponseTypes", "FilterCriteria"):
            _reject_intrinsics(props.get(name), f"{where}.{name}")
        position = str(props.get("StartingPosition") or "TRIM_HORIZON")
        if position not in ("TRIM_HORIZON", "LATEST"):
            raise TemplateError(f"{where}.StartingPosition must be TRIM_HORIZON or LATEST locally")
        filters = []
        for entry in ((props.get("FilterCriteria") or {}).get("Filters") or []):
            try:
                filters.append(json.loads(entry["Pattern"]))
            except (KeyError, TypeError, ValueError):
                raise TemplateError(f"{where}.FilterCriteria: each filter needs a JSON Pattern") from None
        triggers.append(StreamTrigger(
            function_id=function_id, event_name=event_name, table_id=table_id,
            batch_size=int(props.get("BatchSize") or 100), starting_position=position,
            report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or ()),
            enabled=_enabled(props, where), filters=tuple(filters)))
    return triggers


def _matches(value: Any, pattern: Any) -> bool:
    """Lambda's event filtering, the subset the template uses: nested objects; a list of matchers
    (any may match): a literal, {"prefix": str}, {"exists": bool}, {"anything-but": [...]}."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        for key, inner in pattern.items():
            if isinstance(inner, list) and any(isinstance(m, dict) and "exists" in m for m in inner):
                present = key in value
                if not any(isinstance(m, dict) and m.get("exists") == present for m in inner):
                    return False
                continue
            if key not in value or not _matches(value[key], inner):
                return False
        return True
    if isinstance(pattern, list):
        for matcher in pattern:
            if isinstance(matcher, dict):
                if "prefix" in matcher and isinstance(value, str) and value.startswith(matcher["prefix"]):
                    return True
                if "anything-but" in matcher and value not in (matcher["anything-but"] if isinstance(
                        matcher["anything-but"], list) else [matcher["anything-but"]]):
                    return True
            elif value == matcher:
                return True
        return False
    return bool(value == pattern)


def passes_filters(record: dict[str, Any], filters: tuple[Any, ...]) -> bool:
    """True when no filter is set or any filter matches the record (Lambda ORs them)."""
    return not filters or any(_matches(record, pattern) for pattern in filters)


def schedules(template: str | Path = DEFAULT_TEMPLATE) -> list[ScheduleSpec]:
    """Every Schedule / ScheduleV2 event of every function."""
    found = []
    for function_id, event_name, event_type, props in _function_events(template):
        if event_type not in ("Schedule", "ScheduleV2"):
            continue
        where = f"{function_id}.Events.{event_name}"
        key = "Schedule" if event_type == "Schedule" else "ScheduleExpression"
        expression = props.get(key)
        _reject_intrinsics(expression, f"{where}.{key}")
        _reject_intrinsics(props.get("Input"), f"{where}.Input")
        if not isinstance(expression, str):
            raise TemplateError(f"{where}: {key} is required")
        kind, rate_seconds = parse_schedule_expression(expression)
        found.append(
            ScheduleSpec(
                function_id=function_id,
                event_name=event_name,
                event_type=event_type,
                expression=expression,
                kind=kind,
                rate_seconds=rate_seconds,
                input=props.get("Input"),
                enabled=_enabled(props, where),
            )
        )
    return found
