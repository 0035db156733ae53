"""Where a command writes: JSON for a machine (--json), aligned text for a person, colour on a TTY."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.domain import yaml_text
from trainyard_cli import format as fmt


class Output:
    def __init__(self, out, as_json: bool, colour: bool | None = None):
        self.out = out
        self.as_json = as_json
        self.colour = fmt.colour_enabled(out) if colour is None else colour

    def json(self, data: Any) -> None:
        self.out.write(json.dumps(data, indent=2, default=str) + "\n")

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def lines(self, texts: list[str]) -> None:
        for text in texts:
            self.line(text)

    def table(self, rows: list[dict], columns: list) -> None:
        self.line(fmt.table(rows, columns, self.colour) if rows else "(none)")

    def state(self, value: str | None) -> str:
        return fmt.state(value, self.colour)

    def result(self, data: Any, human) -> None:
        """--json prints the API's answer as it came; otherwise `human(data)` writes for a person."""
        if self.as_json:
            self.json(data)
        else:
            human(data)


class UsageError(Exception):
    """Wrong flags or an unreadable request file: exit code 2, like argparse's own usage errors."""


def read_document(path: str) -> dict:
    """A request body from a YAML or JSON file ('-' reads standard input)."""
    import sys

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if path.endswith((".json",)):
            data = json.loads(text)
        else:
            data = yaml_text.load(text)  # YAML is a superset of JSON: a .yaml, .yml or stdin file may be either
    except Exception as exc:  # noqa: BLE001 — the parser's own message says where
        raise UsageError(f"{path} is not valid {'JSON' if path.endswith('.json') else 'YAML/JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} must hold one object (a mapping of fields), not {type(data).__name__}")
    return data
