"""Structured JSON logs as Cloud Logging reads them: one JSON object a line with `severity`.

Context is bound once where a unit of work starts (a consumer binds the message id and the run id
of the message it handles) and every entry written inside carries it, so no call site repeats it:

    with log.bound(run_id=run_id):
        log.info("pipeline job submitted", job=name)   # -> {..., "run_id": ..., "job": ...}
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import sys
import time
from typing import Any, Iterator

_context: contextvars.ContextVar[dict] = contextvars.ContextVar("trainyard_log_context", default={})


def log(severity: str, message: str, **fields: Any) -> None:
    entry = {"severity": severity, "message": message, "time": time.time(), **_context.get(), **fields}
    sys.stdout.write(json.dumps(entry, default=str) + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Every entry logged inside (this thread or task) carries these fields; None values are left out."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def info(message: str, **fields: Any) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields: Any) -> None:
    log("ERROR", message, **fields)
