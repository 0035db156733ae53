"""Cloud Functions entry point of the HTTP API (`--target handle`). Deployed, shared/ sits beside
this file (functions-framework puts its folder on sys.path); locally the stack sets PYTHONPATH."""
from __future__ import annotations

import functions_framework

from shared.composition import root


def build_app(settings):
    from shared.http_api import create_app

    return create_app(root.api_dependencies())


root.build_with("api_app", build_app)


@functions_framework.http
def handle(request):
    app = root.get("api_app")
    with app.request_context(request.environ):
        return app.full_dispatch_request()
