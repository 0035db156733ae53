"""The JSON body of a request, read one way by every route."""
from __future__ import annotations

from flask import request

from shared.errors import FieldError


def body(optional: bool = False) -> dict:
    """The request's JSON object. `optional`: an empty body is `{}` (every run action's body may be left out).
    Anything else that is not a JSON object is a 400 naming `body`."""
    if optional and not request.get_data():
        return {}
    data = request.get_json(silent=True)
    if data is None:
        raise FieldError.one("body", "is not valid JSON (send Content-Type: application/json and a JSON object)")
    if optional and not isinstance(data, dict):
        raise FieldError.one("body", "must be a JSON object (or empty)")
    return data
