"""Request checks every API route gets before its service runs, and the headers every response gets
(docs/security.md, "Requests and pages").

Before: a body longer than request_body.MAX_BODY_BYTES is a 413 (werkzeug refuses it unread), JSON
nested deeper than request_body.MAX_JSON_DEPTH a 400 naming `body`, a query parameter of the wrong
shape for its name a 400 naming it (shared/validation.QUERY_RULES), and what Firestore would refuse
never reaches a service (shared/domain/doc_ids.py): a path id that cannot name a document is a 404; a
JSON body with an integer outside the 64-bit range or a string that is not Unicode is a 400 naming
each field.

After: every response says not to sniff its type, not to be framed and not to leak its URL as a
referrer; a JSON answer may load nothing at all (`default-src 'none'`). The Training page sets its
own policy (shared/http/dashboard_routes.page_policy), which this keeps.
"""
from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from shared.domain import doc_ids
from shared.errors import FieldError, NotFound
from shared.http.request_body import MAX_BODY_BYTES, request_json
from shared.validation import query_problems

WHAT = {"run_id": "training run", "schedule_id": "training schedule", "doc_id": "document"}
# OWASP Secure Headers Project's recommendations for an API (https://owasp.org/www-project-secure-headers/).
RESPONSE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def register_guards(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.before_request
    def refuse_what_firestore_would():
        for name, value in (request.view_args or {}).items():
            problem = doc_ids.id_problem(value) if name in WHAT else None
            if problem:
                raise NotFound(f"{WHAT[name]} {value!r} (an id {problem})")
        problems = query_problems(request.args)
        if problems:
            raise FieldError([{"field": name, "message": message} for name, message in problems])
        if request.is_json and request.get_data():
            problems = list(doc_ids.value_problems(request_json()))
            if problems:
                raise FieldError([{"field": field, "message": message} for field, message in problems])

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc):
        payload, code = error_body(exc)
        payload["message"] = f"the request body is larger than {MAX_BODY_BYTES} bytes"
        return jsonify(payload), code

    @app.after_request
    def security_headers(response):
        for name, value in RESPONSE_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def error_body(exc: HTTPException) -> tuple[dict, int]:
    """The JSON error of a routing or protocol error (404 no route, 405, 413...): the same shape as
    every other error, also when functions-framework's own app answers before ours."""
    return {"success": False, "error": exc.name.lower().replace(" ", "_"), "message": exc.description}, exc.code
