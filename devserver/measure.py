"""Measures what engine.py fixes, on this machine: `python -m devserver.measure`.

1. The race: 8 threads x 100 conditional TransactWriteItems decrements of an item allowing
   300, through moto's server, plain vs serialized+patched. Plain moto lets more than 300
   through (a failed transaction restores its stale copy of the whole table over other
   threads' writes); 300 filler items make its table copy slow enough to lose reliably.
2. The cost of one transaction at 100 and 10,000 items, with moto's table-copying rollback
   and with the item-level patch.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from typing import Any

from devserver.engine import Engine, apply_moto_patches, remove_moto_patches

_KEY = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
_ATTRS = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]


def _make_table(client: Any, name: str) -> None:
    client.create_table(TableName=name, KeySchema=_KEY, AttributeDefinitions=_ATTRS, BillingMode="PAY_PER_REQUEST")


def _fill(client: Any, name: str, count: int) -> None:
    for start in range(0, count, 25):
        requests = [
            {"PutRequest": {"Item": {"pk": {"S": f"fill-{i}"}, "sk": {"S": "x"}, "blob": {"S": "y" * 64}}}}
            for i in range(start, min(count, start + 25))
        ]
        client.batch_write_item(RequestItems={name: requests})


def decrement(table: str) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": {"S": "counter"}, "sk": {"S": "c"}},
            "UpdateExpression": "SET n = n - :one",
            "ConditionExpression": "n > :zero",
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":zero": {"N": "0"}},
        }
    }


def race(engine: Engine, *, threads: int = 8, per_thread: int = 100, allowed: int = 300, filler: int = 300) -> dict:
    """Run the decrement race through `engine`'s server; return successes and the final value."""
    from botocore.exceptions import ClientError

    client = engine.client()
    table = f"Race{time.monotonic_ns()}"
    _make_table(client, table)
    _fill(client, table, filler)
    client.put_item(TableName=table, Item={"pk": {"S": "counter"}, "sk": {"S": "c"}, "n": {"N": str(allowed)}})
    successes = [0] * threads
    start = threading.Barrier(threads)

    def work(index: int) -> None:
        own = engine.client()
        start.wait()
        for _ in range(per_thread):
            try:
                own.transact_write_items(TransactItems=[decrement(table)])
                successes[index] += 1
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    item = client.get_item(TableName=table, Key={"pk": {"S": "counter"}, "sk": {"S": "c"}})["Item"]
    client.delete_table(TableName=table)
    return {"successes": sum(successes), "final": int(item["n"]["N"])}


def transaction_seconds(items: int, *, patched: bool, repeat: int = 20) -> float:
    """Median time of one 2-item transaction (one succeeding, one cancelled, alternately) in a
    table of `items` items, in-process (mock_aws), with or without the patch."""
    import boto3
    from botocore.exceptions import ClientError
    from moto import mock_aws

    if patched:
        apply_moto_patches()
    else:
        remove_moto_patches()
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            _make_table(client, "T")
            _fill(client, "T", items)
            client.put_item(TableName="T", Item={"pk": {"S": "counter"}, "sk": {"S": "c"}, "n": {"N": "1000000"}})
            timings = []
            for i in range(repeat):
                put = {"Put": {"TableName": "T", "Item": {"pk": {"S": f"new-{i}"}, "sk": {"S": "x"}}}}
                if i % 2:  # cancelled: the condition on the put's item fails after the update ran
                    put["Put"]["ConditionExpression"] = "attribute_exists(pk)"
                began = time.perf_counter()
                with contextlib.suppress(ClientError):
                    client.transact_write_items(TransactItems=[decrement("T"), put])
                timings.append(time.perf_counter() - began)
            return statistics.median(timings)
    finally:
        apply_moto_patches()


def main() -> int:
    remove_moto_patches()
    for run in range(3):
        with Engine(serialize=False, patch=False) as plain:
            print(f"race, plain moto (run {run + 1}): {race(plain)}", flush=True)
    with Engine(serialize=False, patch=True) as unlocked:
        print(f"race, patched but not serialized: {race(unlocked)}", flush=True)
    with Engine() as engine:
        print(f"race, serialized + patched: {race(engine)}", flush=True)
    for items in (100, 10_000):
        for patched in (False, True):
            seconds = transaction_seconds(items, patched=patched)
            label = "patched" if patched else "moto's own"
            print(f"transaction at {items:>6} items, {label:10}: {seconds * 1000:7.2f} ms", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
