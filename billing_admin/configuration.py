"""The deployment's billing config: the mode (shadow, soft, live) and the revenue shares."""

from __future__ import annotations

import argparse
from decimal import Decimal
from typing import Any

from billing_admin import arguments, render
from billing_admin.client import ApiError
from billing_admin.context import Context
from billing_admin.errors import EXIT_API_ERROR, EXIT_OK, UsageError

CONFIG = "/admin/billing/config"
MODE = "/admin/billing/config/mode"
SHARES = "/admin/billing/config/revenue-shares"
MODES = ("shadow", "soft", "live")
MODE_MEANING = {
    "shadow": "nothing is charged; every charge is recorded as shadow_* entries",
    "soft": "real charges; an insufficient balance becomes debt instead of a refusal",
    "live": "real charges; a reserve beyond the balance is refused with 402",
}


def percent(bps: Any) -> str:
    try:
        return f"{Decimal(int(bps)) / 100:.2f}%"
    except (TypeError, ValueError):
        return "?"


def shares_table(title: str, shares: dict[str, Any], previous: dict[str, Any] | None = None) -> Any:
    names = list(shares) + [name for name in (previous or {}) if name not in shares]
    rows = []
    for name in names:
        row = {"account": name, "bps": shares.get(name, 0), "share": percent(shares.get(name, 0))}
        if previous is not None:
            row["before"] = f"{previous.get(name, 0)} ({percent(previous.get(name, 0))})"
        rows.append(row)
    total = sum(int(v) for v in shares.values() if str(v).isdigit())
    columns = [render.Column("account", "account"), render.Column("bps", "bps"), render.Column("share", "share")]
    if previous is not None:
        columns.append(render.Column("before", "before", style="dim"))
    return render.table(title, columns, rows, caption=f"total {total} bps ({percent(total)})")


def show_config(ctx: Context, config: dict[str, Any]) -> None:
    mode = config.get("mode")
    ctx.out.show(render.record("billing config", {k: v for k, v in config.items() if k != "revenueShares"},
                               ("mode", "updatedAt", "updatedBy")))
    if mode in MODE_MEANING:
        ctx.out.info(f"{mode}: {MODE_MEANING[mode]}")
    if isinstance(config.get("revenueShares"), dict):
        ctx.out.show(shares_table("revenue shares", config["revenueShares"]))


def current_mode(ctx: Context) -> str | None:
    """The mode now, for the confirmation question; None when it cannot be read."""
    try:
        return ctx.client.get(CONFIG).get("mode")
    except ApiError:
        return None


def cmd_mode(ctx: Context) -> int:
    a = ctx.args
    if a.mode is None:
        config = ctx.client.get(CONFIG)
        if ctx.out.json_mode:
            ctx.out.json(config)
        else:
            show_config(ctx, config)
        return EXIT_OK
    if a.mode == "live" and not a.yes:
        now = current_mode(ctx)
        if now == "live":
            ctx.out.info("the mode is already live")
        elif not ctx.confirm(f"Switch billing to live{f' (now {now})' if now else ''}? {MODE_MEANING['live']}.",
                             action="switching to live"):
            ctx.out.error("not confirmed; the mode was not changed")
            return EXIT_API_ERROR
    result = ctx.client.put(MODE, {"mode": a.mode})
    if ctx.out.json_mode:
        ctx.out.json(result)
        return EXIT_OK
    ctx.out.show(render.record(f"billing mode: {result.get('previousMode', '?')} -> {result.get('mode', a.mode)}",
                               result, ("mode", "previousMode", "updatedAt", "updatedBy")))
    return EXIT_OK


def cmd_revenue_shares(ctx: Context) -> int:
    a = ctx.args
    if not a.shares and not a.clear:
        config = ctx.client.get(CONFIG)
        if ctx.out.json_mode:
            ctx.out.json({"revenueShares": config.get("revenueShares"), "updatedAt": config.get("updatedAt")})
        else:
            ctx.out.show(shares_table("revenue shares", config.get("revenueShares") or {}))
        return EXIT_OK
    if a.shares and a.clear:
        raise UsageError("give ACCOUNT=BPS pairs or --clear, not both")
    shares: dict[str, int] = {}
    for account, bps in a.shares or []:
        if account in shares:
            raise UsageError(f"{account} is given twice")
        shares[account] = bps
    if sum(shares.values()) > arguments.MAX_BPS:
        raise UsageError(f"the shares add up to {sum(shares.values())} bps, more than {arguments.MAX_BPS} (100%)")
    result = ctx.client.put(SHARES, {"shares": shares})
    if ctx.out.json_mode:
        ctx.out.json(result)
    else:
        previous = result.get("previousRevenueShares")
        ctx.out.show(shares_table("revenue shares (updated)", result.get("revenueShares") or {},
                                  previous if isinstance(previous, dict) else None))
        if result.get("updatedAt"):
            ctx.out.info(f"updated at {result['updatedAt']}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = arguments.add_command(sub, "mode", cmd_mode, common,
                              help="show the billing config, or switch the mode (shadow, soft, live)",
                              epilog="example: billing-admin mode            # show\n"
                                     "         billing-admin mode live --yes # switch without asking")
    p.add_argument("mode", nargs="?", choices=MODES, metavar="{shadow,soft,live}")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask before switching to live")

    p = arguments.add_command(sub, "revenue-shares", cmd_revenue_shares, common,
                              help="show, or replace, the revenue shares (basis points of consumed credit)",
                              epilog="example: billing-admin revenue-shares sys-foundation=1000 sys-commons=500\n"
                                     "The given map replaces the whole current one.")
    p.add_argument("shares", nargs="*", metavar="ACCOUNT=BPS", type=arguments.share)
    p.add_argument("--clear", action="store_true", help="remove every share")
