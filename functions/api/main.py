"""Cloud Functions entry point of the HTTP API (`--target handle`). Deployed, shared/ sits beside
this file (functions-framework puts its folder on sys.path); locally the stack sets PYTHONPATH."""
from __future__ import annotations

import functions_framework

from shared.once import Once


def _build():
    from shared.artifact_store import ArtifactStore
    from shared.http_api import Dependencies, create_app
    from shared.messaging import PubSubPublisher
    from shared.repository import FirestoreRepository
    from shared.settings import get_settings

    settings = get_settings()
    return create_app(Dependencies(repo=FirestoreRepository(settings.project), publisher=PubSubPublisher(settings.project),
                                   store=ArtifactStore(), settings=settings))


app = Once(_build)


@functions_framework.http
def handle(request):
    flask_app = app()
    with flask_app.request_context(request.environ):
        return flask_app.full_dispatch_request()
