"""What the operator sees: rich tables on stdout, notices, progress and errors on stderr, or the raw
JSON with --json (stdout stays parseable either way).

Every value from the API is wrapped in rich.text.Text, so a description like "[red]x" is shown as
typed (never taken for markup) and control characters are stripped. Amounts are shown as
"<micro> ($<usd>)", exactly (money.format_money).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from billing_admin.money import format_money

WIDE_WHEN_PIPED = 200  # columns when stdout is not a terminal and $COLUMNS is unset
MAX_ROWS = 200  # rows of a nested list shown in a table; --json shows everything


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty and not os.environ.get("COLUMNS"):
        width = WIDE_WHEN_PIPED
    return Console(stderr=stderr, width=width, highlight=False, soft_wrap=False)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(text: str) -> str:
    """Control characters (ESC and friends) shown as escapes, so API data cannot drive the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def is_money_field(name: str) -> bool:
    return name.endswith("Micro")


def cell(value: Any, name: str = "") -> Text:
    """One value as plain text: money formatted, None as '-', objects as compact JSON."""
    if value is None:
        return Text("-", style="dim")
    if is_money_field(name):
        return Text(safe(format_money(value)))
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, dict | list):
        return Text(safe(json.dumps(value, separators=(",", ":"), ensure_ascii=False)))
    return Text(safe(str(value)))


def short_time(value: Any) -> Any:
    """An ISO timestamp to the second ("2026-05-01 12:00:03Z") for tables; --json keeps it exact."""
    if not isinstance(value, str):
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.utcoffset() == timedelta(0):
        return f"{parsed:%Y-%m-%d %H:%M:%S}Z"
    return parsed.isoformat(sep=" ", timespec="seconds")


def is_id_field(name: str) -> bool:
    """Values an operator copies into the next command: shown whole, on one line, never cut."""
    return name.endswith("Id") or name in ("id", "reference", "actor", "dismissedBy", "updatedBy", "createdBy")


@dataclass(frozen=True)
class Column:
    header: str
    key: str
    money: bool = False
    style: str | None = None
    get: Callable[[Mapping[str, Any]], Any] | None = None
    time: bool = False  # shown to the second
    no_wrap: bool = False
    min_width: int | None = None

    def value(self, row: Mapping[str, Any]) -> Text:
        raw = self.get(row) if self.get else row.get(self.key)
        if self.time:
            raw = short_time(raw)
        text = cell(raw, self.key if self.money or is_money_field(self.key) else "")
        if self.style and raw is not None:
            text.stylize(self.style)
        return text


def _min_width(*texts: str | None) -> int | None:
    """Wide enough that a title or caption does not wrap (up to a terminal's width)."""
    longest = max((len(text) for text in texts if text), default=0)
    return min(longest + 2, 160) if longest else None


def table(title: str | None, columns: Sequence[Column], rows: Iterable[Mapping[str, Any]], *,
          caption: str | None = None) -> Table:
    grid = Table(title=title, caption=caption, box=box.SIMPLE_HEAVY, title_justify="left", header_style="bold",
                 min_width=_min_width(title, caption))
    rows = list(rows)
    cells = [[column.value(row) for column in columns] for row in rows]
    for index, column in enumerate(columns):
        money = column.money or is_money_field(column.key)
        min_width = column.min_width
        if is_id_field(column.key):
            widest = max((len(c[index].plain) for c in cells), default=0)
            min_width = max(min_width or 0, widest, len(column.header)) or None
            grid.add_column(column.header, justify="left", overflow="ignore", no_wrap=True, min_width=min_width)
            continue
        if money:  # a micro-unit number is never split; its "($...)" may go to the next line
            widest = max((len(c[index].plain.partition(" ")[0]) for c in cells), default=0)
            min_width = max(min_width or 0, widest, len(column.header.partition(" ")[0])) or None
        no_wrap = column.no_wrap or column.time
        if no_wrap:  # one line each: as wide as the widest value
            widest = max((len(c[index].plain) for c in cells), default=0)
            min_width = max(min_width or 0, widest, len(column.header)) or None
        else:  # wrapped at spaces, never inside a word
            longest_word = max((len(word) for c in cells for word in c[index].plain.split()), default=0)
            min_width = max(min_width or 0, min(longest_word, 40), len(column.header)) or None
        grid.add_column(column.header, justify="right" if money else "left", overflow="fold",
                        no_wrap=no_wrap, min_width=min_width)
    for row_cells in cells:
        grid.add_row(*row_cells)
    return grid


def record(title: str | None, data: Mapping[str, Any], fields: Sequence[str] | None = None) -> Table:
    """A two-column field/value table of one object: the named fields first, then any others."""
    names = list(fields or [])
    names += [name for name in data if name not in names]
    grid = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left", show_header=False,
                 min_width=_min_width(title))
    grid.add_column("field", style="bold", no_wrap=True)
    widest_id = max((len(cell(data[name]).plain) for name in names if name in data and is_id_field(name)), default=0)
    grid.add_column("value", overflow="fold", min_width=widest_id or None)
    for name in names:
        if name in data:
            grid.add_row(Text(name), cell(data[name], name))
    return grid


def columns_for(rows: Sequence[Mapping[str, Any]]) -> list[Column]:
    """Columns for a list of objects of unknown shape: the union of their keys, in first-seen order."""
    keys: list[str] = []
    for row in rows:
        keys += [key for key in row if key not in keys]
    return [Column(key, key, no_wrap=index == 0) for index, key in enumerate(keys)]


def listing(title: str, rows: Sequence[Any]) -> Table:
    """A table of a list whose items may be objects or plain values, capped at MAX_ROWS."""
    shown = list(rows[:MAX_ROWS])
    caption = f"{len(rows) - MAX_ROWS} more not shown (use --json)" if len(rows) > MAX_ROWS else None
    if all(isinstance(row, Mapping) for row in shown):
        return table(title, columns_for(shown), shown, caption=caption)
    return table(title, [Column("value", "value")], [{"value": row} for row in shown], caption=caption)


def _needed_width(renderable: Any) -> int:
    """What a table needs so that no column goes below its minimum (ids whole, words unbroken)."""
    if not isinstance(renderable, Table):
        return 0
    padding = 2 + (1 if renderable.show_edge and renderable.box else 0)
    return sum((column.min_width or 1) + padding for column in renderable.columns) + 2


class Output:
    """Where a command writes. `json_mode` is --json."""

    def __init__(self, *, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.console = _console(stderr=False)
        self.err = _console(stderr=True)

    def json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def json_line(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def show(self, *renderables: Any) -> None:
        for renderable in renderables:
            # A table whose ids do not fit the terminal is printed at the width it needs (the terminal
            # wraps the line) rather than squeezed: an id is copied whole or it is useless.
            width = self.console.width
            needed = _needed_width(renderable)
            if needed <= width:
                self.console.print(renderable)
                continue
            self.console.width = needed  # print(width=) can only narrow
            try:
                self.console.print(renderable, crop=False)
            finally:
                self.console.width = width

    def line(self, text: str, style: str | None = None) -> None:
        self.console.print(Text(safe(text), style=style or ""), soft_wrap=True)  # one line per record, like tail
        sys.stdout.flush()  # a follower behind a pipe sees each line as it comes

    def notice(self, message: str) -> None:
        self.err.print(Text(safe(message), style="yellow"))

    def info(self, message: str) -> None:
        self.err.print(Text(safe(message), style="dim"))

    def error(self, message: str) -> None:
        self.err.print(Text(safe(f"error: {message}"), style="bold red"))

    def api_error(self, error: Any) -> None:
        """An ApiError: code and message, the details, a hint; with --json the body on stdout too."""
        self.error(str(error))
        details = error.details or {}
        problems = details.get("errors") if isinstance(details.get("errors"), list) else None
        if problems:
            for problem in problems:
                if isinstance(problem, Mapping):
                    self.err.print(Text(safe(f"  - {problem.get('field', '?')}: {problem.get('message', '')}")))
        rest = {k: v for k, v in details.items() if not (problems and k == "errors")}
        if rest:
            self.err.print(Text(safe("  details: " + json.dumps(rest, separators=(", ", ": "), ensure_ascii=False))))
        hint = hint_for(error)
        if hint:
            self.err.print(Text(safe(f"  hint: {hint}"), style="dim"))
        if self.json_mode:
            self.json(error.as_body())


def hint_for(error: Any) -> str | None:
    if error.status == 401:
        return ("the admin token was refused: check --token / $BILLING_ADMIN_TOKEN, or that "
                "$BILLING_ADMIN_JWT_SECRET is this deployment's admin secret")
    if error.status == 403:
        return "the token is not an admin token for this deployment (audience arrakis-billing-admin)"
    if error.code == "ROUTE_NOT_FOUND":
        return f"this API does not serve {error.method} {error.path} (an older deployment, or the wrong --url?)"
    if error.status == 0:
        return "is the API running? `make run` serves it locally on http://127.0.0.1:3000"
    if error.status == 429:
        return "the admin rate limit (30 requests a minute) is still exhausted; try again in a minute"
    return None
