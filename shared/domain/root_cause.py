"""The one line a failed stage's error_message carries: the root cause, not a wrapper's first line.

Two sources, one rule:
- a Python exception (the local runner: pipeline_compiler/root_cause.py gives `clean(str(innermost))`);
- the text Vertex AI gives for a failed task (`PipelineTaskDetail.error`, a google.rpc.Status, or the
  failed CustomJob's `error`): "The replica workerpool0-0 exited with a non-zero status of 1.
  Termination reason: Error." followed by the tail of the container's stderr, i.e. the Python
  traceback(s). `from_text` finds the innermost exception there: Python prints a chain cause first
  ("The above exception was the direct cause of the following exception:"), so the first traceback
  block's exception is the root; Vertex keeps only the tail of the log, so a block may start mid-way.

TensorFlow's own message starts with "Graph execution error:" and a Python stack of where the op was
defined, and only then says what went wrong ("StringToNumberOp could not correctly convert string: V")
and in which node; `clean` keeps the op's message lines, the failing node and Beam's
"[while running 'Stage']" context, and drops the stack. Pure Python.
"""
from __future__ import annotations

import re

MAX_CHARS = 2000
_NODE = re.compile(r"Detected at node '?([^'\s]+)'? defined at")
_NODE_LINE = re.compile(r"\[\[\{\{node ([^}]+)\}\}\]\]")
_WRAPPER_LINES = ("Graph execution error", "Detected at node", "Traceback (most recent call last)")
_TRACEBACK = "Traceback (most recent call last):"
_CHAINS = re.compile(r"^(?:The above exception was the direct cause of the following exception:|"
                     r"During handling of the above exception, another exception occurred:)\s*$", re.M)
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w]*\.)*([A-Za-z_]\w*)(?::\s?(.*))?$", re.S)
_FRAME = re.compile(r"^\s+File \"")
# A text-format proto's `message: "…"` field (a google.rpc.Status inside a printed CustomJob).
_QUOTED_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
# Vertex's first line for a container that failed (CustomJob and pipeline task errors).
_REPLICA = re.compile(r"^The replica \S+ exited with a non-zero status of \d+\.(?: Termination reason: \w+\.)?\s*")


def clean(text: str) -> str:
    """An exception's message without stack frames and wrapper lines, `(op NODE)` appended."""
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
    return message


def _exception_of(block: str) -> str | None:
    """The exception text of one traceback block: the first unindented line after its header (frames,
    code lines and Vertex's "[...]" elision are indented), to the block's end. None without one."""
    lines = _REPLICA.sub("", block.strip("\n")).splitlines()
    headers = [i for i, line in enumerate(lines) if line.strip() == _TRACEBACK]
    if not headers and not any(_FRAME.match(line) for line in lines):
        return None
    rest = lines[headers[-1] + 1:] if headers else lines
    while rest and (rest[0][:1].isspace() or not rest[0].strip()):
        rest = rest[1:]
    return "\n".join(rest).strip() or None


def _nested_error(exception: str) -> str | None:
    """The error of a job an exception quotes, when it holds a traceback: TFX's Vertex Trainer raises
    `RuntimeError: Job '…/customJobs/N' did not succeed.  Detailed response <the CustomJob proto>`,
    whose `error { message: "The replica … \\nTraceback …" }` is the training container's own cause."""
    for quoted in _QUOTED_MESSAGE.findall(exception):
        text = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), quoted)
        if has_traceback(text):
            return text
    return None


# A printed job's google.rpc.Status: `error {\n  code: 8\n  message: "…"\n}` (a CustomJob in TFX's RuntimeError).
_JOB_STATUS = re.compile(r'\berror \{\s*code: (\d+)\s+message: "((?:[^"\\]|\\.)*)"')


def _job_status(exception: str) -> str | None:
    """`message (code N)` of the error a quoted job ended with when it holds no traceback: Vertex's own reason
    (a quota or capacity refusal: google.rpc code 8 RESOURCE_EXHAUSTED), which the printed job's other
    fields would otherwise push past MAX_CHARS (shared/domain/gpu_fallback.classify reads it)."""
    match = _JOB_STATUS.search(exception)
    if match is None:
        return None
    message = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), match.group(2))
    return f"{message.strip()} (code {match.group(1)})"


def has_traceback(text: str) -> bool:
    """Whether the text holds (the tail of) a Python traceback."""
    return bool(text) and (_TRACEBACK in text or any(_FRAME.match(line) for line in text.splitlines()))


def from_text(text: str) -> str:
    """`Type: message (op NODE)` of the innermost exception in a task's error text; a text without a
    traceback is returned as it is (stripped)."""
    text = (text or "").strip("\n")  # not the first line's indentation: a truncated tail may start in a frame
    if not has_traceback(text):
        return text.strip()[:MAX_CHARS]
    for block in _CHAINS.split(text):  # the first block holding an exception is the innermost cause
        exception = _exception_of(block)
        nested = _nested_error(exception or "")
        if nested:
            return from_text(nested)
        status = _job_status(exception or "")
        if status:
            match = _EXCEPTION.match(exception)
            return f"{match.group(1) if match else 'Error'}: {status}"[:MAX_CHARS]
        if exception:
            match = _EXCEPTION.match(exception)
            if match and match.group(2) is not None:
                return f"{match.group(1)}: {clean(match.group(2))}"[:MAX_CHARS]
            return exception.splitlines()[0][:MAX_CHARS]
    return text.strip()[:MAX_CHARS]
