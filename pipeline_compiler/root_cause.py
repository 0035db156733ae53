"""The one line a failed stage's error_message carries, from the exception that stopped a local run.

TFX and Beam wrap a component's exception: this follows `__cause__`/`__context__` to the innermost
one and keeps its type and its message as shared/domain/root_cause.py `clean`s it (the op's own message, the
failing node, Beam's stage; no stack). Pure Python (no TensorFlow import).
"""
from __future__ import annotations

from shared.domain.root_cause import MAX_CHARS, clean

__all__ = ["MAX_CHARS", "innermost", "root_cause"]


def innermost(exc: BaseException) -> BaseException:
    seen = set()
    while (exc.__cause__ or exc.__context__) is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return exc


def root_cause(exc: BaseException) -> str:
    """`Type: message (op NODE)` of the innermost exception, stack frames and wrapper lines left out."""
    cause = innermost(exc)
    return f"{type(cause).__name__}: {clean(str(cause))}"[:MAX_CHARS]
