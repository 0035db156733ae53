"""Consumes the log sink (`pipeline-events`) and `training-progress` into live run progress."""
from __future__ import annotations

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _here if os.path.isdir(os.path.join(_here, "shared")) else os.path.dirname(os.path.dirname(_here)))

import functions_framework  # noqa: E402

from shared.consumer import consume, event_data  # noqa: E402
from shared.settings import get_settings  # noqa: E402

_deps = None


def deps():
    global _deps
    if _deps is None:
        from shared.artifact_store import ArtifactStore
        from shared.messaging import PubSubPublisher
        from shared.pipelines import backend_from_settings
        from shared.repository import FirestoreRepository

        settings = get_settings()
        _deps = dict(repo=FirestoreRepository(settings.project), backend=backend_from_settings(settings),
                     store=ArtifactStore(), publisher=PubSubPublisher(settings.project), settings=settings)
    return _deps


def handle_pipeline_event(entry) -> str:
    from shared.services import progress

    d = deps()
    return progress.on_pipeline_event(entry, d["repo"], d["backend"], d["store"], d["publisher"])


def handle_training_progress(payload) -> str:
    from shared.services import progress

    d = deps()
    return progress.on_training_progress(payload, d["repo"], d["settings"].progress_min_interval_s)


@functions_framework.cloud_event
def on_pipeline_event(cloud_event):
    consume(event_data(cloud_event), handle_pipeline_event, "pipeline_events")


@functions_framework.cloud_event
def on_training_progress(cloud_event):
    consume(event_data(cloud_event), handle_training_progress, "training_progress")
