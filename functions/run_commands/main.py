"""Consumes `run-commands`: the slow cloud work of run actions — cancel a pipeline job (and the
Trainer's own job), deploy a registered model to an endpoint, register a not-blessed model anyway.
Runs on Cloud Run from the GPU image (push-anyway registers with the Pusher's code, which needs TFX)."""
from __future__ import annotations

import functions_framework

from shared.consumer import consume, event_data
from shared.once import Once


def _build():
    from shared.artifact_store import ArtifactStore
    from shared.pipelines import backend_from_settings
    from shared.repository import FirestoreRepository
    from shared.serving import serving_from_settings
    from shared.services import actions
    from shared.settings import get_settings

    settings = get_settings()
    return dict(actions=actions, repo=FirestoreRepository(settings.project), backend=backend_from_settings(settings),
                store=ArtifactStore(), serving=serving_from_settings(settings))


deps = Once(_build)


def handle_payload(payload) -> str:
    d = dict(deps())
    actions = d.pop("actions")
    return actions.handle_command(actions.parse_command(payload), **d)


@functions_framework.cloud_event
def on_run_command(cloud_event):
    consume(event_data(cloud_event), handle_payload, "run_commands")
