"""Consumes the log sink (`pipeline-events`) and `training-progress` into live run progress."""
from __future__ import annotations

import functions_framework

from shared.composition import root
from shared.consumer import consume, event_data


def handle_pipeline_event(entry) -> str:
    from shared.services import progress

    return progress.on_pipeline_event(entry, root.repo, root.pipelines, root.store, root.publisher,
                                      jobs=root.schedule_jobs)


def handle_training_progress(payload) -> str:
    from shared.services import progress

    return progress.on_training_progress(payload, root.repo, root.settings.progress_min_interval_s)


@functions_framework.cloud_event
def on_pipeline_event(cloud_event):
    consume(event_data(cloud_event), handle_pipeline_event, "pipeline_events")


@functions_framework.cloud_event
def on_training_progress(cloud_event):
    consume(event_data(cloud_event), handle_training_progress, "training_progress")


def handle_reconcile(payload) -> str:
    from shared.services import reconcile

    report = reconcile.reconcile(root.repo, root.publisher, root.pipelines, root.store, root.settings,
                                 jobs=root.schedule_jobs)
    return f"reconciled: {sum(report['repaired'].values())} repaired"


@functions_framework.cloud_event
def on_reconcile(cloud_event):
    """Cloud Scheduler's reconcile job (every few minutes) → `reconcile` → one pass over stuck runs."""
    consume(event_data(cloud_event), handle_reconcile, "reconciler")
