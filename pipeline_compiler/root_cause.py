"""The one line a failed stage's error_message carries: the root cause, not a wrapper's first line.

TFX and Beam wrap a component's exception; TensorFlow's own message starts with "Graph execution
error:" and a Python stack of where the op was defined, and only then says what went wrong
("StringToNumberOp could not correctly convert string: V") and in which node. This keeps the
innermost exception's type, the op's own message lines, the failing node, and Beam's
"[while running 'Stage']" context; it drops the stack. Pure Python (no TensorFlow import).
"""
from __future__ import annotations

import re

MAX_CHARS = 2000
_NODE = re.compile(r"Detected at node '?([^'\s]+)'? defined at")
_NODE_LINE = re.compile(r"\[\[\{\{node ([^}]+)\}\}\]\]")
_WRAPPER_LINES = ("Graph execution error", "Detected at node", "Traceback (most recent call last)")


def innermost(exc: BaseException) -> BaseException:
    seen = set()
    while (exc.__cause__ or exc.__context__) is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return exc


def root_cause(exc: BaseException) -> str:
    """`Type: message (op NODE)` of the innermost exception, stack frames and wrapper lines left out."""
    cause = innermost(exc)
    text = str(cause)
    node = _NODE.search(text) or _NODE_LINE.search(text)
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or line[:1].isspace() and not stripped.startswith("[[") or stripped.startswith(_WRAPPER_LINES):
            continue  # blank, an indented stack frame or code line, or a wrapper's header
        stripped = _NODE_LINE.sub("", stripped).strip()
        stripped = re.sub(r"\s*\[Op:[^\]]*\]", "", stripped).strip()
        if stripped:
            kept.append(stripped)
    message = " ".join(kept) or (text.strip().splitlines() or [""])[0]
    # tf.debugging.Assert prints its strings with escaped quotes; TF adds a placeholder for lost stacks.
    message = message.replace("\\'", "'").replace("<stack traces unavailable>", "").strip()
    if node:
        message += f" (op {node.group(1)})"
    return f"{type(cause).__name__}: {message}"[:MAX_CHARS]
