"""argparse types for the values an operator types; each refusal is a usage error (exit 2)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import datetime

from billing_admin.errors import UsageError
from billing_admin.money import AmountError, parse_micro, parse_usd

MAX_BPS = 10_000
_SHARE = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.:@-]{0,127})=([0-9]{1,5})", re.ASCII)


def _typed(parse: Callable[[str], object], name: str) -> Callable[[str], object]:
    def convert(text: str) -> object:
        try:
            return parse(text)
        except (AmountError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name
    return convert


def micro(what: str = "amount", *, allow_zero: bool = False) -> Callable[[str], object]:
    """A positive whole number of micro-units: "5000000"."""
    return _typed(lambda text: parse_micro(text, allow_zero=allow_zero, what=what), "micro-units")


def signed_micro(what: str) -> Callable[[str], object]:
    """A whole number of micro-units, negative allowed: "-250000"."""
    return _typed(lambda text: parse_micro(text, allow_zero=True, allow_negative=True, what=what), "micro-units")


def usd(what: str = "amount", *, allow_zero: bool = False) -> Callable[[str], object]:
    """Dollars, exactly: "5.00" -> 5000000."""
    return _typed(lambda text: parse_usd(text, allow_zero=allow_zero, what=what), "USD")


def signed_usd(what: str) -> Callable[[str], object]:
    return _typed(lambda text: parse_usd(text, allow_zero=True, allow_negative=True, what=what), "USD")


def check_timestamp(text: str) -> str:
    """An ISO-8601 timestamp with a timezone, passed on as typed."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"must be an ISO-8601 timestamp such as 2026-12-31T23:59:59Z, got {text!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"must carry a timezone (Z or +hh:mm), got {text!r}")
    return text


timestamp = _typed(check_timestamp, "timestamp")


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            raise ValueError(f"must be a whole number from {low} to {high}, got {text!r}")
        return int(text)

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"must be a number of seconds, got {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise ValueError(f"must be between 0.1 and 3600 seconds, got {text!r}")
    return value


seconds = _typed(_seconds, "seconds")


def count(low: int = 1, high: int = 1000) -> Callable[[str], object]:
    return _typed(_bounded_int(low, high), "count")


def share(text: str) -> tuple[str, int]:
    """ACCOUNT=BPS: basis points of consumed revenue (10000 = 100%)."""
    match = _SHARE.fullmatch(text)
    if not match or int(match.group(2)) > MAX_BPS:
        raise argparse.ArgumentTypeError(
            f"expected ACCOUNT=BPS with BPS a whole number of basis points 0..{MAX_BPS} (1000 = 10%), got {text!r}")
    return match.group(1), int(match.group(2))


def one_amount(micro_value: int | None, usd_value: int | None, *, micro_name: str = "AMOUNT",
               usd_name: str = "--usd") -> int:
    """Exactly one of the micro-unit and the USD forms of an amount."""
    if micro_value is not None and usd_value is not None:
        raise UsageError(f"give the amount once: {micro_name} (micro-units) or {usd_name} (dollars), not both")
    if micro_value is None and usd_value is None:
        raise UsageError(f"an amount is required: {micro_name} in micro-units (1 USD = 1000000) or {usd_name} 5.00")
    return micro_value if micro_value is not None else usd_value  # type: ignore[return-value]


def add_command(sub: argparse._SubParsersAction, name: str, func: Callable[..., int], common: argparse.ArgumentParser,
                *, help: str, description: str | None = None, epilog: str | None = None) -> argparse.ArgumentParser:
    """A (sub)command that accepts the common options after its name too."""
    parser = sub.add_parser(name, help=help, description=description or help, epilog=epilog, parents=[common],
                            formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.set_defaults(func=func, command_parser=parser)
    return parser


def needs_action(ctx: object) -> int:
    """The handler of a command group used without its action (`billing-admin dlq`)."""
    raise UsageError("choose an action (see --help)")


def amount_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("amount", metavar="AMOUNT", nargs="?", type=micro(what),
                        help=f"{what} in micro-units (1 USD = 1000000), e.g. 5000000")
    parser.add_argument("--usd", metavar="USD", type=usd(what),
                        help=f"{what} in dollars instead, exactly (at most 6 decimals), e.g. 5.00")


def key_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--idempotency-key", metavar="KEY",
                        help="makes the call safe to repeat: the same key and request answer the original result "
                             "(default: a fresh key per invocation, so the CLI's own retries apply it at most once)")
