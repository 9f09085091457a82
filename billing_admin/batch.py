"""Batches from a CSV file (mint-batch, campaigns grant-batch): read and check every row before
sending anything, then send one request per row under a progress bar, and sum up.

Exactly-once across re-runs: a row without an idempotency_key gets one derived from the batch id
(the file's name unless --batch-id is given) and the row's number, e.g.
`mint-batch:grants-2026-05.csv:row-3`. Running the same file again replays each row's original
answer instead of minting again; a row whose content changed under the same key is refused by
the API (409 IDEMPOTENCY_KEY_REUSED) rather than minted twice. So: give each batch file its own
name (or --batch-id), and fix a failed row in place rather than inserting rows above it.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from billing_admin import render
from billing_admin.client import ApiClient, ApiError
from billing_admin.errors import EXIT_API_ERROR, EXIT_INTERRUPTED, EXIT_OK, UsageError
from billing_admin.money import AmountError, format_money, parse_micro, parse_usd

MAX_KEY_LENGTH = 128  # the API's limit for idempotencyKey
ABORT_STATUSES = (0, 401, 403)  # every further row would fail the same way


@dataclass
class Row:
    number: int  # 1-based, data rows only (the header and blank lines do not count)
    line: int  # line in the file, for error messages
    account: str
    amount: int
    idempotency_key: str
    key_derived: bool
    values: dict[str, str]  # every column of the row, stripped

    def get(self, name: str) -> str | None:
        return self.values.get(name) or None

    def summary(self) -> dict[str, Any]:
        return {"row": self.number, "accountId": self.account, "amountMicro": str(self.amount),
                "idempotencyKey": self.idempotency_key}


@dataclass
class Result:
    row: Row
    status: str  # ok | failed | not_attempted
    response: Any = None
    error: ApiError | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {**self.row.summary(), "status": self.status}
        if self.response is not None:
            data["response"] = self.response
        if self.error is not None:
            data["error"] = {"status": self.error.status, **self.error.as_body()["error"]}
        return data


@dataclass
class Spec:
    """One kind of batch: its columns and the key prefix (`scope` isolates e.g. one campaign)."""

    kind: str
    required: Sequence[str]
    optional: Sequence[str]
    scope: str | None = None
    checks: dict[str, Callable[[str], object]] = field(default_factory=dict)


def derive_key(kind: str, batch_id: str, number: int, scope: str | None = None) -> str:
    """The idempotency key of a batch row that has none: stable for the same batch and row."""
    stem = ":".join(part for part in (kind, scope, batch_id) if part)
    key = f"{stem}:row-{number}"
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return f"{kind}:{hashlib.sha256(stem.encode()).hexdigest()[:40]}:row-{number}"


def _amount(values: dict[str, str]) -> int:
    micro, usd = values.get("amount_micro"), values.get("amount_usd")
    if bool(micro) == bool(usd):
        raise AmountError("give exactly one of amount_micro and amount_usd")
    return parse_micro(micro, what="amount_micro") if micro else parse_usd(usd or "", what="amount_usd")


def read(path: str | Path, spec: Spec, *, batch_id: str | None = None) -> list[Row]:
    """Every row of the file, checked; UsageError listing every problem when any row is bad."""
    path = Path(path)
    batch_id = batch_id or path.name
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            lines = list(csv.reader(handle))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: cannot read it as UTF-8 CSV ({exc})") from None
    numbered = [(i + 1, cells) for i, cells in enumerate(lines) if any(c.strip() for c in cells)]
    if not numbered:
        raise UsageError(f"{path}: empty file (expected a header: {', '.join(spec.required)})")
    header = [name.strip().lower() for name in numbered[0][1]]
    known = set(spec.required) | set(spec.optional) | {"amount_usd"}
    problems = []
    unknown = [name for name in header if name not in known]
    missing = [name for name in spec.required if name not in header and not (
        name == "amount_micro" and "amount_usd" in header)]
    if unknown or missing or len(set(header)) != len(header):
        problems.append(f"header {','.join(header)}: expected columns {', '.join(spec.required)}"
                        + (f" and optionally {', '.join(spec.optional)}" if spec.optional else "")
                        + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                        + (f"; missing: {', '.join(missing)}" if missing else ""))
        raise UsageError(f"{path}: " + "; ".join(problems))
    rows: list[Row] = []
    keys: dict[str, int] = {}
    for number, (line, cells) in enumerate(numbered[1:], start=1):
        where = f"row {number} (line {line})"
        if len(cells) > len(header):
            problems.append(f"{where}: {len(cells)} cells for {len(header)} columns")
            continue
        values = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)}
        try:
            amount = _amount(values)
        except AmountError as exc:
            problems.append(f"{where}: {exc}")
            continue
        for name in spec.required:
            if name != "amount_micro" and not values.get(name):
                problems.append(f"{where}: {name} is empty")
        for name, check in spec.checks.items():
            if values.get(name):
                try:
                    check(values[name])
                except (ValueError, UsageError) as exc:
                    problems.append(f"{where}: {name}: {exc}")
        key = values.get("idempotency_key") or ""
        derived = not key
        key = key or derive_key(spec.kind, batch_id, number, spec.scope)
        if len(key) > MAX_KEY_LENGTH:
            problems.append(f"{where}: idempotency_key is longer than {MAX_KEY_LENGTH} characters")
        if key in keys:
            problems.append(f"{where}: idempotency key {key!r} is already used by row {keys[key]}")
        keys[key] = number
        rows.append(Row(number, line, values.get("account", ""), amount, key, derived, values))
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise UsageError(f"{path}: nothing was sent, {len(problems)} problem(s):\n  " + "\n  ".join(shown))
    if not rows:
        raise UsageError(f"{path}: no data rows under the header")
    return rows


def run(client: ApiClient, out: render.Output, rows: Sequence[Row], send: Callable[[Row], Any], *,
        title: str) -> tuple[list[Result], bool]:
    """Send every row (in order) under a progress bar; (results, interrupted)."""
    results: list[Result] = []
    interrupted = False
    progress = Progress(
        SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
        MofNCompleteColumn(), TextColumn("[green]{task.fields[ok]} ok[/] [red]{task.fields[failed]} failed[/]"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=out.err, transient=False,
    )
    previous_notify = client.notify
    client.notify = out.notice  # retry notices print above the bar (same console)
    ok = failed = 0
    try:
        with progress:
            task = progress.add_task(title, total=len(rows), ok=0, failed=0)
            for index, row in enumerate(rows):
                try:
                    response = send(row)
                except ApiError as exc:
                    failed += 1
                    results.append(Result(row, "failed", error=exc))
                    if exc.status in ABORT_STATUSES:
                        out.notice(f"stopping: {exc} (every further row would fail the same way)")
                        results += [Result(r, "not_attempted") for r in rows[index + 1:]]
                        progress.update(task, advance=1, ok=ok, failed=failed)
                        break
                else:
                    ok += 1
                    results.append(Result(row, "ok", response=response))
                progress.update(task, advance=1, ok=ok, failed=failed)
    except KeyboardInterrupt:
        interrupted = True
        done = {result.row.number for result in results}
        results += [Result(r, "not_attempted") for r in rows if r.number not in done]
    finally:
        client.notify = previous_notify
    return results, interrupted


def report(out: render.Output, results: Sequence[Result], *, path: str, batch_id: str, kind: str,
           interrupted: bool) -> int:
    """The summary (table, or JSON with --json) and the exit code."""
    counts = Counter(result.status for result in results)
    sums = {status: sum(r.row.amount for r in results if r.status == status) for status in counts}
    if out.json_mode:
        out.json({"kind": kind, "file": path, "batchId": batch_id, "rows": len(results), "ok": counts["ok"],
                  "failed": counts["failed"], "notAttempted": counts["not_attempted"], "interrupted": interrupted,
                  "results": [result.as_json() for result in results]})
    else:
        totals = [{"result": label, "rows": counts[status], "amountMicro": str(sums.get(status, 0))}
                  for status, label in (("ok", "ok"), ("failed", "failed"), ("not_attempted", "not attempted"))]
        out.show(render.table(f"{kind} {batch_id}: {len(results)} rows", [
            render.Column("result", "result"), render.Column("rows", "rows"), render.Column("amount", "amountMicro"),
        ], totals))
        failures = [r for r in results if r.status == "failed"]
        if failures:
            by_code = Counter(r.error.code for r in failures if r.error)
            out.show(render.table("failures by code", [render.Column("code", "code"), render.Column("rows", "rows")],
                                  [{"code": code, "rows": n} for code, n in by_code.most_common()]))
            out.show(render.table("failed rows", [
                render.Column("row", "row"), render.Column("account", "accountId"),
                render.Column("amount", "amountMicro"), render.Column("code", "code", style="red"),
                render.Column("message", "message"), render.Column("idempotency key", "idempotencyKey"),
            ], [{**r.row.summary(), "code": r.error.code, "message": r.error.message} for r in failures if r.error]))
    if counts["failed"] or counts["not_attempted"]:
        out.info("re-running the same file is safe: every row carries its idempotency key, so rows that "
                 "succeeded are answered from the record and not applied again")
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_API_ERROR if counts["failed"] or counts["not_attempted"] else EXIT_OK


def plan(out: render.Output, rows: Sequence[Row], *, kind: str, batch_id: str, extra: Sequence[str] = ()) -> int:
    """--dry-run: what would be sent, nothing is."""
    data = [{**row.summary(), **{name: row.get(name) for name in extra}} for row in rows]
    if out.json_mode:
        out.json({"kind": kind, "batchId": batch_id, "dryRun": True, "rows": data})
        return EXIT_OK
    total = sum(row.amount for row in rows)
    out.show(render.table(f"{kind} {batch_id} (dry run, nothing sent)", [
        render.Column("row", "row"), render.Column("account", "accountId"), render.Column("amount", "amountMicro"),
        *(render.Column(name, name) for name in extra), render.Column("idempotency key", "idempotencyKey"),
    ], data, caption=f"{len(rows)} rows, {format_money(total)} in all"))
    return EXIT_OK
