"""The JSON body of a request, read one way by every route, within limits (docs/security.md,
"Requests and pages").

- At most MAX_BODY_BYTES: Flask's MAX_CONTENT_LENGTH (set by shared/http/guards.py) makes werkzeug
  refuse a longer body with 413 before reading it; the largest legitimate body (a catalog document)
  is a few KiB, and Firestore refuses documents above 1 MiB
  (https://firebase.google.com/docs/firestore/quotas#collections_documents_and_fields).
- At most MAX_JSON_DEPTH levels of arrays and objects: Python's json parser recurses, and a body
  nested a few thousand deep raised RecursionError (a 500); Firestore itself stores no field deeper
  than 20 (same page: "Maximum depth of fields in a map or array"). The depth is measured on the
  raw bytes, without recursion, before anything parses them.
"""
from __future__ import annotations

import re
from itertools import accumulate

from flask import g, request

from shared.errors import FieldError

MAX_BODY_BYTES = 256 * 1024
MAX_JSON_DEPTH = 20
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)  # a JSON string: brackets inside it do not nest
_NESTING = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # opening +1, closing -1 (as signed bytes)
_OTHER = bytes(set(range(256)) - set(b"[]{}"))  # every other byte, deleted


def json_depth(data: bytes) -> int:
    """How deeply arrays and objects nest in a JSON text (an invalid text is measured all the same).
    Strings are blanked first (brackets inside them do not nest); the running sum runs in C."""
    steps = _STRING.sub(b'""', data).translate(_NESTING, _OTHER)
    return max(accumulate(memoryview(steps).cast("b")), default=0)


def request_json():
    """The request's parsed JSON (None when it is not JSON or does not parse), once its nesting is checked."""
    if "json_depth_checked" not in g:
        if json_depth(request.get_data()) > MAX_JSON_DEPTH:
            raise FieldError.one("body", f"nests arrays and objects more than {MAX_JSON_DEPTH} deep")
        g.json_depth_checked = True
    return request.get_json(silent=True)


def body(optional: bool = False) -> dict:
    """The request's JSON object. `optional`: an empty body is `{}` (every run action's body may be left out).
    Anything else that is not a JSON object is a 400 naming `body`."""
    if optional and not request.get_data():
        return {}
    data = request_json()
    if data is None:
        raise FieldError.one("body", "is not valid JSON (send Content-Type: application/json and a JSON object)")
    if optional and not isinstance(data, dict):
        raise FieldError.one("body", "must be a JSON object (or empty)")
    return data
