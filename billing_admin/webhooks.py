"""Outbound event webhooks: register, list, disable/enable, delete and rotate endpoints, and an
account's low-balance threshold (balance.low)."""

from __future__ import annotations

import argparse
import sys

from billing_admin import arguments, render
from billing_admin.accounts import show_record
from billing_admin.client import segment
from billing_admin.context import Context
from billing_admin.errors import EXIT_OK, UsageError

ENDPOINTS = "/admin/billing/webhook-endpoints"
EVENTS = ("topup.credited", "balance.low", "quota.threshold", "reservation.expired", "work.parked")
COLUMNS = [
    render.Column("endpoint", "endpointId"), render.Column("url", "url"),
    render.Column("events", "events"), render.Column("status", "status", style="cyan"),
    render.Column("description", "description"), render.Column("created", "createdAt", time=True),
    render.Column("secret rotated", "secretRotatedAt", time=True),
]
SECRET_FIELDS = ("endpointId", "url", "events", "status", "secret", "previousSecretExpiresAt")


def _show_secret(ctx: Context, title: str, body: dict) -> int:
    code = show_record(ctx, title, body, SECRET_FIELDS)
    if not ctx.out.json_mode:
        sys.stderr.write("The secret is shown this once: store it with the receiver now.\n")
    return code


def cmd_create(ctx: Context) -> int:
    a = ctx.args
    body = {"url": a.endpoint_url, "events": list(dict.fromkeys(a.event)), "description": a.description}
    return _show_secret(ctx, "webhook endpoint registered", ctx.client.post(ENDPOINTS, body))


def cmd_list(ctx: Context) -> int:
    body = ctx.client.get(ENDPOINTS)
    if ctx.out.json_mode:
        ctx.out.json(body)
        return EXIT_OK
    rows = [{**e, "events": ", ".join(e.get("events") or [])} for e in body.get("endpoints") or []]
    ctx.out.show(render.table("webhook endpoints", COLUMNS, rows, caption=f"{len(rows)} endpoint(s)"))
    return EXIT_OK


def _status(ctx: Context, action: str) -> int:
    body = ctx.client.post(f"{ENDPOINTS}/{segment(ctx.args.endpoint)}/{action}", {})
    return show_record(ctx, f"{action}d {ctx.args.endpoint}", body, ("endpointId", "url", "status", "updatedAt"))


def cmd_disable(ctx: Context) -> int:
    return _status(ctx, "disable")


def cmd_enable(ctx: Context) -> int:
    return _status(ctx, "enable")


def cmd_delete(ctx: Context) -> int:
    body = ctx.client.request("DELETE", f"{ENDPOINTS}/{segment(ctx.args.endpoint)}")
    return show_record(ctx, f"deleted {ctx.args.endpoint}", body, ("endpointId", "deleted"))


def cmd_rotate(ctx: Context) -> int:
    body = ctx.client.post(f"{ENDPOINTS}/{segment(ctx.args.endpoint)}/rotate-secret", {})
    return _show_secret(ctx, f"rotated the secret of {ctx.args.endpoint} (the old one signs for 24 h more)", body)


def cmd_balance_alert(ctx: Context) -> int:
    a = ctx.args
    path = f"/admin/billing/accounts/{segment(a.account)}/balance-alert"
    if a.default:
        if a.amount is not None or a.usd is not None:
            raise UsageError("--default returns to the configured threshold: give no amount with it")
        body = ctx.client.put(path, {"lowBalanceMicro": None})
    elif a.amount is None and a.usd is None:
        body = ctx.client.get(path)
    else:
        body = ctx.client.put(path, {"lowBalanceMicro": str(arguments.one_amount(a.amount, a.usd))})
    return show_record(ctx, f"low-balance threshold of {a.account}", body, ("accountId", "lowBalanceMicro", "source"))


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = arguments.add_command(sub, "webhooks", arguments.needs_action, common,
                                  help="outbound event webhooks: create, list, disable, enable, delete, rotate")
    inner = group.add_subparsers(title="webhooks commands", metavar="ACTION")
    p = arguments.add_command(inner, "create", cmd_create, common, help="register an endpoint (prints its secret)",
                              epilog="example: billing-admin webhooks create https://app.example.com/hooks "
                                     "--event topup.credited --event balance.low")
    p.add_argument("endpoint_url", metavar="URL", help="https URL of the receiver")
    p.add_argument("--event", required=True, action="append", choices=EVENTS, help="an event type (repeatable)")
    p.add_argument("--description", help="what the endpoint is for")
    arguments.add_command(inner, "list", cmd_list, common, help="registered endpoints (never their secrets)")
    for name, func, text in (("disable", cmd_disable, "stop sending to an endpoint"),
                             ("enable", cmd_enable, "send to a disabled endpoint again"),
                             ("delete", cmd_delete, "remove an endpoint"),
                             ("rotate", cmd_rotate, "a new signing secret (the old one signs for 24 h more)")):
        p = arguments.add_command(inner, name, func, common, help=text)
        p.add_argument("endpoint", metavar="ENDPOINT_ID")

    p = arguments.add_command(sub, "balance-alert", cmd_balance_alert, common,
                              help="show or set an account's low-balance threshold (balance.low events)",
                              epilog="example: billing-admin balance-alert acct-42 --usd 5.00\n"
                                     "         billing-admin balance-alert acct-42 --default")
    p.add_argument("account", metavar="ACCOUNT_ID")
    arguments.amount_options(p, "threshold")
    p.add_argument("--default", action="store_true", help="use the configured default threshold again")
