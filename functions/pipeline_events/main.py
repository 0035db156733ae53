"""Consumes the log sink (`pipeline-events`) and `training-progress` into live run progress."""
from __future__ import annotations

import functions_framework

from shared.composition import root
from shared.consumer import consume, event_data
from shared.contract.messages import ReconcileTick
from shared.contract.pipeline_log_entry import PipelineLogEntry
from shared.contract.results import EpochMetrics


def handle_pipeline_event(entry: PipelineLogEntry, message) -> str:
    from shared.services import progress

    return progress.on_pipeline_event(entry, root.repo, root.pipelines, root.store, root.effects)


def handle_training_progress(epoch: EpochMetrics, message) -> str:
    from shared.services import progress

    return progress.on_training_progress(epoch, root.repo, root.settings.progress_min_interval_s, root.effects)


@functions_framework.cloud_event
def on_pipeline_event(cloud_event):
    # A LogEntry from the sink; progress reads only the job it names (and every line logs its run).
    consume(event_data(cloud_event), PipelineLogEntry, handle_pipeline_event, "pipeline_events")


@functions_framework.cloud_event
def on_training_progress(cloud_event):
    consume(event_data(cloud_event), EpochMetrics, handle_training_progress, "training_progress")


def handle_reconcile(tick: ReconcileTick, message) -> str:
    from shared.services import reconcile

    report = reconcile.reconcile(root.repo, root.effects, root.pipelines, root.store, root.settings)
    return f"reconciled: {sum(report['repaired'].values())} repaired"


@functions_framework.cloud_event
def on_reconcile(cloud_event):
    """Cloud Scheduler's reconcile job (every few minutes) → `reconcile` → one pass over stuck runs."""
    consume(event_data(cloud_event), ReconcileTick, handle_reconcile, "reconciler")
