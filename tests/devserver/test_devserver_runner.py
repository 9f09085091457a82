"""The Lambda worker pool: one invocation per process, isolated events, failures contained.

Uses the tiny app in fixtures/ (its own template, handlers and layer), not the billing core.
"""

from __future__ import annotations

import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devserver.runner import LambdaInvocationError, WorkerPoolRunner, function_environment
from devserver.template import function_specs
from devserver.tokens import DEV_SECRET_DEFAULTS

FIXTURE_TEMPLATE = Path(__file__).parent / "fixtures" / "template.yaml"
MOTO_URL = "http://127.0.0.1:9"  # nothing listens; only ItemsFunction would call it


def api_event(name: str, sleep: float = 0.05) -> dict:
    """A REST API proxy event for GET /echo/{name}, as API Gateway sends it."""
    return {
        "resource": "/echo/{name}",
        "path": f"/echo/{name}",
        "httpMethod": "GET",
        "headers": {"Host": "localhost"},
        "multiValueHeaders": {"Host": ["localhost"]},
        "queryStringParameters": {"sleep": str(sleep)},
        "multiValueQueryStringParameters": {"sleep": [str(sleep)]},
        "pathParameters": {"name": name},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/echo/{name}",
            "httpMethod": "GET",
            "path": f"/v1/echo/{name}",
            "stage": "v1",
            "requestId": name,
        },
        "body": None,
        "isBase64Encoded": False,
    }


@pytest.fixture(scope="module")
def runner():
    with WorkerPoolRunner(FIXTURE_TEMPLATE, workers=4, moto_url=MOTO_URL, environ={}, log_errors=False) as pool:
        yield pool


def test_concurrent_invocations_each_see_their_own_event(runner):
    """Threads in one process fail this (Powertools keeps the current event on the resolver;
    measured 397 of 400 crossed); a pool of processes, one invocation each, passes."""
    names = [f"req-{i}" for i in range(48)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda n: runner.invoke_direct("EchoFunction", api_event(n)), names))
    pids = set()
    for name, response in zip(names, responses, strict=True):
        assert response["statusCode"] == 200
        body = json.loads(response["body"])
        assert (body["name"], body["resolverSees"], body["moduleSees"]) == (name, name, name)
        pids.add(body["pid"])
    assert 1 < len(pids) <= 4  # really concurrent, and never more environments than workers


def test_environment_is_template_globals_plus_function_plus_local_values(runner):
    env = json.loads(runner.invoke_direct("EchoFunction", api_event("env", 0))["body"])["env"]
    assert env == {
        "ITEMS_TABLE": "ItemsTable",  # !Ref resolved to the logical id = the local table name
        "GREETING": "hello",  # Globals
        "ECHO_ONLY": "yes",  # the function's own
        "BILLING_CONFIG_CACHE_SECONDS": "0",  # template says 5; locally 0
        "BILLING_INTERNAL_JWT_SECRET": DEV_SECRET_DEFAULTS["BILLING_INTERNAL_JWT_SECRET"],
        "AWS_ENDPOINT_URL": MOTO_URL,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "EchoFunction",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def test_environment_takes_secrets_and_overrides_from_the_shell_but_never_aws():
    spec = function_specs(FIXTURE_TEMPLATE)["EchoFunction"]
    shell = {
        "PATH": "/usr/bin",
        "BILLING_USER_JWT_SECRET": "u" * 40,
        "ENABLE_BILLING_HARD_LIMITS": "false",
        "BILLING_TABLE": "someone-elses-table",
        "BILLING_LOCAL_PORT": "4000",
        "AWS_PROFILE": "production",
        "AWS_ACCESS_KEY_ID": "AKIAREALKEY",
        "AWS_SESSION_TOKEN": "real-session",
    }
    env = function_environment(spec, moto_url="http://127.0.0.1:5555", environ=shell)
    assert env["PATH"] == "/usr/bin"
    assert env["BILLING_USER_JWT_SECRET"] == "u" * 40
    assert env["STRIPE_WEBHOOK_SECRET"] == DEV_SECRET_DEFAULTS["STRIPE_WEBHOOK_SECRET"]
    assert env["ENABLE_BILLING_HARD_LIMITS"] == "false"
    assert env["BILLING_TABLE"] == "ItemsTable"  # the local table, whatever the shell says
    assert "BILLING_LOCAL_PORT" not in env
    assert "AWS_PROFILE" not in env and "AWS_SESSION_TOKEN" not in env
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5555"
    assert all(len(value) >= 32 for value in DEV_SECRET_DEFAULTS.values())


def test_a_function_gets_only_the_secrets_its_template_entry_names():
    """As deployed: the user secret reaches the function that declares it, not its neighbour,
    whether it comes from the shell or from the development defaults."""
    specs = function_specs(FIXTURE_TEMPLATE)
    shell = {"BILLING_USER_JWT_SECRET": "u" * 40}
    echo = function_environment(specs["EchoFunction"], moto_url=None, environ=shell)
    boom = function_environment(specs["BoomFunction"], moto_url=None, environ=shell)
    assert echo["BILLING_USER_JWT_SECRET"] == "u" * 40
    assert "BILLING_USER_JWT_SECRET" not in boom and "STRIPE_WEBHOOK_SECRET" not in boom
    assert "BILLING_ADMIN_JWT_SECRET" not in echo and "BILLING_ADMIN_JWT_SECRET" not in boom


def test_a_raising_handler_is_an_error_not_a_dead_pool(runner):
    with pytest.raises(LambdaInvocationError) as info:
        runner.invoke_direct("BoomFunction", {})
    assert info.value.payload["errorType"] == "RuntimeError"
    assert "boom" in info.value.payload["errorMessage"]
    assert runner.invoke_direct("EchoFunction", api_event("after-boom", 0))["statusCode"] == 200


def test_api_invoke_writes_the_response_or_a_502_to_stdout(runner):
    """The interface SAM CLI's LocalApigwService uses."""
    from samcli.lib.utils.stream_writer import StreamWriter

    assert runner.is_debugging() is False
    out = io.StringIO()
    runner.invoke("EchoFunction", json.dumps(api_event("via-sam", 0)), stdout=StreamWriter(out), stderr=None)
    assert json.loads(json.loads(out.getvalue())["body"])["name"] == "via-sam"

    out = io.StringIO()
    runner.invoke("BoomFunction", "{}", stdout=StreamWriter(out), stderr=None, tenant_id=None)
    response = json.loads(out.getvalue())
    assert response["statusCode"] == 502
    assert json.loads(response["body"]) == {"message": "Internal server error"}


def test_unknown_function_is_sams_function_not_found(runner):
    from samcli.local.lambdafn.exceptions import FunctionNotFound

    with pytest.raises(FunctionNotFound):
        runner.invoke("NoSuchFunction", "{}", stdout=None)


def test_timeouts_and_crashes_replace_the_worker():
    with WorkerPoolRunner(
        FIXTURE_TEMPLATE, workers=1, moto_url=MOTO_URL, environ={}, cold_start_grace=1.0, log_errors=False
    ) as pool:
        with pytest.raises(LambdaInvocationError) as info:
            pool.invoke_direct("SlowFunction", {"sleep": 30})  # Timeout: 1 in the template
        assert info.value.payload["errorType"] == "Sandbox.Timedout"
        first = pool.invoke_direct("SlowFunction", {"sleep": 0})["pid"]

        with pytest.raises(LambdaInvocationError) as info:
            pool.invoke_direct("SlowFunction", {"exit": True})
        assert info.value.payload["errorType"] == "Runtime.ExitError"
        second = pool.invoke_direct("SlowFunction", {"sleep": 0})["pid"]
        assert first != second


def test_call_runs_a_target_in_a_worker_with_a_functions_environment(runner):
    """How the stack seeds: billing_core.ledger.bootstrap:seed runs like this (here a stand-in that
    only reports what it would use, since nothing listens at MOTO_URL)."""
    target = f"{Path(__file__).parent / 'fixtures' / 'env_probe.py'}:probe"
    result = runner.call(target, env_function="EchoFunction")
    assert result == {"table": "ItemsTable", "endpoint": MOTO_URL, "layer": True}


def test_stopped_runner_refuses_work():
    pool = WorkerPoolRunner(FIXTURE_TEMPLATE, workers=1, moto_url=MOTO_URL, environ={}).start()
    pool.stop()
    with pytest.raises(RuntimeError):
        pool.invoke_direct("EchoFunction", api_event("late"))


def test_callers_wait_for_a_free_worker():
    """More concurrent callers than workers: all are served, one at a time per worker."""
    with WorkerPoolRunner(FIXTURE_TEMPLATE, workers=1, moto_url=MOTO_URL, environ={}) as pool:
        results = []
        threads = [
            threading.Thread(target=lambda n=n: results.append(pool.invoke_direct("EchoFunction", api_event(n))))
            for n in ("a", "b", "c")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        names = sorted(json.loads(r["body"])["moduleSees"] for r in results)
        assert names == ["a", "b", "c"]
