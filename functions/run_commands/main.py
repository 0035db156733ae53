"""Consumes `run-commands`: the slow cloud work of run actions — cancel a pipeline job (and the
Trainer's own job), deploy a registered model to an endpoint, register a not-blessed model anyway.
Runs on Cloud Run from the GPU image (push-anyway registers with the Pusher's code, which needs TFX)."""
from __future__ import annotations

import functions_framework

from shared.composition import root
from shared.consumer import consume, event_data


def handle_payload(payload) -> str:
    from shared.services import actions

    return actions.handle_command(actions.parse_command(payload), repo=root.repo, backend=root.pipelines,
                                  store=root.store, serving=root.serving, notifier=root.notifier,
                                  publisher=root.publisher)


@functions_framework.cloud_event
def on_run_command(cloud_event):
    consume(event_data(cloud_event), handle_payload, "run_commands")
