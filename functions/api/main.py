"""Cloud Functions entry point of the HTTP API (`--target handle`). Deployed, shared/ sits beside
this file (functions-framework puts its folder on sys.path); locally the stack sets PYTHONPATH."""
from __future__ import annotations

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from shared.composition import root
from shared.http.guards import error_body


def build_app(settings):
    from shared.http.app import create_app

    return create_app(root.api_dependencies())


root.build_with("api_app", build_app)


@functions_framework.http
def handle(request):
    app = root.get("api_app")
    with app.request_context(request.environ):
        return app.full_dispatch_request()


@functions_framework.errorhandler(HTTPException)
def framework_error(exc: HTTPException):
    """functions-framework routes `/<path:path>` before our app sees the request; a path its rule does
    not match (e.g. a newline in an id) would get Flask's HTML 404. Answer with the API's JSON error."""
    payload, code = error_body(exc)
    return flask.jsonify(payload), code
