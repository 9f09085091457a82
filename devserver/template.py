"""Everything the local stack knows about the app comes from template.yaml, read here.

Tables, functions (CodeUri, Handler, layers, Globals + function environment) and, in
gateway.py, the routes are derived from the SAM template through SAM CLI's own loaders, so
there is no second hand-kept definition that could drift from what `sam deploy` creates.
"""

from __future__ import annotations

import contextlib
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


def create_tables(dynamodb_client: Any, template: str | Path = DEFAULT_TEMPLATE) -> list[str]:
    """Create every template table with `dynamodb_client` (server endpoint or mock_aws); return names."""
    names = []
    for name, spec in table_definitions(template).items():
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
