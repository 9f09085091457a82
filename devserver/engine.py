"""The embedded AWS emulation: moto's server in this process, made safe for concurrent callers.

Two facts about moto 5.2.5 shape this module (both measured, see `python -m devserver.measure`):

* moto is not thread-safe. Its server handles requests on threads, and two conditional writes
  racing through it can both pass their condition (8 threads x 100 conditional transactional
  decrements of an item allowing 300 gave 301-303 successes). Every request is therefore run
  under one process-wide lock (`MOTO_LOCK`), in the server and, once patched, in-process
  `mock_aws()` calls too. Real DynamoDB serializes conflicting writes per item; a global lock
  is stricter than that but gives the same results.
* moto's `transact_write_items` deep-copies every touched *table* for rollback, so a
  transaction costs time proportional to table size (~100 ms at 10,000 items). The patch
  below keeps an undo log of the touched *items* only and restores exactly those.

The patch copies moto internals, so it refuses to apply to any moto but the pinned version.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devserver.template import DEFAULT_TEMPLATE, create_queues, create_tables, queue_definitions, table_definitions

MOTO_VERSION = "5.2.5"
REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"

# One lock for every moto request in this process (server threads and in-process mocks alike).
# Re-entrant because moto occasionally calls itself while handling a request.
MOTO_LOCK = threading.RLock()

__all__ = [
    "MOTO_LOCK",
    "MOTO_VERSION",
    "Engine",
    "MotoVersionError",
    "apply_moto_patches",
    "create_queues",
    "create_tables",
    "moto_patches_applied",
    "queue_definitions",
    "remove_moto_patches",
    "serialized_engine",
    "table_definitions",
]


class MotoVersionError(RuntimeError):
    """The installed moto is not the version whose internals the patches were written against."""


def _check_moto_version() -> None:
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise MotoVersionError(
            f"devserver.engine patches moto {MOTO_VERSION} internals but moto {moto.__version__} is "
            "installed; re-check DynamoDBBackend.transact_write_items and the server dispatch "
            "against the new version before changing MOTO_VERSION"
        )


# -- the transaction patch ------------------------------------------------------------------


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's DynamoDBBackend.transact_write_items with an item-level undo log.

    Identical to the original except for how state is saved and restored: instead of
    deep-copying every touched table up front, the pre-transaction state (a copy of the item,
    or its absence) of each item is saved just before the operation on it, and a rollback
    puts back exactly those items. Errors, their order and their contents are unchanged.
    """
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import get_filter_expression

    if len(transact_items) > 100:
        raise TooManyTransactionsException()

    # (table, hash, range) -> (table, hash, range, item copy or None, hash bucket existed)
    undo: dict[tuple[int, Any, Any], tuple[Any, Any, Any, Any, bool]] = {}
    stream_marks: dict[int, tuple[Any, int]] = {}

    def remember(table: Any, hash_value: Any, range_value: Any) -> None:
        ident = (id(table), hash_value, range_value)
        if ident in undo:
            return
        if range_value is not None:
            had_bucket = hash_value in table.items
            old = table.items[hash_value].get(range_value) if had_bucket else None
        else:
            had_bucket = True
            old = table.items.get(hash_value)
        undo[ident] = (table, hash_value, range_value, copy.deepcopy(old), had_bucket)
        if table.stream_shard is not None and id(table) not in stream_marks:
            stream_marks[id(table)] = (table, len(table.stream_shard.items))

    def rollback() -> None:
        for table, hash_value, range_value, old, had_bucket in reversed(list(undo.values())):
            if range_value is not None:
                if old is not None:
                    table.items[hash_value][range_value] = old
                elif hash_value in table.items:
                    table.items[hash_value].pop(range_value, None)
                    if not had_bucket and not table.items[hash_value]:
                        del table.items[hash_value]
            elif old is not None:
                table.items[hash_value] = old
            else:
                table.items.pop(hash_value, None)
        for table, mark in stream_marks.values():
            if table.stream_shard is not None and len(table.stream_shard.items) >= mark:
                del table.stream_shard.items[mark:]

    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException

        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")

            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")

            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]

            check_unicity(table_name, key)

            # The only addition: save this item's state before anything can change it.
            # (get_table/get_keys_value raise exactly what self.get_item below would.)
            touched = self.get_table(table_name)
            remember(touched, *self.get_keys_value(touched, key))

            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression,
                    expression_attribute_names,
                    expression_attribute_values,
                )
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            if op_type == "Put":
                attrs = op["Item"]
                self.put_item(
                    table_name,
                    attrs,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Update":
                update_expression = op["UpdateExpression"]
                self.update_item(
                    table_name,
                    key,
                    update_expression=update_expression,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            rollback()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))  # type: ignore[arg-type]
        except Exception as e:
            errors.append((type(e).__name__, str(e), original_item))  # type: ignore[arg-type]

    if any(code is not None for code, _, _ in errors):
        rollback()
        raise TransactionCanceledException(errors)


_transact_write_items.__devserver_patch__ = True  # type: ignore[attr-defined]

_originals: dict[str, Any] = {}
_patch_guard = threading.Lock()


def apply_moto_patches() -> None:
    """Patch moto in this process (idempotent): item-level transaction rollback, and
    serialization of in-process `mock_aws()` requests under MOTO_LOCK.

    The server started by `Engine` is serialized separately (its WSGI app is wrapped).
    Raises MotoVersionError on any moto other than MOTO_VERSION.
    """
    _check_moto_version()
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.dynamodb.models import DynamoDBBackend

    with _patch_guard:
        if _originals:
            return
        _originals["transact_write_items"] = DynamoDBBackend.transact_write_items
        _originals["process_request"] = BotocoreStubber.process_request
        original_process_request = BotocoreStubber.process_request

        def process_request(self: Any, request: Any) -> Any:
            with MOTO_LOCK:
                return original_process_request(self, request)

        process_request.__devserver_patch__ = True  # type: ignore[attr-defined]
        DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
        BotocoreStubber.process_request = process_request  # type: ignore[method-assign]


def remove_moto_patches() -> None:
    """Undo apply_moto_patches (for measurements against plain moto)."""
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.dynamodb.models import DynamoDBBackend

    with _patch_guard:
        if not _originals:
            return
        DynamoDBBackend.transact_write_items = _originals.pop("transact_write_items")  # type: ignore[method-assign]
        BotocoreStubber.process_request = _originals.pop("process_request")  # type: ignore[method-assign]


def moto_patches_applied() -> bool:
    return bool(_originals)


# -- the serialized server ------------------------------------------------------------------


class _SerializedApp:
    """WSGI wrapper running moto's whole dispatch, body included, under MOTO_LOCK."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with MOTO_LOCK:
            result = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return [body]


def _moto_server_class() -> type:
    """ThreadedMotoServer whose WSGI app is serialized (or not, for measurements) and quiet."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class QuietRequestHandler(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    class SerializedMotoServer(ThreadedMotoServer):
        def __init__(self, ip_address: str, port: int, serialize: bool = True) -> None:
            super().__init__(ip_address=ip_address, port=port, verbose=False)
            self._serialize = serialize

        def _server_entry(self) -> None:  # moto 5.2.5's, with the app wrapped
            app: Any = DomainDispatcherApplication(create_backend_app)
            if self._serialize:
                app = _SerializedApp(app)
            try:
                self._server = make_server(
                    self._ip_address, self._port, app, True, request_handler=QuietRequestHandler
                )
            except BaseException as exc:  # e.g. port in use: moto's start() would wait forever
                self.startup_error = exc
                self._server_ready_event.set()
                return
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=0.1)

        def start(self) -> None:
            self.startup_error: BaseException | None = None
            super().start()
            if self.startup_error is not None:
                self._thread.join()  # type: ignore[union-attr]
                raise self.startup_error

    return SerializedMotoServer


class Engine:
    """moto's server on `host:port` (0 = a free port) in this process, serialized and patched.

    Use as a context manager or start()/stop(). `serialize=False, patch=False` gives plain
    moto, only for measuring what the lock and the patch fix.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, serialize: bool = True, patch: bool = True
    ) -> None:
        _check_moto_version()
        self.host = host
        self.requested_port = port
        self.serialize = serialize
        self.patch = patch
        self._server: Any = None

    def start(self) -> Engine:
        if self.patch:
            apply_moto_patches()
        server = _moto_server_class()(self.host, self.requested_port, serialize=self.serialize)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            if self._server._server is not None:
                self._server._server.server_close()  # release the port now, not at GC
            self._server = None

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("engine not started")
        return int(self._server.get_host_and_port()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, service: str = "dynamodb") -> Any:
        """A boto3 client for this engine (fresh session: safe to use one per thread)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"mode": "standard", "max_attempts": 1}),
        )

    def create_tables(self, template: str | Path = DEFAULT_TEMPLATE) -> list[str]:
        """Create the template's DynamoDB tables in this engine."""
        return create_tables(self.client("dynamodb"), template)

    def create_queues(self, template: str | Path = DEFAULT_TEMPLATE) -> dict[str, str]:
        """Create the template's SQS queues (dead-letter queues first, redrive policies set) in
        this engine; returns {logical id: queue URL} (URLs on this server's host and port)."""
        return create_queues(self.client("sqs"), template)

    def reset(self) -> None:
        """Drop all emulated state (moto's own reset endpoint)."""
        import urllib.request

        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - our own local server
            pass


@contextlib.contextmanager
def serialized_engine(
    port: int = 0, *, template: str | Path | None = None, host: str = "127.0.0.1"
) -> Iterator[Engine]:
    """An in-process, serialized, patched moto server; creates `template`'s tables and queues
    if given."""
    with Engine(host, port) as engine:
        if template is not None:
            engine.create_tables(template)
            engine.create_queues(template)
        yield engine
