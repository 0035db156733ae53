"""Consumes `run-commands`: the slow cloud work of run actions — cancel a pipeline job (and the
Trainer's own job), deploy a registered model to an endpoint, register a not-blessed model anyway.
Runs on Cloud Run from the GPU image: push-anyway registers with the Pusher's own code
(pipeline_compiler/registry.py), which this entry point hands to the composition root."""
from __future__ import annotations

import functions_framework

from pipeline_compiler.registry import build_registrar
from shared.composition import root, scheduler_jobs_not_granted
from shared.consumer import consume, event_data
from shared.contract.messages import RunCommand

root.build_with("registrar", build_registrar)
root.build_with("scheduler_jobs", scheduler_jobs_not_granted)


def handle_command(command: RunCommand, message) -> str:
    from shared.services import commands

    return commands.handle_command(command, repo=root.repo, pipelines=root.pipelines, store=root.store,
                                   serving=root.serving, notifier=root.notifier, effects=root.effects,
                                   declared=root.settings.teams)


@functions_framework.cloud_event
def on_run_command(cloud_event):
    consume(event_data(cloud_event), RunCommand, handle_command, "run_commands")
