"""Consumes `run-submit`: claim → snapshot → compile → submit (runs on Cloud Run from the GPU image)."""
from __future__ import annotations

import functions_framework

from shared.composition import root, scheduler_jobs_not_granted
from shared.consumer import consume, event_data
from shared.contract.messages import RunSubmit

root.build_with("scheduler_jobs", scheduler_jobs_not_granted)
# The heavy consumer: TFX loads before the first message, not during it.
root.warm_after_fork("compiler", "repo", "pipelines", "store", "publisher")


def handle_submit(request: RunSubmit, message) -> str:
    from shared.services import submission

    return submission.submit(request, repo=root.repo, pipelines=root.pipelines,
                             store=root.store, compiler=root.compiler, settings=root.settings,
                             effects=root.effects)


@functions_framework.cloud_event
def on_run_submit(cloud_event):
    consume(event_data(cloud_event), RunSubmit, handle_submit, "submitter")
