"""The embedded emulation: the serialized moto server and the item-level transaction patch."""

from __future__ import annotations

import copy
import threading

import boto3
import moto
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from devserver import engine as engine_mod
from devserver.engine import (
    Engine,
    MotoVersionError,
    apply_moto_patches,
    moto_patches_applied,
    remove_moto_patches,
    serialized_engine,
)
from devserver.measure import decrement, race

RANGE_TABLE = "Money"
HASH_TABLE = "Flat"


@pytest.fixture
def ddb():
    """In-process moto with the patches applied, and two tables (hash+range, hash only)."""
    apply_moto_patches()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=RANGE_TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.create_table(
            TableName=HASH_TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _scan(client, table):
    items = client.scan(TableName=table, ConsistentRead=True)["Items"]
    return sorted(items, key=repr)


def _key(pk, sk):
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _seed(client):
    client.put_item(TableName=RANGE_TABLE, Item={**_key("acct-1", "lot-1"), "available": {"N": "5"}})
    client.put_item(TableName=RANGE_TABLE, Item={**_key("acct-1", "lot-2"), "available": {"N": "7"}})
    client.put_item(TableName=RANGE_TABLE, Item={**_key("acct-2", "lot-1"), "available": {"N": "9"}})
    client.put_item(TableName=HASH_TABLE, Item={"id": {"S": "cfg"}, "mode": {"S": "shadow"}})
    client.put_item(TableName=HASH_TABLE, Item={"id": {"S": "gone-soon"}, "v": {"N": "1"}})


def _cancel(client, items):
    with pytest.raises(ClientError) as info:
        client.transact_write_items(TransactItems=items)
    assert info.value.response["Error"]["Code"] == "TransactionCanceledException"
    return info.value.response["CancellationReasons"]


def test_serialized_server_lets_exactly_the_allowed_decrements_through():
    """8 threads x 100 conditional TransactWriteItems decrements (`n > 0`, n starts at 300)
    through moto's SERVER, with 300 filler items in the table.

    This fails on plain moto 5.2.5: measured 301-303 successes (302-306 with this filler; see
    `python -m devserver.measure`), because a cancelled transaction restores its stale copy of
    the table over other threads' decrements. With MOTO_LOCK around the dispatch it is exactly
    300 and the counter ends at 0.
    """
    with serialized_engine() as engine:
        result = race(engine, threads=8, per_thread=100, allowed=300, filler=300)
    assert result == {"successes": 300, "final": 0}


def test_in_process_mock_is_serialized_too():
    """Same race through in-process mock_aws(): apply_moto_patches() serializes it as well."""
    apply_moto_patches()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="Race",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName="Race", Item={**_key("counter", "c"), "n": {"N": "100"}})
        wins = []

        def work():
            own = boto3.client("dynamodb", region_name="us-east-1")
            for _ in range(40):
                try:
                    own.transact_write_items(TransactItems=[decrement("Race")])
                    wins.append(1)
                except ClientError:
                    pass

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        item = client.get_item(TableName="Race", Key=_key("counter", "c"))["Item"]
    assert len(wins) == 100
    assert item["n"]["N"] == "0"


def test_failed_transaction_rolls_back_exactly_the_touched_items(ddb):
    _seed(ddb)
    before_range, before_hash = _scan(ddb, RANGE_TABLE), _scan(ddb, HASH_TABLE)

    reasons = _cancel(
        ddb,
        [
            {  # updates an existing item (succeeds on its own)
                "Update": {
                    "TableName": RANGE_TABLE,
                    "Key": _key("acct-1", "lot-1"),
                    "UpdateExpression": "SET available = available - :a",
                    "ConditionExpression": "available >= :a",
                    "ExpressionAttributeValues": {":a": {"N": "3"}},
                }
            },
            {"Put": {"TableName": RANGE_TABLE, "Item": {**_key("acct-1", "res-1"), "state": {"S": "pending"}}}},
            {"Put": {"TableName": RANGE_TABLE, "Item": {**_key("acct-new", "x"), "v": {"N": "1"}}}},
            {"Delete": {"TableName": HASH_TABLE, "Key": {"id": {"S": "gone-soon"}}}},
            {"Put": {"TableName": HASH_TABLE, "Item": {"id": {"S": "idem-1"}, "response": {"S": "{}"}}}},
            {  # fails: the whole transaction is cancelled
                "ConditionCheck": {
                    "TableName": HASH_TABLE,
                    "Key": {"id": {"S": "cfg"}},
                    "ConditionExpression": "#m = :live",
                    "ExpressionAttributeNames": {"#m": "mode"},
                    "ExpressionAttributeValues": {":live": {"S": "live"}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {  # after the failure: still evaluated, and fails its own condition too
                "Update": {
                    "TableName": RANGE_TABLE,
                    "Key": _key("acct-2", "lot-1"),
                    "UpdateExpression": "SET available = available - :a",
                    "ConditionExpression": "available >= :a",
                    "ExpressionAttributeValues": {":a": {"N": "100"}},
                }
            },
        ],
    )

    assert [r["Code"] for r in reasons] == ["None"] * 5 + ["ConditionalCheckFailed"] * 2
    assert reasons[5]["Item"] == {"id": {"S": "cfg"}, "mode": {"S": "shadow"}}
    assert "Item" not in reasons[6]
    assert _scan(ddb, RANGE_TABLE) == before_range  # lot-1 restored, res-1 and acct-new gone
    assert _scan(ddb, HASH_TABLE) == before_hash  # gone-soon back, idem-1 gone
    # A new hash key's bucket does not linger either (moto keys range items by hash first).
    assert ddb.query(
        TableName=RANGE_TABLE,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "acct-new"}},
    )["Count"] == 0


def test_successful_transaction_applies_every_item(ddb):
    _seed(ddb)
    ddb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": RANGE_TABLE,
                    "Key": _key("acct-1", "lot-1"),
                    "UpdateExpression": "SET available = available - :a",
                    "ConditionExpression": "available >= :a",
                    "ExpressionAttributeValues": {":a": {"N": "5"}},
                }
            },
            {"Put": {"TableName": HASH_TABLE, "Item": {"id": {"S": "idem-2"}}}},
            {"Delete": {"TableName": HASH_TABLE, "Key": {"id": {"S": "gone-soon"}}}},
        ]
    )
    item = ddb.get_item(TableName=RANGE_TABLE, Key=_key("acct-1", "lot-1"))["Item"]
    assert item["available"] == {"N": "0"}
    assert "Item" in ddb.get_item(TableName=HASH_TABLE, Key={"id": {"S": "idem-2"}})
    assert "Item" not in ddb.get_item(TableName=HASH_TABLE, Key={"id": {"S": "gone-soon"}})


def test_validation_errors_are_unchanged_and_roll_back(ddb):
    _seed(ddb)
    before = _scan(ddb, RANGE_TABLE)
    update = {
        "Update": {
            "TableName": RANGE_TABLE,
            "Key": _key("acct-1", "lot-1"),
            "UpdateExpression": "SET available = :z",
            "ExpressionAttributeValues": {":z": {"N": "0"}},
        }
    }
    # The same item twice.
    with pytest.raises(ClientError) as info:
        ddb.transact_write_items(TransactItems=[update, update])
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "multiple operations on one item" in info.value.response["Error"]["Message"]
    assert _scan(ddb, RANGE_TABLE) == before

    # More than 100 items.
    many = [{"Put": {"TableName": HASH_TABLE, "Item": {"id": {"S": f"i{i}"}}}} for i in range(101)]
    with pytest.raises(ClientError) as info:
        ddb.transact_write_items(TransactItems=many)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "100" in info.value.response["Error"]["Message"]

    # A validation error after an applied item: the applied item is rolled back.
    missing_range_key = {"Delete": {"TableName": RANGE_TABLE, "Key": {"pk": {"S": "acct-1"}}}}
    with pytest.raises(ClientError) as info:
        ddb.transact_write_items(TransactItems=[update, missing_range_key])
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert _scan(ddb, RANGE_TABLE) == before


def test_patched_transactions_never_deep_copy_a_table(ddb, monkeypatch):
    """Deterministic guard for the cost fix: count deep copies of moto Table objects."""
    from moto.dynamodb.models import Table
    from moto.dynamodb.models import copy as models_copy

    _seed(ddb)
    table_copies = []
    real_deepcopy = copy.deepcopy

    def counting_deepcopy(obj, *args, **kwargs):
        if isinstance(obj, Table):
            table_copies.append(obj.name)
        return real_deepcopy(obj, *args, **kwargs)

    monkeypatch.setattr(models_copy, "deepcopy", counting_deepcopy)
    ok = {"Put": {"TableName": HASH_TABLE, "Item": {"id": {"S": "n1"}}}}
    failing = {
        "ConditionCheck": {
            "TableName": RANGE_TABLE,
            "Key": _key("acct-1", "lot-1"),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }
    ddb.transact_write_items(TransactItems=[ok])
    _cancel(ddb, [{"Put": {"TableName": HASH_TABLE, "Item": {"id": {"S": "n2"}}}}, failing])
    assert table_copies == []

    # The guard itself works: moto's own implementation is caught copying tables.
    remove_moto_patches()
    try:
        _cancel(ddb, [{"Put": {"TableName": HASH_TABLE, "Item": {"id": {"S": "n3"}}}}, failing])
    finally:
        apply_moto_patches()
    assert sorted(set(table_copies)) == [HASH_TABLE, RANGE_TABLE]


def test_patch_refuses_another_moto_version(monkeypatch):
    monkeypatch.setattr(moto, "__version__", "5.2.6")
    with pytest.raises(MotoVersionError):
        engine_mod.apply_moto_patches()
    with pytest.raises(MotoVersionError):
        Engine()


def test_patches_are_idempotent_and_reversible():
    from moto.dynamodb.models import DynamoDBBackend

    apply_moto_patches()
    apply_moto_patches()
    assert moto_patches_applied()
    assert getattr(DynamoDBBackend.transact_write_items, "__devserver_patch__", False)
    remove_moto_patches()
    assert not getattr(DynamoDBBackend.transact_write_items, "__devserver_patch__", False)
    apply_moto_patches()
    assert moto_patches_applied()
