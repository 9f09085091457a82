"""Campaigns: a budget of credit granted to accounts, which grants can never exceed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from billing_admin import arguments, batch, render
from billing_admin.accounts import new_key, post_keyed, show_record
from billing_admin.client import ApiError, segment
from billing_admin.context import Context
from billing_admin.errors import EXIT_OK
from billing_admin.money import format_money

CAMPAIGNS = "/admin/billing/campaigns"
CAMPAIGN_FIELDS = ("campaignId", "name", "status", "budgetMicro", "grantedMicro", "remainingMicro",
                   "perAccountCapMicro", "poolId", "grantExpiresAt", "createdAt")
CAMPAIGN_COLUMNS = [
    render.Column("id", "campaignId", no_wrap=True), render.Column("name", "name", min_width=12),
    render.Column("status", "status", style="cyan", no_wrap=True),
    render.Column("budget", "budgetMicro"), render.Column("granted", "grantedMicro"),
    render.Column("remaining", "remainingMicro"), render.Column("per-account cap", "perAccountCapMicro"),
    render.Column("pool", "poolId", no_wrap=True), render.Column("grants expire", "grantExpiresAt", time=True),
]


def campaign_path(campaign_id: str, *rest: str) -> str:
    return "/".join([CAMPAIGNS, segment(campaign_id), *rest])


def cmd_list(ctx: Context) -> int:
    body = ctx.client.collect(CAMPAIGNS, {}, key=("campaigns", "items"), limit=ctx.args.limit)
    if ctx.args.status:  # the API lists every campaign; the filter is applied here
        body["campaigns"] = [c for c in body.get("campaigns", body.get("items")) or []
                             if c.get("status") == ctx.args.status]
    if ctx.out.json_mode:
        ctx.out.json(body)
        return EXIT_OK
    rows = body.get("campaigns", body.get("items")) or []
    ctx.out.show(render.table("campaigns", CAMPAIGN_COLUMNS, rows, caption=f"{len(rows)} campaign(s)"))
    return EXIT_OK


def cmd_show(ctx: Context) -> int:
    body = ctx.client.get(campaign_path(ctx.args.campaign))
    return show_record(ctx, f"campaign {ctx.args.campaign}", body, CAMPAIGN_FIELDS)


def cmd_create(ctx: Context) -> int:
    a = ctx.args
    budget = arguments.one_amount(a.budget, a.budget_usd, micro_name="--budget", usd_name="--budget-usd")
    body: dict[str, Any] = {"name": a.name, "budgetMicro": str(budget)}
    cap = None
    if a.per_account_cap is not None or a.per_account_cap_usd is not None:
        cap = arguments.one_amount(a.per_account_cap, a.per_account_cap_usd, micro_name="--per-account-cap",
                                   usd_name="--per-account-cap-usd")
        body["perAccountCapMicro"] = str(cap)
    for field, value in (("campaignId", a.id), ("poolId", a.pool), ("grantExpiresAt", a.grant_expires_at)):
        if value:
            body[field] = value
    created = ctx.client.post(CAMPAIGNS, body)
    return show_record(ctx, f"created campaign {created.get('campaignId', a.id or '')}", created, CAMPAIGN_FIELDS)


def _set_status(ctx: Context, action: str) -> int:
    body = ctx.client.post(campaign_path(ctx.args.campaign, action), {})
    return show_record(ctx, f"campaign {ctx.args.campaign}: {body.get('status', action)}", body, CAMPAIGN_FIELDS)


def cmd_pause(ctx: Context) -> int:
    return _set_status(ctx, "pause")


def cmd_resume(ctx: Context) -> int:
    return _set_status(ctx, "resume")


def cmd_grant(ctx: Context) -> int:
    a = ctx.args
    amount = arguments.one_amount(a.amount, a.usd)
    body: dict[str, Any] = {"accountId": a.account, "amountMicro": str(amount),
                            "idempotencyKey": a.idempotency_key or new_key("grant")}
    if a.description:
        body["description"] = a.description
    result = post_keyed(ctx, campaign_path(a.campaign, "grants"), body, given_key=bool(a.idempotency_key))
    if ctx.out.json_mode:
        ctx.out.json(result)
        return EXIT_OK
    shown = {k: v for k, v in result.items() if k != "lot"}  # the whole lot is in --json
    return show_record(ctx, f"granted {format_money(amount)} to {a.account} from {a.campaign}", shown,
                       ("campaignId", "grantId", "accountId", "amountMicro", "lotId", "remainingMicro"))


def cmd_grant_batch(ctx: Context) -> int:
    a = ctx.args
    batch_id = a.batch_id or Path(a.file).name
    spec = batch.Spec("grant-batch", ("account", "amount_micro"), ("description", "idempotency_key"),
                      scope=a.campaign)
    rows = batch.read(a.file, spec, batch_id=batch_id)
    if a.dry_run:
        return batch.plan(ctx.out, rows, kind=f"grant-batch {a.campaign}", batch_id=batch_id, extra=("description",))
    try:
        campaign = ctx.client.get(campaign_path(a.campaign))
        remaining = int(campaign.get("remainingMicro"))
        total = sum(row.amount for row in rows)
        if total > remaining:
            ctx.out.notice(f"the file grants {format_money(total)} but {a.campaign} has {format_money(remaining)} "
                           "left: rows beyond the budget will be refused")
    except (ApiError, TypeError, ValueError):
        pass  # the grants themselves say what is wrong

    def send(row: batch.Row) -> Any:
        body: dict[str, Any] = {"accountId": row.account, "amountMicro": str(row.amount),
                                "idempotencyKey": row.idempotency_key}
        if row.get("description"):
            body["description"] = row.get("description")
        return ctx.client.post(campaign_path(a.campaign, "grants"), body)

    results, interrupted = batch.run(ctx.client, ctx.out, rows, send, title=f"granting {Path(a.file).name}")
    return batch.report(ctx.out, results, path=str(a.file), batch_id=batch_id, kind=f"grant-batch {a.campaign}",
                        interrupted=interrupted)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = arguments.add_command(sub, "campaigns", arguments.needs_action, common,
                                  help="campaigns: list, show, create, pause, resume, grant, grant-batch")
    inner = group.add_subparsers(title="campaign commands", metavar="ACTION")

    p = arguments.add_command(inner, "list", cmd_list, common, help="every campaign")
    p.add_argument("--status", help="only campaigns in this status (e.g. active, paused)")
    p.add_argument("--limit", type=arguments.count(1, 10_000), default=None, help="at most this many")

    p = arguments.add_command(inner, "show", cmd_show, common, help="one campaign")
    p.add_argument("campaign", metavar="ID")

    p = arguments.add_command(inner, "create", cmd_create, common, help="create a campaign with a budget",
                              epilog="example: billing-admin campaigns create --name 'Launch week' "
                                     "--budget-usd 1000 --per-account-cap-usd 10")
    p.add_argument("--name", required=True)
    p.add_argument("--budget", metavar="MICRO", type=arguments.micro("budget"), help="budget in micro-units")
    p.add_argument("--budget-usd", metavar="USD", type=arguments.usd("budget"), help="budget in dollars")
    p.add_argument("--per-account-cap", metavar="MICRO", type=arguments.micro("per-account cap"),
                   help="most one account may be granted, in micro-units")
    p.add_argument("--per-account-cap-usd", metavar="USD", type=arguments.usd("per-account cap"),
                   help="the cap in dollars")
    p.add_argument("--pool", help="pool the grants are minted into")
    p.add_argument("--grant-expires-at", metavar="ISO", type=arguments.timestamp, help="when granted credit expires")
    p.add_argument("--id", help="the campaign id (default: chosen by the API)")

    for name, func, text in (("pause", cmd_pause, "stop granting"), ("resume", cmd_resume, "grant again")):
        p = arguments.add_command(inner, name, func, common, help=text)
        p.add_argument("campaign", metavar="ID")

    p = arguments.add_command(inner, "grant", cmd_grant, common, help="grant credit to one account",
                              epilog="example: billing-admin campaigns grant launch-week acct-42 --usd 10")
    p.add_argument("campaign", metavar="ID")
    p.add_argument("account", metavar="ACCOUNT")
    arguments.amount_options(p, "amount")
    p.add_argument("--description")
    arguments.key_option(p)

    p = arguments.add_command(inner, "grant-batch", cmd_grant_batch, common,
                              help="grant one row of a CSV file at a time, with a progress bar",
                              epilog="columns: account,amount_micro[,description][,idempotency_key]\n"
                                     "A row without idempotency_key gets grant-batch:<ID>:<batch id>:row-<n>.")
    p.add_argument("campaign", metavar="ID")
    p.add_argument("file", metavar="FILE.csv")
    p.add_argument("--batch-id", help="names the batch in derived idempotency keys (default: the file's name)")
    p.add_argument("--dry-run", action="store_true", help="check the file and show what would be granted")
