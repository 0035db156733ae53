"""Consumes the log sink (`pipeline-events`) and `training-progress` into live run progress."""
from __future__ import annotations

import functions_framework

from shared.consumer import consume, event_data
from shared.once import Once


def _build():
    from shared.artifact_store import ArtifactStore
    from shared.messaging import PubSubPublisher
    from shared.pipelines import backend_from_settings
    from shared.repository import FirestoreRepository
    from shared.services import progress
    from shared.settings import get_settings

    settings = get_settings()
    return dict(progress=progress, repo=FirestoreRepository(settings.project), backend=backend_from_settings(settings),
                store=ArtifactStore(), publisher=PubSubPublisher(settings.project), settings=settings)


deps = Once(_build)


def handle_pipeline_event(entry) -> str:
    d = deps()
    return d["progress"].on_pipeline_event(entry, d["repo"], d["backend"], d["store"], d["publisher"])


def handle_training_progress(payload) -> str:
    d = deps()
    return d["progress"].on_training_progress(payload, d["repo"], d["settings"].progress_min_interval_s)


@functions_framework.cloud_event
def on_pipeline_event(cloud_event):
    consume(event_data(cloud_event), handle_pipeline_event, "pipeline_events")


@functions_framework.cloud_event
def on_training_progress(cloud_event):
    consume(event_data(cloud_event), handle_training_progress, "training_progress")
