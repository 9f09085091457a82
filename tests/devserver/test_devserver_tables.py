"""Tables created from template.yaml match the template (read here independently, with PyYAML)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
import yaml
from moto import mock_aws

from devserver.engine import apply_moto_patches, create_tables, serialized_engine, table_definitions

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
FIXTURE_TEMPLATE = Path(__file__).parent / "fixtures" / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !GetAtt, !Sub, ...) as plain values."""


def _any_tag(loader, _suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_CfnLoader.add_multi_constructor("!", _any_tag)


def _template_tables(path):
    doc = yaml.load(path.read_text(), Loader=_CfnLoader)  # a SafeLoader subclass
    return {
        name: res["Properties"]
        for name, res in doc["Resources"].items()
        if res["Type"] == "AWS::DynamoDB::Table"
    }


def _sorted(items, key):
    return sorted(items, key=lambda x: x[key])


def _check(client, path):
    expected = _template_tables(path)
    assert expected, "the template defines tables"
    assert sorted(client.list_tables()["TableNames"]) == sorted(expected)
    for name, props in expected.items():
        table = client.describe_table(TableName=name)["Table"]
        assert table["KeySchema"] == props["KeySchema"]
        assert _sorted(table["AttributeDefinitions"], "AttributeName") == _sorted(
            props["AttributeDefinitions"], "AttributeName"
        )
        assert table["BillingModeSummary"]["BillingMode"] == props.get("BillingMode", "PROVISIONED")
        want_gsis = {
            g["IndexName"]: (g["KeySchema"], g["Projection"]["ProjectionType"])
            for g in props.get("GlobalSecondaryIndexes", [])
        }
        got_gsis = {
            g["IndexName"]: (g["KeySchema"], g["Projection"]["ProjectionType"])
            for g in table.get("GlobalSecondaryIndexes", [])
        }
        assert got_gsis == want_gsis
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            described = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            assert described == {"TimeToLiveStatus": "ENABLED", "AttributeName": ttl["AttributeName"]}


@pytest.mark.parametrize("path", [TEMPLATE, FIXTURE_TEMPLATE], ids=["template.yaml", "fixture"])
def test_tables_from_template_match_key_schema_and_gsis(path):
    apply_moto_patches()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        assert sorted(create_tables(client, path)) == sorted(_template_tables(path))
        _check(client, path)


def test_engine_creates_the_template_tables_on_its_server():
    with serialized_engine(template=TEMPLATE) as engine:
        _check(engine.client(), TEMPLATE)


def test_table_names_are_the_logical_ids_the_functions_reference():
    """SAM resolves `!Ref BillingTable` to "BillingTable" locally; the tables must be named so."""
    from devserver.template import function_specs

    tables = set(table_definitions(TEMPLATE))
    assert {"BillingTable", "LedgerTable"} <= tables
    for spec in function_specs(TEMPLATE).values():
        assert spec.template_env["BILLING_TABLE"] == "BillingTable"
        assert spec.template_env["LEDGER_TABLE"] == "LedgerTable"
