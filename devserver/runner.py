"""Runs the template's Lambda functions locally, one invocation per worker process at a time.

Lambda gives each concurrent request its own execution environment, and handler code relies on
that: Powertools' event handler keeps the current event on the resolver, module globals are
per environment. Running handlers on threads of one process breaks this (measured: 397 of 400
concurrent threaded requests saw another request's event), so `WorkerPoolRunner` keeps a pool
of N spawned processes, each running one invocation at a time; a caller waits for a free one.

It is the `lambda_runner` SAM CLI's LocalApigwService expects (`invoke(...)` writing the
function's JSON response to `stdout`, `is_debugging()`), and it also invokes functions
directly (`invoke_direct`) for scheduled and queue-driven work.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import queue
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from devserver import faults as fault_injection
from devserver.engine import ACCESS_KEY, REGION, SECRET_KEY
from devserver.invoke import load_module
from devserver.template import DEFAULT_TEMPLATE, FunctionSpec, function_specs
from devserver.tokens import dev_secrets

ACCOUNT_ID = "123456789012"
DEFAULT_WORKERS = 4

# Never inherited from the developer's shell: local functions must not reach real AWS, and
# the template decides the rest. (Developer overrides are re-added by _passthrough.)
_SCRUBBED_PREFIXES = ("AWS_", "BILLING_", "POWERTOOLS_", "ENABLE_BILLING_", "NOWPAYMENTS_", "STRIPE_")
# Shell variables a developer may set to override the template locally (e.g. hard limits off).
_PASSTHROUGH_PREFIXES = ("BILLING_", "ENABLE_BILLING_", "POWERTOOLS_", "NOWPAYMENTS_", "STRIPE_")
# ...but never these: the tables are created under the names the template resolves to.
_NO_PASSTHROUGH = {"BILLING_TABLE", "LEDGER_TABLE"}
_LOCAL_ONLY_PREFIX = "BILLING_LOCAL_"


class LambdaInvocationError(Exception):
    """The function failed: raised, timed out, or its environment died. `payload` is Lambda's;
    `output` what the function printed, when the invocation captured it."""

    def __init__(self, payload: dict[str, Any], output: str | None = None) -> None:
        self.payload = payload
        self.output = output
        super().__init__(f"{payload.get('errorType')}: {payload.get('errorMessage')}")


def function_environment(
    spec: FunctionSpec,
    *,
    moto_url: str | None,
    environ: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    queue_urls: Mapping[str, str] | None = None,
    dynamodb_url: str | None = None,
) -> dict[str, str]:
    """The complete os.environ a local invocation of `spec` runs with.

    Lowest to highest priority: the parent's environment (minus AWS_/BILLING_/POWERTOOLS_/...),
    SAM CLI's Lambda variables (AWS_LAMBDA_FUNCTION_NAME, ...), the template's Globals +
    function variables as SAM resolves them (!Ref BillingTable -> "BillingTable"; a variable
    whose value is a queue's logical id, e.g. !Ref WorkQueue -> "WorkQueue", becomes that
    queue's URL from `queue_urls`, as !Ref of a queue is its URL on AWS), local values
    (secrets, BILLING_CONFIG_CACHE_SECONDS=0, no tracing), the developer's own BILLING_*/
    POWERTOOLS_*/ENABLE_BILLING_* variables, and finally the emulation's endpoint and
    credentials, which nothing overrides (`dynamodb_url`, when DynamoDB is another engine than
    moto's server, as AWS_ENDPOINT_URL_DYNAMODB: botocore's per-service endpoint).
    """
    from samcli.local.lambdafn.env_vars import EnvironmentVariables

    environ = dict(os.environ if environ is None else environ)
    secrets = dict(dev_secrets(environ) if secrets is None else secrets)

    queue_urls = dict(queue_urls or {})
    variables = {name: queue_urls.get(value, value) for name, value in spec.template_env.items()}

    env = {k: v for k, v in environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update(
        EnvironmentVariables(
            function_name=spec.logical_id,
            function_memory=spec.memory,
            function_timeout=spec.timeout,
            function_handler=spec.handler,
            variables=variables,
            aws_creds={"region": REGION, "key": ACCESS_KEY, "secret": SECRET_KEY},
        ).resolve()
    )
    # Like the deployed function: only the secrets its template entry gives it.
    env.update({name: value for name, value in secrets.items() if name in spec.template_env})
    env["BILLING_CONFIG_CACHE_SECONDS"] = "0"  # a mode switch is seen by every worker at once
    env["POWERTOOLS_TRACE_DISABLED"] = "true"  # no X-Ray daemon here
    # Outbound webhooks may go to a receiver on this machine over http (production: public https only).
    env["BILLING_WEBHOOK_ALLOW_LOOPBACK"] = "true"
    env["BILLING_WEBHOOK_ALLOW_HTTP"] = "true"
    env.setdefault("POWERTOOLS_METRICS_NAMESPACE", "CreditBilling")
    env.setdefault("POWERTOOLS_SERVICE_NAME", "billing")
    for key, value in environ.items():
        if (
            key.startswith(_PASSTHROUGH_PREFIXES)
            and key not in _NO_PASSTHROUGH
            and not key.startswith(_LOCAL_ONLY_PREFIX)
            and (key not in secrets or key in spec.template_env)
        ):
            env[key] = value
    env.update(
        {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    if moto_url:
        env["AWS_ENDPOINT_URL"] = moto_url
    if dynamodb_url:
        from devserver.dynamodb_local import endpoint_variables

        env.update(endpoint_variables(dynamodb_url))
    return env


# -- the worker process ----------------------------------------------------------------------


class FakeLambdaContext:
    """The attributes and method of Lambda's Python context object that handlers use."""

    def __init__(self, spec: FunctionSpec, request_id: str, tenant_id: str | None) -> None:
        self.function_name = spec.logical_id
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{spec.logical_id}"
        self.memory_limit_in_mb = spec.memory
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{spec.logical_id}"
        self.log_stream_name = "$LATEST"
        self.identity = None
        self.client_context = None
        self.tenant_id = tenant_id
        self._deadline = time.monotonic() + spec.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error_payload(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__),
    }


def _load_target(target: str) -> Any:
    """'package.module:attr' or 'path/to/file.py:attr' -> the object."""
    import importlib

    module_name, _, attr = target.partition(":")
    if not attr:
        raise ValueError(f"target {target!r} must look like module:function")
    if module_name.endswith(".py"):
        path = Path(module_name).resolve()
        module = load_module(path, f"_devserver_target_{abs(hash(str(path)))}")
    else:
        module = importlib.import_module(module_name)
    return getattr(module, attr)


class _Environment:
    """State of one worker process: loaded handlers, and the env of the function that runs."""

    def __init__(self, specs: dict[str, FunctionSpec], envs: dict[str, dict[str, str]]) -> None:
        self.specs = specs
        self.envs = envs
        self.handlers: dict[str, Any] = {}

    def use_env(self, logical_id: str) -> None:
        os.environ.clear()
        os.environ.update(self.envs[logical_id])

    def handler(self, logical_id: str) -> Any:
        """Import the function's handler once, under a module name of its own (all are app.py)."""
        if logical_id in self.handlers:
            return self.handlers[logical_id]
        spec = self.specs[logical_id]
        path = spec.handler_file
        module_name = f"_devserver_fn_{logical_id}_{spec.handler.rpartition('.')[0].replace('.', '_')}"
        sys.path.insert(0, spec.code_dir)
        try:
            module = load_module(path, module_name)
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(spec.code_dir)
        handler = getattr(module, spec.handler_attr, None)
        if not callable(handler):
            raise AttributeError(f"Handler '{spec.handler_attr}' missing on module '{path.stem}'")
        self.handlers[logical_id] = handler
        return handler

    def invoke(
        self, logical_id: str, event_json: str, request_id: str, tenant_id: str | None, capture: bool = False
    ) -> tuple:
        if not capture:
            return self._invoke(logical_id, event_json, request_id, tenant_id)
        with _captured_output() as output:
            reply = self._invoke(logical_id, event_json, request_id, tenant_id)
        return (*reply, output.getvalue())

    def _invoke(self, logical_id: str, event_json: str, request_id: str, tenant_id: str | None) -> tuple:
        self.use_env(logical_id)
        try:
            handler = self.handler(logical_id)
        except BaseException as exc:
            payload = _error_payload(exc, "Runtime.ImportModuleError")
            payload["errorMessage"] = f"Unable to import module '{logical_id}': {exc}"
            return ("error", payload)
        spec = self.specs[logical_id]
        try:
            event = json.loads(event_json)
            result = handler(event, FakeLambdaContext(spec, request_id, tenant_id))
        except BaseException as exc:  # Lambda reports SystemExit too, and keeps the environment
            return ("error", _error_payload(exc))
        try:
            return ("ok", json.dumps(result))
        except (TypeError, ValueError) as exc:
            return ("error", _error_payload(exc, "Runtime.MarshalError"))

    def call(self, target: str, env_function: str | None) -> tuple:
        if env_function:
            self.use_env(env_function)
        try:
            result = _load_target(target)()
        except BaseException as exc:
            return ("error", _error_payload(exc))
        try:
            return ("ok", json.dumps(result))
        except (TypeError, ValueError):
            return ("ok", json.dumps(repr(result)))


@contextlib.contextmanager
def _captured_output() -> Iterator[io.StringIO]:
    """Everything written to this process's stdout and stderr meanwhile, at the file-descriptor
    level (loggers hold their own reference to sys.stdout, so swapping sys.stdout would miss
    them). Safe because a worker runs one invocation at a time."""
    import tempfile

    result = io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield result
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sink.seek(0)
            result.write(sink.read().decode("utf-8", "replace"))


def _worker_main(conn: Any, specs: dict[str, FunctionSpec], envs: dict[str, dict[str, str]],
                 faults: fault_injection.FaultSpec | None = None, serial: int = 0) -> None:
    """Entry point of a worker process: serve invocations from `conn` until told to stop."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    for layer_dir in dict.fromkeys(d for spec in specs.values() for d in spec.layer_dirs):
        if layer_dir not in sys.path:
            sys.path.insert(0, layer_dir)
    if faults:
        fault_injection.install(faults, serial)
    environment = _Environment(specs, envs)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the parent went away
        if message is None:
            return
        kind, args = message[0], message[1:]
        if kind == "invoke":
            fault_injection.activate(True)  # faults hit invocations, never the stack's seeding
            try:
                reply = environment.invoke(*args)
            finally:
                fault_injection.activate(False)
        elif kind == "call":
            reply = environment.call(*args)
        else:
            reply = ("error", {"errorType": "DevserverError", "errorMessage": f"unknown message {kind}"})
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return


# -- the pool --------------------------------------------------------------------------------


def faults_from_environment(environ: Mapping[str, str]) -> fault_injection.FaultSpec:
    return fault_injection.from_environment(environ)


def faults_spec(text: str, environ: Mapping[str, str]) -> fault_injection.FaultSpec:
    return fault_injection.parse(text, environ.get(fault_injection.SEED_ENV))


@dataclass(eq=False)
class _Worker:
    process: Any
    conn: Any
    loaded: set[str] = field(default_factory=set)


class WorkerPoolRunner:
    """A pool of `workers` spawned processes that run the template's functions.

    `invoke()` has the signature SAM CLI's LocalApigwService calls; `invoke_direct()` returns
    the handler's result (or raises LambdaInvocationError); `call()` runs any
    `module:function` in a worker with a function's environment (used to seed the tables).
    A failing, hanging (past the function's Timeout) or dying handler never takes the pool
    down: the worker is replaced and the caller gets Lambda's error.
    """

    def __init__(
        self,
        template: str | Path = DEFAULT_TEMPLATE,
        *,
        workers: int = DEFAULT_WORKERS,
        moto_url: str | None = None,
        environ: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        cold_start_grace: float = 20.0,
        log_errors: bool = True,
        queue_urls: Mapping[str, str] | None = None,
        dynamodb_url: str | None = None,
        faults: str | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.template = Path(template)
        self.workers = workers
        self.moto_url = moto_url
        self.cold_start_grace = cold_start_grace
        self.log_errors = log_errors
        self.functions: dict[str, FunctionSpec] = function_specs(self.template)
        environ = dict(os.environ if environ is None else environ)
        self.secrets = dict(dev_secrets(environ) if secrets is None else secrets)
        self.queue_urls = dict(queue_urls or {})
        self.dynamodb_url = dynamodb_url
        # Fault injection (devserver.faults): from the argument, else BILLING_LOCAL_FAULTS.
        self.faults = faults_from_environment(environ) if faults is None else faults_spec(faults, environ)
        self._spawned = 0
        self.envs = {
            name: function_environment(
                spec, moto_url=moto_url, environ=environ, secrets=self.secrets, queue_urls=self.queue_urls,
                dynamodb_url=dynamodb_url,
            )
            for name, spec in self.functions.items()
        }
        self._context = multiprocessing.get_context("spawn")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    # lifecycle

    def _spawn(self) -> _Worker:
        parent, child = self._context.Pipe()
        with self._lock:
            self._spawned += 1
            serial = self._spawned
        process = self._context.Process(
            target=_worker_main,
            args=(child, self.functions, self.envs, self.faults, serial),
            name="devserver-lambda-worker",
            daemon=True,
        )
        process.start()
        child.close()
        worker = _Worker(process, parent)
        try:
            ready = parent.poll(60) and parent.recv()[0] == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            process.kill()
            process.join(2)
            parent.close()
            raise RuntimeError(f"a Lambda worker process did not start (exit code {process.exitcode})")
        with self._lock:
            self._all.append(worker)
        return worker

    def start(self) -> WorkerPoolRunner:
        errors: list[BaseException] = []

        def spawn_one() -> None:
            try:
                self._idle.put(self._spawn())
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=spawn_one) for _ in range(self.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            self.stop()
            raise errors[0]
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._closed = True
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1)
            worker.conn.close()

    def __enter__(self) -> WorkerPoolRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # SAM CLI's LocalLambdaRunner interface

    def is_debugging(self) -> bool:
        return False

    def invoke(
        self,
        function_identifier: str,
        event: str,
        tenant_id: str | None = None,
        stdout: Any = None,
        stderr: Any = None,
        **_: Any,
    ) -> None:
        """Run the function for API Gateway and write its JSON response to `stdout`.

        A function error becomes what API Gateway answers then: 502 {"message": "Internal
        server error"} (SAM CLI itself would answer 500); the error goes to this process's stderr.
        """
        try:
            output, _ = self._run(function_identifier, ("invoke", event), tenant_id)
        except LambdaInvocationError:
            output = json.dumps(
                {
                    "statusCode": 502,
                    "headers": {
                        "Content-Type": "application/json",
                        "x-amzn-ErrorType": "InternalServerErrorException",
                    },
                    "body": json.dumps({"message": "Internal server error"}),
                }
            )
        if stdout is not None:
            stdout.write_str(output)
            stdout.flush()

    # direct use

    def invoke_direct(
        self, logical_id: str, event: Any, *, tenant_id: str | None = None, log_errors: bool | None = None
    ) -> Any:
        """Invoke a function with `event` (a dict) and return its (JSON round-tripped) result.
        `log_errors=False` leaves reporting a failure (LambdaInvocationError) to the caller."""
        payload, _ = self._run(logical_id, ("invoke", json.dumps(event)), tenant_id, log_errors=log_errors)
        return json.loads(payload)

    def invoke_captured(self, logical_id: str, event: Any, *, log_errors: bool | None = False) -> tuple[Any, str]:
        """invoke_direct, but what the function prints is captured instead of reaching this
        process's terminal: returns (result, output); a LambdaInvocationError carries `.output`.
        For background runs, whose logs are only worth showing when they did something."""
        payload, output = self._run(
            logical_id, ("invoke", json.dumps(event)), None, log_errors=log_errors, capture=True
        )
        return json.loads(payload), output or ""

    def call(self, target: str, *, env_function: str | None = None, timeout: float = 120.0) -> Any:
        """Run `module:function` (or `file.py:function`) in a worker with `env_function`'s
        environment (default: BootstrapFunction if the template has one, else the first)."""
        if env_function is None:
            env_function = "BootstrapFunction" if "BootstrapFunction" in self.functions else next(
                iter(self.functions), None
            )
        return json.loads(self._dispatch(("call", target, env_function), timeout, label=target)[0])

    def environment_for(self, logical_id: str) -> dict[str, str]:
        return dict(self.envs[logical_id])

    # plumbing

    def _run(
        self,
        logical_id: str,
        message: tuple,
        tenant_id: str | None,
        *,
        log_errors: bool | None = None,
        capture: bool = False,
    ) -> tuple[str, str | None]:
        spec = self.functions.get(logical_id)
        if spec is None:
            from samcli.local.lambdafn.exceptions import FunctionNotFound

            raise FunctionNotFound(f"Unable to find a Function with name '{logical_id}'")
        kind, event_json = message
        request_id = str(uuid.uuid4())
        return self._dispatch(
            (kind, logical_id, event_json, request_id, tenant_id, capture),
            float(spec.timeout),
            label=logical_id,
            cold_id=logical_id,
            log_errors=log_errors,
        )

    def _acquire(self) -> _Worker:
        while True:
            if self._closed:
                raise RuntimeError("the Lambda runner is stopped")
            try:
                return self._idle.get(timeout=0.5)
            except queue.Empty:
                continue

    def _replace(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(2)
        worker.conn.close()
        if not self._closed:
            self._idle.put(self._spawn())

    def _dispatch(
        self,
        message: tuple,
        timeout: float,
        *,
        label: str,
        cold_id: str | None = None,
        log_errors: bool | None = None,
    ) -> tuple[str, str | None]:
        """(the worker's JSON result, what the function printed if it was captured)."""
        worker = self._acquire()
        budget = timeout
        if cold_id is not None and cold_id not in worker.loaded:
            budget += self.cold_start_grace  # Lambda's init phase has its own time limit
        try:
            worker.conn.send(message)
            if not worker.conn.poll(budget):
                self._replace(worker)
                self._fail(
                    label,
                    {
                        "errorType": "Sandbox.Timedout",
                        "errorMessage": f"Task timed out after {timeout:.2f} seconds",
                    },
                    log_errors,
                )
            reply = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            code = worker.process.exitcode
            self._replace(worker)
            self._fail(
                label,
                {"errorType": "Runtime.ExitError", "errorMessage": f"RequestId: worker exited ({code})"},
                log_errors,
            )
        if cold_id is not None:
            worker.loaded.add(cold_id)
        self._idle.put(worker)
        status, payload = reply[0], reply[1]
        output = reply[2] if len(reply) > 2 else None
        if status != "ok":
            self._fail(label, payload, log_errors, output)
        return payload, output

    def _fail(
        self, label: str, payload: dict[str, Any], log_errors: bool | None = None, output: str | None = None
    ) -> NoReturn:
        if self.log_errors if log_errors is None else log_errors:
            trace = "".join(payload.get("stackTrace") or [])
            print(
                f"[devserver] {label} failed: {payload.get('errorType')}: {payload.get('errorMessage')}\n{trace}",
                file=sys.stderr,
                flush=True,
            )
        raise LambdaInvocationError(payload, output)
