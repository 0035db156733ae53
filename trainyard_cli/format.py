"""How the CLI shows values to a person: metrics to 4 significant digits, times relative to now,
durations, and states in colour — on a terminal only (never in a pipe, never with NO_COLOR set)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Optional

from shared.domain.runs import format_duration
from shared.settings import read

# ANSI colours per state: green done, red broken, yellow needs a look, cyan moving.
_COLOURS = {
    "completed": "32", "deployed": "32", "sufficient": "32", "insufficient": "31", "active": "32", "ok": "32",
    "failed": "31", "cancelled": "31", "cancelling": "31",
    "not_blessed": "33", "paused": "33", "skipped": "33", "awaiting_approval": "33",
    "running": "36", "submitting": "36", "pending": "36", "scheduled": "36", "deploying": "36", "queued": "36",
}


def colour_enabled(out) -> bool:
    """A TTY that did not ask for plain text (https://no-color.org)."""
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty()) and not read("NO_COLOR")


def state(value: Optional[str], colour: bool) -> str:
    text = value or ""
    code = _COLOURS.get(text)
    return f"\033[{code}m{text}\033[0m" if colour and code else text


def metric(value: Any) -> str:
    """A metric to 4 significant digits (0.19012976799056233 → 0.1901); other values as they are."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def parse_time(value: Any) -> Optional[datetime]:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def relative(value: Any, now: Optional[datetime] = None) -> str:
    """'5m ago', '3h ago', 'in 2d'; an unparseable value as it came."""
    moment = parse_time(value)
    if moment is None:
        return "" if value is None else str(value)
    delta = ((now or datetime.now(timezone.utc)) - moment).total_seconds()
    ahead, seconds = delta < 0, abs(delta)
    if seconds < 45:
        text = "now" if seconds < 5 else f"{int(seconds)}s"
    elif seconds < 3600:
        text = f"{int(round(seconds / 60))}m"
    elif seconds < 86400:
        text = f"{int(seconds // 3600)}h"
    else:
        text = f"{int(seconds // 86400)}d"
    if text == "now":
        return text
    return f"in {text}" if ahead else f"{text} ago"


def duration(seconds: Any) -> str:
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
        return format_duration(seconds) or ""
    return ""


def dig(row: dict, key: str):
    for part in key.split("."):
        row = row.get(part) if isinstance(row, dict) else None
    return row


Column = tuple  # (key, title) or (key, title, formatter)


def table(rows: list[dict], columns: list[Column], colour: bool = False) -> str:
    """Aligned columns; a column's formatter (value, row) → text; `state` columns are coloured."""
    def cell(row: dict, column: Column) -> tuple[str, str]:
        key, fmt = column[0], (column[2] if len(column) > 2 else metric)
        text = fmt(dig(row, key)) if fmt is not state else (dig(row, key) or "")
        shown = state(text, colour) if fmt is state else text
        return text, shown

    cells = [[cell(row, column) for column in columns] for row in rows]
    widths = [max([len(column[1])] + [len(c[i][0]) for c in cells]) for i, column in enumerate(columns)]
    lines = ["  ".join(column[1].ljust(w) for column, w in zip(columns, widths)).rstrip()]
    for row in cells:
        lines.append("  ".join(shown + " " * (w - len(text)) for (text, shown), w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def money(value: Any, currency: str = "USD") -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    symbol = "$" if currency == "USD" else f"{currency} "
    return f"{symbol}{value:,.2f}" if value >= 0.01 or value == 0 else f"{symbol}{value:.4f}"


def fields(pairs: list[tuple[str, Any]], formatter: Callable[[Any], str] = metric) -> list[str]:
    """'key: value' lines for the values that are set."""
    return [f"{key}: {formatter(value) if not isinstance(value, str) else value}"
            for key, value in pairs if value not in (None, "", [], {})]


def pairs(value: Any) -> str:
    """A mapping as k=v k=v (an audit record's path parameters)."""
    return " ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else ""
