"""`python -m devserver`: the whole billing API on 127.0.0.1:${BILLING_LOCAL_PORT:-3000}.

No Docker, no AWS account: moto in this process (DynamoDB and SQS; with
BILLING_LOCAL_ENGINE=dynamodb-local, DynamoDB is Amazon DynamoDB Local in a java child process,
installed on first use), the template's functions in worker
processes, SAM CLI's API Gateway emulation in front, and the background work moto does not do
(the template's schedules on local timers, its SQS triggers as pollers; devserver.background).
Ctrl-C or SIGTERM stops everything.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from devserver.dynamodb_local import DynamoDBLocalError
from devserver.engine import MotoVersionError
from devserver.gateway import SamCliVersionError
from devserver.runner import DEFAULT_WORKERS, LambdaInvocationError
from devserver.stack import DEFAULT_SEED, LocalStack, default_port
from devserver.template import DEFAULT_TEMPLATE
from devserver.tokens import DEV_SECRET_DEFAULTS, admin_token, internal_token, user_token


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devserver", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default: $BILLING_LOCAL_PORT or 3000; 0 = free")
    parser.add_argument("--moto-port", type=int, default=0, help="port of the embedded moto server (0 = free)")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="Lambda worker processes")
    parser.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    parser.add_argument("--seed", default=DEFAULT_SEED, help="module:function run once in a worker")
    parser.add_argument("--no-seed", action="store_true", help="start with empty tables")
    parser.add_argument(
        "--no-background",
        action="store_true",
        help="run no schedules and poll no queues (see BILLING_LOCAL_SCHEDULE_* in devserver.background)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="dev only: give acct-demo credit, two weeks of charges and usage, in live mode (devserver.demo)",
    )
    parser.add_argument("--ready-file",
                        help="write {url, motoUrl, dynamodbUrl, engine, pid} as JSON here once serving")
    parser.add_argument("--quiet", action="store_true", help="no banner")
    return parser


def _python_cmd() -> str:
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(Path.cwd()))
    except ValueError:
        return str(exe)


def banner(stack: LocalStack, *, demo: dict[str, Any] | None = None) -> str:
    assert stack.gateway is not None
    url = stack.url
    py = _python_cmd()
    queues = getattr(stack, "queues", None) or {}
    lines = [
        f"Billing API (local, dev only) at {url}",
        _engine_line(stack),
        f"  SQS emulation (moto) at {stack.moto_url}, queues: {', '.join(queues) or '-'}",
        f"  {stack.workers} Lambda worker processes; seed: {stack.seed or 'skipped'}",
        "",
    ]
    lines += _background_lines(stack)
    lines += ["", "Routes:"]
    lines += [f"  {method:6} {path}  -> {fn}" for method, path, fn in stack.gateway.routes]
    lines += ["", "Secrets in use (environment, else the dev-only defaults; never deploy these):"]
    for name, value in stack.secrets.items():
        source = "default" if value == DEV_SECRET_DEFAULTS[name] else "from env"
        lines.append(f"  {name}={value}  ({source})")
    lines += [
        "",
        "Tokens:",
        f"  internal (svc-demo, expires in 5 min): {internal_token(environ=stack.environ)}",
        f"  admin (ops-admin, 12 h): {admin_token(environ=stack.environ)}",
        f"  user (acct-demo, 12 h): {user_token(environ=stack.environ)}",
        f"  a fresh one any time: {py} -m devserver.tokens internal|admin|user [subject]",
        "",
        "Try:",
    ]
    paths = {(method, path) for method, path, _ in stack.gateway.routes}
    curls = []
    if ("GET", "/api/billing/pricing") in paths:
        curls.append(f"  curl -s {url}/api/billing/pricing")
    if ("POST", "/api/internal/billing/reserve") in paths:
        curls.append(
            f"  curl -s -X POST {url}/api/internal/billing/reserve"
            f' -H "Authorization: Bearer $({py} -m devserver.tokens internal)"'
            " -H 'Content-Type: application/json'"
            """ -d '{"accountId": "acct-demo", "estimatedCostMicro": "1000000"}'"""
        )
        sweeper = _scheduled_job(stack, "SweeperFunction")
        if sweeper is not None:
            curls += [
                f"  # with a 5 s TTL and nobody finalizing, the sweeper (every {sweeper.interval:g} s) releases it and"
                " logs '[background] SweeperFunction: expired 1 reservation':",
                curls[-1].replace('"1000000"}', '"1000000", "ttlSeconds": 5}'),
            ]
    if not curls:
        method, path, _ = stack.gateway.routes[0]
        curls.append(f"  curl -s -X {method} {url}{path}")
    lines += curls
    lines += _billing_page_lines(stack, demo)
    lines += ["", "Ctrl-C to stop."]
    return "\n".join(lines)


def _engine_line(stack: LocalStack) -> str:
    tables = ", ".join(stack.tables) or "-"
    if getattr(stack, "engine_name", "moto") == "dynamodb-local":
        line = f"  DynamoDB: Amazon DynamoDB Local at {stack.dynamodb_url} (BILLING_LOCAL_ENGINE), tables: {tables}"
    else:
        line = f"  DynamoDB emulation (moto) at {stack.moto_url}, tables: {tables}"
    faults = getattr(stack, "faults", "")
    if faults:
        line += f"\n  Injecting DynamoDB faults: {faults} (BILLING_LOCAL_FAULTS; each logged as 'injected fault')"
    return line


def _billing_page_lines(stack: LocalStack, demo: dict[str, Any] | None) -> list[str]:
    """The customer's billing page, signed in as acct-demo (the token rides in the URL fragment)."""
    assert stack.gateway is not None
    if ("GET", "/billing") not in {(method, path) for method, path, _ in stack.gateway.routes}:
        return []
    if demo:
        what = (f"  demo data (dev only, --demo): live mode, {demo['charges']} charges over the last two weeks,"
                " usage at 62 % / 87 % / 100 % of tokens / runs / seats")
    else:
        what = ("  acct-demo starts empty: run the README's 'Try it' for some credit and history, or start with"
                " `make demo` for two weeks of demo data")
    return [
        "",
        "The customer's billing page, signed in as acct-demo (12 h; open it in a browser):",
        f"  {stack.url}/billing#token={user_token(environ=stack.environ)}",
        what,
    ]


def _scheduled_job(stack: LocalStack, function_id: str) -> Any:
    background = getattr(stack, "background", None)
    for job in getattr(background, "jobs", None) or ():
        if getattr(job, "name", None) == function_id and hasattr(job, "interval") and hasattr(job, "schedule"):
            return job
    return None


def _background_lines(stack: LocalStack) -> list[str]:
    background = getattr(stack, "background", None)
    if background is None:
        return ["Background jobs: off (--no-background): no schedules run, no queue is consumed."]
    described = background.describe()
    if not described:
        return ["Background jobs: none in the template."]
    lines = ["Background jobs (moto runs neither schedules nor SQS triggers; this stack does):"]
    lines += [f"  {line}" for line in described]
    lines.append(
        "  tune: BILLING_LOCAL_SCHEDULE_SECONDS_<FunctionId>=N (0 = off), BILLING_LOCAL_SCHEDULE_SCALE=F,"
        " BILLING_LOCAL_QUEUE_POLL_SECONDS=N; --no-background for none"
    )
    return lines


def _write_ready_file(path: str, stack: LocalStack) -> None:
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps({"url": stack.url, "motoUrl": stack.moto_url, "dynamodbUrl": stack.dynamodb_url,
                               "engine": stack.engine_name, "pid": os.getpid()}))
    os.replace(tmp, target)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # One handler at the root before anything logs: werkzeug's access log then goes through it
    # (werkzeug adds its own handler when there is none, which later doubles every line).
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("samcli").setLevel(logging.WARNING)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C: give up on a clean stop
            os._exit(130)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        stack = LocalStack(
            args.template,
            host=args.host,
            port=default_port() if args.port is None else args.port,
            moto_port=args.moto_port,
            workers=args.workers,
            seed=None if args.no_seed else args.seed,
            background=not args.no_background,
        )
        stack.start()
    except LambdaInvocationError as exc:
        print(f"devserver: seeding with {args.seed} failed: {exc}. Use --no-seed to start empty.", file=sys.stderr)
        return 1
    except (OSError, SamCliVersionError, MotoVersionError, DynamoDBLocalError,
            ValueError) as exc:  # ValueError: TemplateError, a knob, BILLING_LOCAL_ENGINE, BILLING_LOCAL_FAULTS
        print(f"devserver: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        demo = None
        if args.demo:
            assert stack.runner is not None
            try:
                demo = stack.runner.call("devserver.demo:seed")
            except LambdaInvocationError as exc:
                print(f"devserver: the demo data (--demo) failed: {exc}", file=sys.stderr)
                return 1
        if not args.quiet:
            print(banner(stack, demo=demo), flush=True)
        if args.ready_file:
            _write_ready_file(args.ready_file, stack)
        while not stop.wait(0.1):
            pass
        print("devserver: stopping", file=sys.stderr, flush=True)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
