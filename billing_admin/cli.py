"""billing-admin: the operator CLI of the credit-billing API.

It only talks to the HTTP API (with an admin token), so it works the same against the local stack
(`make run`) and a deployed one. See docs/cli.md.

Exit codes: 0 ok, 1 the API refused or failed (its error code and message are printed), 2 usage
error (nothing was sent), 3 `reconcile` found violations, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from billing_admin import __version__, accounts, campaigns, configuration, operations, webhooks
from billing_admin.auth import TOKEN_LIFETIME
from billing_admin.client import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, DEFAULT_URL, ApiError
from billing_admin.context import Context
from billing_admin.errors import EXIT_API_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from billing_admin.render import Output

PROG = "billing-admin"
ENVIRONMENT = f"""\
environment:
  BILLING_API_URL            the API (default {DEFAULT_URL}, the local stack)
  BILLING_ADMIN_TOKEN        an admin token to send (or --token)
  BILLING_ADMIN_JWT_SECRET   the admin signing secret: mint a {TOKEN_LIFETIME} s token per run instead
  BILLING_ADMIN_JWT_AUDIENCE the admin audience, when not arrakis-billing-admin

exit codes: 0 ok, 1 API error, 2 usage error, 3 reconcile found violations, 130 interrupted
"""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds, got {text!r}")
    return value


def _retries(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 100:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 100, got {text!r}")
    return int(text)


def common_options(*, suppress: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after its name. On the commands themselves the
    defaults are SUPPRESS, so an option given before the command name is not reset after it."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    group = parser.add_argument_group("common options")
    group.add_argument("--url", default=default(None), metavar="URL",
                       help=f"the billing API (default: $BILLING_API_URL or {DEFAULT_URL})")
    group.add_argument("--token", default=default(None), metavar="JWT",
                       help="admin token (default: $BILLING_ADMIN_TOKEN; prefer the variable, "
                            "a command line is visible to other local users)")
    group.add_argument("--actor", default=default(None), metavar="NAME",
                       help="subject of minted tokens, recorded as the actor: an identifier (default: the login name)")
    group.add_argument("--json", action="store_true", default=default(False),
                       help="print the API's JSON instead of tables")
    group.add_argument("--timeout", type=_positive_float, default=default(DEFAULT_TIMEOUT), metavar="SECONDS",
                       help=f"per request (default: {DEFAULT_TIMEOUT:g})")
    group.add_argument("--max-retries", type=_retries, default=default(DEFAULT_MAX_RETRIES), metavar="N",
                       help=f"retries after 429 / a transient failure (default: {DEFAULT_MAX_RETRIES})")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, parents=[common_options(suppress=False)], epilog=ENVIRONMENT,
        description="Operate the credit-billing API: mint and adjust credit, switch the billing mode, run "
                    "campaigns, replay the dead-letter queue, reconcile, manage event webhooks, and tail an account's "
                    "history.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # `--delt -5` is a typo, not --delta
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    common = common_options(suppress=True)
    for module in (accounts, configuration, campaigns, operations, webhooks):
        module.register(sub, common)
    return parser


def run(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None, stdin: TextIO | None = None,
        sleep: Callable[[float], None] = time.sleep) -> int:
    """Parse, run one command, and map what happened to the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    out = Output(json_mode=args.json)
    ctx = Context(args, out, os.environ if environ is None else environ, stdin or sys.stdin, sleep)
    try:
        return args.func(ctx)
    except UsageError as exc:
        args.command_parser.print_usage(sys.stderr)
        sys.stderr.write(f"{args.command_parser.prog}: error: {exc}\n")
        return EXIT_USAGE
    except ApiError as exc:
        out.api_error(exc)
        return EXIT_API_ERROR
    except KeyboardInterrupt:
        out.error("interrupted")
        return EXIT_INTERRUPTED


def main() -> int:
    try:
        return run()
    except BrokenPipeError:  # `billing-admin history x | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_API_ERROR


if __name__ == "__main__":
    sys.exit(main())
