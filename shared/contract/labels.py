"""Labels Trainyard puts on cloud resources (pipeline jobs, the Trainer's custom job, Dataflow jobs,
model versions, endpoints) so a run finds what it started and Cloud Billing's export can sum cost per
run, per schedule and per model (filter `labels.key = "trainyard-run-id"`), and the ids of its
pipeline jobs.

Every job of a run is labelled explicitly: Vertex propagates a pipeline run's labels only to the jobs
Google Cloud Pipeline Components create, not to those a user-defined (here: TFX) component creates
(https://cloud.google.com/vertex-ai/docs/pipelines/gcpc-label-propagation).

Label rules (Resource Manager, the same for Vertex AI and Dataflow): keys and values at most 63
characters of lowercase letters, digits, '_' and '-', keys starting with a letter, at most 64 labels
per resource (https://cloud.google.com/resource-manager/docs/labels-overview#requirements).
"""
from __future__ import annotations

import re
from typing import Optional

RUN_ID_LABEL = "trainyard-run-id"
ATTEMPT_LABEL = "trainyard-attempt"
SCHEDULE_ID_LABEL = "trainyard-schedule-id"
MODEL_LABEL = "trainyard-model"
DATA_RUNNER_LABEL = "trainyard-data-runner"
DATAFLOW_MACHINE_LABEL = "trainyard-dataflow-machine"
DATAFLOW_WORKERS_LABEL = "trainyard-dataflow-workers"
NO_SCHEDULE = "none"  # a run made by hand: "none" is filterable, an absent label is not


def label_value(value) -> str:
    """Any value as a valid label value."""
    return re.sub(r"[^a-z0-9_-]", "-", str(value).lower())[:63]


def job_labels(run_id: str, attempt: int) -> dict[str, str]:
    """What a run's pipeline job (and the Trainer's custom job) carries: which run and attempt made it."""
    return {RUN_ID_LABEL: label_value(run_id), ATTEMPT_LABEL: str(attempt)}


def billing_labels(run_id: str, attempt: int, model_name: str, schedule_id: Optional[str]) -> dict[str, str]:
    """What every job of a run carries (its PipelineJob, the Trainer's CustomJob, its Dataflow jobs)."""
    return {**job_labels(run_id, attempt), MODEL_LABEL: label_value(model_name),
            SCHEDULE_ID_LABEL: label_value(schedule_id or NO_SCHEDULE)}


def billing_labels_for(spec) -> dict[str, str]:
    """The labels of a RunSpec's jobs (the model is registered under the run's name)."""
    return billing_labels(spec.run_id, spec.attempt, spec.run_name, getattr(spec, "schedule_id", None))


def run_labels(spec) -> dict[str, str]:
    """What a registered model version carries: which run and attempt made it."""
    return {**job_labels(spec.run_id, spec.attempt), "trainyard-run-number": str(spec.run_number),
            "trainyard-model-type": spec.model_type}


# The run ids Trainyard makes, one alternative per generator: a run made by hand or by the API
# (shared/services/run_builder.new_run_id, "tr-<16 hex>"), and a schedule's runs: a slot's
# (shared/domain/schedules.slot_run_id, "<schedule id>-YYYYmmdd-HHMMSS") and run-now's
# (manual_run_id, "<schedule id>-mYYYYmmdd-HHMMSS") and new data's (shared/domain/data_triggers.run_id_for,
# "<schedule id>-dYYYYmmdd-HHMMSS"), whose schedule id is "ts-<12 hex>"
# (shared/services/scheduling.new_schedule_id). Every retry is a new attempt of the same run id.
RUN_ID_PATTERN = "(tr-[0-9a-f]{16}|ts-[0-9a-f]{12}-[md]?[0-9]{8}-[0-9]{6})"

# A pipeline job id Trainyard made (job_id_for): the log sink's filter (terraform/logging.tf, a test
# keeps the two equal) wakes pipeline-events for these and for no other pipeline's. The Logging query
# language's `=~` takes RE2 (https://cloud.google.com/logging/docs/view/logging-query-language#regular-expressions):
# keep it to classes, counts, `?`, one group and anchors, which RE2 and Python's re read alike.
JOB_ID_PATTERN = f"^{RUN_ID_PATTERN}-a[0-9]+$"


def job_id_for(run_id: str, attempt: int) -> str:
    """Pipeline job id: deterministic, so a redelivered run-submit finds the job it made."""
    return f"{run_id}-a{attempt}"


def parse_job_id(job_id: str) -> Optional[tuple[str, int]]:
    match = re.fullmatch(r"(?P<run_id>.+)-a(?P<attempt>\d+)", job_id or "")
    return (match["run_id"], int(match["attempt"])) if match else None
