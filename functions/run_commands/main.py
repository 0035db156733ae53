"""Consumes `run-commands`: the slow cloud work of run actions — cancel a pipeline job (and the
Trainer's own job), deploy a registered model to an endpoint, register a not-blessed model anyway.
Runs on Cloud Run from the GPU image (push-anyway registers with the Pusher's code, which needs TFX)."""
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
        from shared.pipelines import backend_from_settings
        from shared.repository import FirestoreRepository
        from shared.serving import serving_from_settings

        settings = get_settings()
        _deps = dict(repo=FirestoreRepository(settings.project), backend=backend_from_settings(settings),
                     store=ArtifactStore(), serving=serving_from_settings(settings))
    return _deps


def handle_payload(payload) -> str:
    from shared.services import actions

    return actions.handle_command(actions.parse_command(payload), **deps())


@functions_framework.cloud_event
def on_run_command(cloud_event):
    consume(event_data(cloud_event), handle_payload, "run_commands")
