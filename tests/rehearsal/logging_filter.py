"""The part of Cloud Logging's query language our sink filters use, evaluated on a LogEntry as JSON, so a
test can show which canonical entries a sink forwards (https://cloud.google.com/logging/docs/view/logging-query-language):

- `path = "value"` (equal), `path : "value"` (has: a substring here), `path:*` (the field is present);
- `path > "value"` (and >=, <, <=): `severity` by LogSeverity's order, `timestamp` as times, anything else as
  text; a value may be bare (`severity>=WARNING`);
- a path's segments joined by `.`, a segment with characters outside [A-Za-z0-9_] in double quotes (`"@type"`);
- AND, OR, NOT and parentheses; adjacent comparisons are ANDed. NOT binds tightest, then OR, then AND (the
  language's own order, unlike most).

Anything else raises ValueError: a filter this cannot read is a test failure, never a silent match.
"""
from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r'\s*(?:(?P<paren>[()])|(?P<op>AND|OR|NOT)\b|(?P<cmp>(?P<path>(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_]*)'
                    r'(?:\.(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_]*))*)\s*(?P<rel>>=|<=|=|:|>|<)\s*(?P<value>\*|"(?:[^"\\]|\\.)*"|[A-Za-z0-9_]+)))')
_MISSING = object()


def _tokens(text: str) -> list[tuple[str, Any]]:
    found, at, text = [], 0, text.strip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if not match or match.end() == at:
            raise ValueError(f"cannot read the filter at {text[at:at + 40]!r}")
        if match["paren"]:
            found.append(("paren", match["paren"]))
        elif match["op"]:
            found.append(("op", match["op"]))
        else:
            path = [p.strip('"') for p in re.findall(r'"[^"]+"|[A-Za-z_][A-Za-z0-9_]*', match["path"])]
            found.append(("cmp", (path, match["rel"], match["value"])))
        at = match.end()
        while at < len(text) and text[at].isspace():
            at += 1
    return found


def _value(entry: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(entry, dict) or part not in entry:
            return _MISSING
        entry = entry[part]
    return entry


def _compare(entry: dict, path: list[str], rel: str, raw: str) -> bool:
    value = _value(entry, path)
    if raw == "*":
        if rel != ":":
            raise ValueError("`=*` is not a presence test; write `:*`")
        return value is not _MISSING
    wanted = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\") if raw.startswith('"') else raw
    if value is _MISSING or isinstance(value, (dict, list)):
        return False
    if rel in (">", ">=", "<", "<=") or (rel == "=" and path == ["timestamp"]):
        return _ordered(path, str(value), wanted, rel)
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text == wanted if rel == "=" else wanted.lower() in text.lower()


_SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")


def _ordered(path: list[str], have: str, wanted: str, rel: str) -> bool:
    if path == ["severity"]:
        left, right = _SEVERITIES.index(have), _SEVERITIES.index(wanted)
    elif path == ["timestamp"]:
        left, right = _instant(have), _instant(wanted)
    else:
        left, right = have, wanted
    return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right, "=": left == right}[rel]


def _instant(text: str) -> tuple:
    """An RFC 3339 time as (seconds, nanoseconds), its fraction of any length."""
    from datetime import datetime

    whole, _, fraction = text.rstrip("Z").partition(".")
    return int(datetime.fromisoformat(whole + "+00:00").timestamp()), int((fraction or "0").ljust(9, "0")[:9])


def matches(filter_text: str, entry: dict) -> bool:
    tokens = _tokens(filter_text)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else (None, None)

    def conjunction() -> bool:  # lowest: AND (explicit or implied by adjacency)
        nonlocal pos
        result = disjunction()
        while True:
            kind, value = peek()
            if kind == "op" and value == "AND":
                pos += 1
            elif kind is None or (kind == "paren" and value == ")") or (kind == "op" and value == "OR"):
                return result
            right = disjunction()  # always read: it moves past the operand
            result = result and right

    def disjunction() -> bool:
        nonlocal pos
        result = negation()
        while peek() == ("op", "OR"):
            pos += 1
            right = negation()
            result = result or right
        return result

    def negation() -> bool:
        nonlocal pos
        if peek() == ("op", "NOT"):
            pos += 1
            return not negation()
        kind, value = peek()
        pos += 1
        if kind == "paren" and value == "(":
            result = conjunction()
            if peek() != ("paren", ")"):
                raise ValueError("unbalanced parentheses")
            pos += 1
            return result
        if kind == "cmp":
            return _compare(entry, *value)
        raise ValueError(f"unexpected {value!r}")

    result = conjunction()
    if pos != len(tokens):
        raise ValueError(f"unread filter tail: {tokens[pos:]}")
    return result
