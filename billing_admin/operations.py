"""Operations: the dead-letter queue, reconciliation, and an admin token for curl."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from billing_admin import arguments, auth, render
from billing_admin.accounts import show_record
from billing_admin.client import segment
from billing_admin.context import Context
from billing_admin.errors import EXIT_API_ERROR, EXIT_OK, EXIT_VIOLATIONS, UsageError

DLQ = "/admin/billing/dlq"
RECONCILIATION = "/admin/billing/reconciliation"
RECONCILE = "/admin/billing/reconcile"
RECONCILE_TIMEOUT = 120.0
DLQ_STATUSES = ("pending", "manual_review", "succeeded", "dismissed")
DLQ_COLUMNS = [
    render.Column("item", "itemId"), render.Column("operation", "operation"),
    render.Column("status", "status", style="cyan"), render.Column("attempts", "attempts"),
    render.Column("last error", "lastError", style="red"), render.Column("next retry", "nextRetryAt", time=True),
    render.Column("reference", "reference"), render.Column("created", "createdAt", time=True),
    render.Column("updated", "updatedAt", time=True),
]
RUN_FIELDS = ("runId", "status", "startedAt", "finishedAt", "lotsChecked", "accountsChecked", "driftRatio")


# -- DLQ ----------------------------------------------------------------------------------------------
def cmd_dlq_list(ctx: Context) -> int:
    body = ctx.client.collect(DLQ, {"status": ctx.args.status}, key="items", limit=ctx.args.limit)
    if ctx.out.json_mode:
        ctx.out.json(body)
        return EXIT_OK
    items = body.get("items") or []
    more = (body.get("pagination") or {}).get("hasMore")
    caption = f"{len(items)} item(s)" + ("; more exist (raise --limit)" if more else "")
    ctx.out.show(render.table(f"dead-letter queue{f' ({ctx.args.status})' if ctx.args.status else ''}",
                              DLQ_COLUMNS, items, caption=caption))
    return EXIT_OK


def cmd_dlq_replay(ctx: Context) -> int:
    """Exit 0 only when the item is now succeeded: a replay that failed again is answered 200 by the
    API (the attempt was recorded) but is not a success for the operator or a script."""
    body = ctx.client.post(f"{DLQ}/{segment(ctx.args.item)}/replay", {})
    show_record(ctx, f"replayed {ctx.args.item}", body, ("itemId", "status", "attempts", "lastError", "result"))
    if isinstance(body, dict) and body.get("status") != "succeeded":
        ctx.out.error(f"{ctx.args.item} failed again and is {body.get('status')}: {body.get('lastError') or '-'}")
        return EXIT_API_ERROR
    return EXIT_OK


def cmd_dlq_dismiss(ctx: Context) -> int:
    body = ctx.client.post(f"{DLQ}/{segment(ctx.args.item)}/dismiss", {"reason": ctx.args.reason})
    return show_record(ctx, f"dismissed {ctx.args.item}", body, ("itemId", "status", "dismissedBy", "dismissReason"))


# -- reconciliation -----------------------------------------------------------------------------------
def show_run(ctx: Context, run: dict[str, Any]) -> None:
    """The run's figures, then one table per list (violations, drifted accounts, ...) and per object."""
    scalars = {k: v for k, v in run.items() if not isinstance(v, list | dict)}
    lists = {k: v for k, v in run.items() if isinstance(v, list)}
    objects = {k: v for k, v in run.items() if isinstance(v, dict)}
    status = run.get("status")
    counts = {f"{name} (count)": len(values) for name, values in lists.items()}
    ctx.out.show(render.record(f"reconciliation: {status or '?'}", {**scalars, **counts}, RUN_FIELDS))
    for name, values in lists.items():
        if values:
            ctx.out.show(render.listing(name, values))
    for name, value in objects.items():
        if value and all(isinstance(v, dict) for v in value.values()):  # e.g. per system account
            ctx.out.show(render.listing(name, [{"key": k, **v} for k, v in value.items()]))
        elif value:
            ctx.out.show(render.record(name, value))
    if status == "violations":
        ctx.out.error("reconciliation found violations (exit 3)")


def cmd_reconcile(ctx: Context) -> int:
    if ctx.args.now:
        with ctx.out.err.status("reconciling: checking every lot and every account against its ledger ..."):
            run = ctx.client.post(RECONCILE, {}, timeout=max(ctx.args.timeout, RECONCILE_TIMEOUT))
    else:
        run = ctx.client.get(RECONCILIATION)
    if ctx.out.json_mode:
        ctx.out.json(run)
    else:
        show_run(ctx, run)
    return EXIT_VIOLATIONS if run.get("status") == "violations" else EXIT_OK


# -- token --------------------------------------------------------------------------------------------
def cmd_token(ctx: Context) -> int:
    source = auth.minted_source(ctx.environ, ctx.args.actor, lifetime=ctx.args.ttl)
    if source is None:
        raise UsageError("`token` mints with the admin secret: set BILLING_ADMIN_JWT_SECRET")
    token = source.mint()
    if ctx.out.json_mode:
        expires = datetime.fromtimestamp(source.expires, UTC).isoformat().replace("+00:00", "Z")
        ctx.out.json({"token": token, "sub": source.subject, "aud": source.audience, "expiresAt": expires})
    else:
        sys.stdout.write(token + "\n")
        sys.stdout.flush()
    return EXIT_OK


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = arguments.add_command(sub, "dlq", arguments.needs_action, common,
                                  help="the dead-letter queue: list, replay, dismiss")
    inner = group.add_subparsers(title="dlq commands", metavar="ACTION")
    p = arguments.add_command(inner, "list", cmd_dlq_list, common, help="items of the dead-letter queue")
    p.add_argument("--status", choices=DLQ_STATUSES)
    p.add_argument("--limit", type=arguments.count(1, 10_000), default=50, help="at most this many (default: 50)")
    p = arguments.add_command(inner, "replay", cmd_dlq_replay, common, help="run one item again now")
    p.add_argument("item", metavar="ITEM_ID")
    p = arguments.add_command(inner, "dismiss", cmd_dlq_dismiss, common,
                              help="close an item resolved by hand (kept, with the reason)")
    p.add_argument("item", metavar="ITEM_ID")
    p.add_argument("--reason", required=True, help="why it will not be replayed (recorded on the item)")

    p = arguments.add_command(sub, "reconcile", cmd_reconcile, common,
                              help="the last reconciliation, or (--now) run one; exit 3 on violations",
                              epilog="example: billing-admin reconcile --now || page-someone")
    p.add_argument("--now", action="store_true", help="run a reconciliation now and wait for it")

    p = arguments.add_command(sub, "token", cmd_token, common,
                              help="print a fresh admin token (needs BILLING_ADMIN_JWT_SECRET)",
                              epilog='example: curl -H "Authorization: Bearer $(billing-admin token)" ...')
    p.add_argument("--ttl", metavar="SECONDS", type=arguments.count(auth.REFRESH_MARGIN + 1, 12 * 3600),
                   default=auth.TOKEN_LIFETIME, help="lifetime in seconds (default: %(default)s)")
