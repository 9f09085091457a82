"""One account's money: mint (one lot, or a CSV batch), adjust, refund, balance, history (and its tail -f)."""

from __future__ import annotations

import argparse
import uuid
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from billing_admin import arguments, batch, render
from billing_admin.client import ApiError, segment
from billing_admin.context import Context
from billing_admin.errors import EXIT_OK, UsageError
from billing_admin.money import format_money

SOURCE_TYPES = ("deposit", "grant", "campaign", "admin_mint")
DEFAULT_POOL = "general"
FOLLOW_INTERVAL = 2.0
FOLLOW_PAGE = 100
FOLLOW_MAX_PAGES = 10  # per poll: more than 1,000 new entries in one interval are not all shown
FOLLOW_REMEMBER = 10_000  # entry ids remembered to recognise what was already printed

LOT_FIELDS = ("lotId", "accountId", "poolId", "originalMicro", "availableMicro", "reservedMicro", "consumedMicro",
              "settledDebtMicro", "sourceType", "description", "expiresAt", "createdAt")
ADJUST_FIELDS = ("accountId", "poolId", "previousBalanceMicro", "newBalanceMicro", "deltaMicro",
                 "lifetimePaidMicro", "entryId")
REFUND_FIELDS = ("accountId", "poolId", "refundedMicro", "previousBalanceMicro", "newBalanceMicro", "entryId")
POOL_COLUMNS = [render.Column("pool", "poolId"), render.Column("available", "availableMicro"),
                render.Column("reserved", "reservedMicro"), render.Column("consumed", "consumedMicro"),
                render.Column("expired", "expiredMicro"), render.Column("debt", "debtMicro")]
def entry_type(entry: dict[str, Any]) -> str:
    """The entry's type, with its direction when the ledger records one (an adjustment's amount is unsigned)."""
    metadata = entry.get("metadata") if isinstance(entry.get("metadata"), dict) else {}
    direction = metadata.get("direction")
    return f"{entry.get('entryType', '?')} ({direction})" if direction in ("credit", "debit") else str(
        entry.get("entryType", "?"))


HISTORY_COLUMNS = [
    render.Column("time", "createdAt", time=True),
    render.Column("type", "entryType", style="cyan", no_wrap=True, get=entry_type),
    render.Column("pool", "poolId"), render.Column("amount", "amountMicro"),
    render.Column("actor", "actor", no_wrap=True), render.Column("description", "description"),
    render.Column("entry", "entryId", style="dim"),
]


def account_path(account: str, *rest: str) -> str:
    return "/admin/billing/accounts/" + "/".join(segment(part) for part in (account, *rest))


def new_key(operation: str) -> str:
    """An idempotency key for one invocation, so the client's own retries apply the call at most once."""
    return f"billing-admin:{operation}:{uuid.uuid4().hex}"


def post_keyed(ctx: Context, path: str, body: dict[str, Any], *, given_key: bool) -> Any:
    """POST a money move carrying an idempotency key; when its outcome is unknown, say how to retry safely."""
    try:
        return ctx.client.post(path, body)
    except ApiError as exc:
        if exc.status == 0 or exc.status >= 500:
            how = "re-run the same command" if given_key else f"re-run with --idempotency-key {body['idempotencyKey']}"
            ctx.out.notice(f"the outcome is unknown; {how} to apply it at most once")
        raise


def show_record(ctx: Context, title: str, body: Any, fields: tuple[str, ...]) -> int:
    if ctx.out.json_mode:
        ctx.out.json(body)
    else:
        ctx.out.show(render.record(title, body, fields))
    return EXIT_OK


# -- mint --------------------------------------------------------------------------------------------
def cmd_mint(ctx: Context) -> int:
    a = ctx.args
    amount = arguments.one_amount(a.amount, a.usd)
    body: dict[str, Any] = {"amountMicro": str(amount), "poolId": a.pool, "sourceType": a.source_type,
                            "description": a.description, "idempotencyKey": a.idempotency_key or new_key("mint")}
    if a.expires_at:
        body["expiresAt"] = a.expires_at
    lot = post_keyed(ctx, account_path(a.account, "mint"), body, given_key=bool(a.idempotency_key))
    return show_record(ctx, f"minted {format_money(amount)} to {a.account}", lot, LOT_FIELDS)


MINT_SPEC_COLUMNS = ("account", "amount_micro", "description")
MINT_SPEC_OPTIONAL = ("pool", "idempotency_key", "source_type", "expires_at")


def _check_source_type(text: str) -> None:
    if text not in SOURCE_TYPES:
        raise ValueError(f"must be one of {', '.join(SOURCE_TYPES)}")


def cmd_mint_batch(ctx: Context) -> int:
    a = ctx.args
    spec = batch.Spec("mint-batch", MINT_SPEC_COLUMNS, MINT_SPEC_OPTIONAL,
                      checks={"source_type": _check_source_type, "expires_at": arguments.check_timestamp})
    batch_id = a.batch_id or Path(a.file).name
    rows = batch.read(a.file, spec, batch_id=batch_id)
    if a.dry_run:
        return batch.plan(ctx.out, rows, kind="mint-batch", batch_id=batch_id, extra=("pool", "description"))

    def send(row: batch.Row) -> Any:
        body: dict[str, Any] = {"amountMicro": str(row.amount), "poolId": row.get("pool") or a.pool,
                                "sourceType": row.get("source_type") or a.source_type,
                                "description": row.get("description"), "idempotencyKey": row.idempotency_key}
        if row.get("expires_at"):
            body["expiresAt"] = row.get("expires_at")
        return ctx.client.post(account_path(row.account, "mint"), body)

    client = ctx.client  # credentials are checked before the bar starts
    results, interrupted = batch.run(client, ctx.out, rows, send, title=f"minting {Path(a.file).name}")
    return batch.report(ctx.out, results, path=str(a.file), batch_id=batch_id, kind="mint-batch",
                        interrupted=interrupted)


# -- adjust, refund -----------------------------------------------------------------------------------
def cmd_adjust(ctx: Context) -> int:
    a = ctx.args
    given = {name: value for name, value in (("--set", a.set), ("--set-usd", a.set_usd), ("--delta", a.delta),
                                             ("--delta-usd", a.delta_usd)) if value is not None}
    if len(given) != 1:
        raise UsageError("give exactly one of --set BALANCE, --delta DELTA (micro-units) or "
                         "--set-usd / --delta-usd (dollars)")
    (option, value), = given.items()
    field = "balanceMicro" if option.startswith("--set") else "deltaMicro"
    body: dict[str, Any] = {field: str(value), "reason": a.reason, "poolId": a.pool,
                            "idempotencyKey": a.idempotency_key or new_key("adjust")}
    result = post_keyed(ctx, account_path(a.account, "adjust"), body, given_key=bool(a.idempotency_key))
    return show_record(ctx, f"adjusted {a.account}", result, ADJUST_FIELDS)


def cmd_refund(ctx: Context) -> int:
    a = ctx.args
    amount = arguments.one_amount(a.amount, a.usd)
    body: dict[str, Any] = {"amountMicro": str(amount), "reason": a.reason,
                            "idempotencyKey": a.idempotency_key or new_key("refund")}
    if a.pool:
        body["poolId"] = a.pool
    if a.order_id:
        body["orderId"] = a.order_id
    result = post_keyed(ctx, account_path(a.account, "refund"), body, given_key=bool(a.idempotency_key))
    return show_record(ctx, f"refunded {format_money(amount)} from {a.account}", result, REFUND_FIELDS)


# -- balance ------------------------------------------------------------------------------------------
def cmd_balance(ctx: Context) -> int:
    body = ctx.client.get(account_path(ctx.args.account, "balance"))
    if ctx.out.json_mode:
        ctx.out.json(body)
        return EXIT_OK
    ctx.out.show(render.table(f"balance of {body.get('accountId', ctx.args.account)}", POOL_COLUMNS,
                              body.get("pools") or []))
    totals = {k: v for k, v in body.items() if k not in ("pools", "accountId")}
    ctx.out.show(render.record(None, totals, ("totalAvailableMicro", "lifetimePaidMicro")))
    return EXIT_OK


# -- history ------------------------------------------------------------------------------------------
def _when(entry: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(entry.get("createdAt")))
    except ValueError:
        return None


def entry_line(entry: dict[str, Any]) -> str:
    """One ledger entry as a `tail -f` line."""
    entry_id = str(entry.get("entryId", "?"))
    ref = entry.get("reservationId") or entry.get("lotId")
    parts = [
        f"{entry.get('createdAt', '?')}  {entry_type(entry):<19} {entry.get('poolId', '?'):<10} "
        f"{format_money(entry.get('amountMicro')):>24}  {entry.get('actor') or '-'}  {entry.get('description') or ''}",
        f"  ({ref})" if ref and str(ref) not in entry_id else "",
        f"  [{entry_id}]",
    ]
    return "".join(parts)


class Follower:
    """Polls the newest page and prints, oldest first, the entries it has not printed yet.

    New means: an entryId not printed before and, when the first read did not reach the account's
    first entry, created after the oldest entry of that first read (older ones are history, not news)."""

    def __init__(self, ctx: Context, path: str, query: dict[str, Any]) -> None:
        self.ctx = ctx
        self.path = path
        self.query = query
        self.recent: deque[str] = deque(maxlen=FOLLOW_REMEMBER)
        self.known: set[str] = set()
        self.floor: datetime | None = None

    def remember(self, entry: dict[str, Any]) -> None:
        if len(self.recent) == self.recent.maxlen:
            self.known.discard(self.recent[0])
        entry_id = str(entry.get("entryId"))
        self.recent.append(entry_id)
        self.known.add(entry_id)

    def emit(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:  # oldest first
            if self.ctx.out.json_mode:
                self.ctx.out.json_line(entry)
            else:
                self.ctx.out.line(entry_line(entry))
            self.remember(entry)

    def start(self, limit: int) -> None:
        body = self.ctx.client.collect(self.path, self.query, key="entries", limit=limit)
        entries = body.get("entries") or []
        if (body.get("pagination") or {}).get("hasMore") and entries:
            self.floor = _when(entries[-1])
        self.emit(list(reversed(entries)))

    def is_new(self, entry: dict[str, Any]) -> bool:
        if str(entry.get("entryId")) in self.known:
            return False
        when = _when(entry)
        if self.floor is None or when is None:
            return True
        try:
            return when > self.floor
        except TypeError:  # naive vs aware timestamps
            return True

    def poll(self) -> int:
        fresh: list[dict[str, Any]] = []
        cursor = None
        for _ in range(FOLLOW_MAX_PAGES):
            page = self.ctx.client.get(self.path, {**self.query, "limit": FOLLOW_PAGE, "cursor": cursor})
            entries = page.get("entries") or []
            new = [entry for entry in entries if self.is_new(entry)]
            fresh += new
            pagination = page.get("pagination") or {}
            cursor = pagination.get("nextCursor")
            if len(new) < len(entries) or not pagination.get("hasMore") or not cursor:
                break
        self.emit(list(reversed(fresh)))
        return len(fresh)


def follow(ctx: Context, path: str, query: dict[str, Any], *, limit: int, interval: float,
           polls: int | None = None) -> int:
    """Print the last `limit` entries, then new ones every `interval` seconds until Ctrl-C."""
    follower = Follower(ctx, path, query)
    follower.start(limit)
    ctx.out.info(f"following {path} every {interval:g}s (Ctrl-C to stop)")
    done = 0
    try:
        while polls is None or done < polls:
            ctx.sleep(interval)
            done += 1
            try:
                follower.poll()
            except ApiError as exc:
                if exc.status != 0:
                    raise
                ctx.out.notice(f"{exc}; still following")
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def cmd_history(ctx: Context) -> int:
    a = ctx.args
    path = account_path(a.account, "history")
    query = {"poolId": a.pool, "entryType": a.type}
    if a.follow:
        return follow(ctx, path, query, limit=a.limit, interval=a.interval)
    body = ctx.client.collect(path, query, key="entries", limit=a.limit)
    if ctx.out.json_mode:
        ctx.out.json(body)
        return EXIT_OK
    entries = list(reversed(body.get("entries") or []))
    more = (body.get("pagination") or {}).get("hasMore")
    caption = f"the last {len(entries)} entries, oldest first" + ("; older ones exist (raise --limit)" if more else "")
    ctx.out.show(render.table(f"history of {a.account}", HISTORY_COLUMNS, entries, caption=caption))
    return EXIT_OK


# -- the parsers --------------------------------------------------------------------------------------
def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = arguments.add_command(sub, "mint", cmd_mint, common, help="mint a credit lot into an account",
                              epilog="example: billing-admin mint acct-42 --usd 5.00 --source-type deposit "
                                     "--description 'welcome credit'")
    p.add_argument("account", metavar="ACCOUNT")
    arguments.amount_options(p, "amount")
    p.add_argument("--source-type", required=True, choices=SOURCE_TYPES)
    p.add_argument("--description", required=True)
    p.add_argument("--pool", default=DEFAULT_POOL, help="pool id (default: %(default)s)")
    p.add_argument("--expires-at", type=arguments.timestamp, metavar="ISO",
                   help="when the lot expires, e.g. 2026-12-31T23:59:59Z")
    arguments.key_option(p)

    p = arguments.add_command(
        sub, "mint-batch", cmd_mint_batch, common, help="mint one lot per CSV row, with a progress bar",
        epilog="columns: account,amount_micro,description[,pool][,idempotency_key][,source_type][,expires_at]\n"
               "(amount_usd may replace amount_micro). A row without idempotency_key gets\n"
               "mint-batch:<batch id>:row-<n>, so re-running the file never mints a row twice.")
    p.add_argument("file", metavar="FILE.csv")
    p.add_argument("--source-type", default="admin_mint", choices=SOURCE_TYPES,
                   help="for rows without a source_type column (default: %(default)s)")
    p.add_argument("--pool", default=DEFAULT_POOL, help="for rows without a pool (default: %(default)s)")
    p.add_argument("--batch-id", help="names the batch in derived idempotency keys (default: the file's name)")
    p.add_argument("--dry-run", action="store_true", help="check the file and show what would be minted")

    p = arguments.add_command(sub, "adjust", cmd_adjust, common,
                              help="set or shift an account's balance (an audited adjustment)",
                              epilog="example: billing-admin adjust acct-42 --delta -250000 --reason 'support credit'")
    p.add_argument("account", metavar="ACCOUNT")
    p.add_argument("--set", metavar="BALANCE", type=arguments.signed_micro("balance"),
                   help="the new balance in micro-units (negative allowed)")
    p.add_argument("--delta", metavar="DELTA", type=arguments.signed_micro("delta"),
                   help="the change in micro-units (negative allowed)")
    p.add_argument("--set-usd", metavar="USD", type=arguments.signed_usd("balance"), help="--set, in dollars")
    p.add_argument("--delta-usd", metavar="USD", type=arguments.signed_usd("delta"), help="--delta, in dollars")
    p.add_argument("--reason", required=True)
    p.add_argument("--pool", default=DEFAULT_POOL, help="pool id (default: %(default)s)")
    arguments.key_option(p)

    p = arguments.add_command(sub, "refund", cmd_refund, common, help="refund credit (an audited adjustment)",
                              epilog="example: billing-admin refund acct-42 2000000 --reason 'duplicate charge'")
    p.add_argument("account", metavar="ACCOUNT")
    arguments.amount_options(p, "amount")
    p.add_argument("--reason", required=True)
    p.add_argument("--order-id", help="the top-up order this refund is for")
    p.add_argument("--pool", help=f"pool id (default: the top-up's pool with --order-id, else {DEFAULT_POOL})")
    arguments.key_option(p)

    p = arguments.add_command(sub, "balance", cmd_balance, common, help="an account's balance, per pool")
    p.add_argument("account", metavar="ACCOUNT")

    p = arguments.add_command(sub, "history", cmd_history, common,
                              help="the tail of an account's ledger (-f to follow it)",
                              epilog="example: billing-admin history acct-42 --limit 50\n"
                                     "         billing-admin history acct-42 -f")
    p.add_argument("account", metavar="ACCOUNT")
    p.add_argument("--pool", help="only this pool")
    p.add_argument("--type", help="only this entry type (deposit, reserve, finalize, refund, adjustment, ...)")
    p.add_argument("--limit", "-n", type=arguments.count(1, 1000), default=20,
                   help="how many of the newest entries (default: %(default)s)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new entries, like tail -f")
    p.add_argument("--interval", metavar="SECONDS", type=arguments.seconds, default=FOLLOW_INTERVAL,
                   help="with --follow, seconds between polls (default: %(default)s)")
