"""Consumes `run-submit`: claim → snapshot → compile → submit (runs on Cloud Run from the GPU image)."""
from __future__ import annotations

import functions_framework

from shared.consumer import consume, event_data
from shared.once import Once
from shared.settings import get_settings


def _build():
    from shared.artifact_store import ArtifactStore
    from shared.pipelines import backend_from_settings
    from shared.repository import FirestoreRepository
    from shared.services import submission

    settings = get_settings()
    compiler = submission.Compiler.load(settings.compiler)
    if settings.compiler.startswith("pipeline_compiler"):
        import pipeline_compiler.pipeline  # noqa: F401 - TFX, loaded here rather than in the first Compile stage
    return dict(submission=submission, repo=FirestoreRepository(settings.project),
                backend=backend_from_settings(settings), store=ArtifactStore(), compiler=compiler, settings=settings)


deps = Once(_build)
deps.warm_after_fork()  # the heavy consumer: be ready before the first message, not during it


def handle_payload(payload) -> str:
    d = dict(deps())
    submission = d.pop("submission")
    return submission.submit(submission.parse_message(payload), **d)


@functions_framework.cloud_event
def on_run_submit(cloud_event):
    consume(event_data(cloud_event), handle_payload, "submitter")
