"""Cloud Functions entry point of the HTTP API (`--target handle`)."""
from __future__ import annotations

import os
import sys

# Deployed, shared/ sits beside main.py; in the repository it is two folders up.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _here if os.path.isdir(os.path.join(_here, "shared")) else os.path.dirname(os.path.dirname(_here)))

import functions_framework  # noqa: E402

from shared.settings import get_settings  # noqa: E402

_app = None


def app():
    """Built once per instance, lazily: clients are created on first use, not at import."""
    global _app
    if _app is None:
        from shared.http_api import Dependencies, create_app
        from shared.artifact_store import ArtifactStore
        from shared.messaging import PubSubPublisher
        from shared.repository import FirestoreRepository

        settings = get_settings()
        _app = create_app(Dependencies(repo=FirestoreRepository(settings.project),
                                       publisher=PubSubPublisher(settings.project),
                                       store=ArtifactStore(), settings=settings))
    return _app


@functions_framework.http
def handle(request):
    flask_app = app()
    with flask_app.request_context(request.environ):
        return flask_app.full_dispatch_request()
