"""Request checks every API route gets before its service runs: what Firestore would refuse never
reaches it (shared/domain/doc_ids.py). A path id that cannot name a document is a 404; a JSON body with an
integer outside the 64-bit range or a string that is not Unicode is a 400 naming each field."""
from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from shared.domain import doc_ids
from shared.errors import FieldError, NotFound

WHAT = {"run_id": "training run", "schedule_id": "training schedule", "doc_id": "document"}


def register_guards(app: Flask) -> None:
    @app.before_request
    def refuse_what_firestore_would():
        for name, value in (request.view_args or {}).items():
            problem = doc_ids.id_problem(value) if name in WHAT else None
            if problem:
                raise NotFound(f"{WHAT[name]} {value!r} (an id {problem})")
        if request.is_json and request.get_data():
            problems = list(doc_ids.value_problems(request.get_json(silent=True)))
            if problems:
                raise FieldError([{"field": field, "message": message} for field, message in problems])


def error_body(exc: HTTPException) -> tuple[dict, int]:
    """The JSON error of a routing or protocol error (404 no route, 405, 413...): the same shape as
    every other error, also when functions-framework's own app answers before ours."""
    return {"success": False, "error": exc.name.lower().replace(" ", "_"), "message": exc.description}, exc.code
