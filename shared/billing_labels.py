"""The labels every cloud job of a run carries — its Vertex PipelineJob, the Trainer's CustomJob and its
Dataflow jobs — so Cloud Billing's export can sum cost per run, per schedule and per model (filter
`labels.key = "trainyard-run-id"`). Each is set explicitly: Vertex propagates a pipeline run's labels
only to the jobs Google Cloud Pipeline Components create, not to those a user-defined (here: TFX)
component creates (https://cloud.google.com/vertex-ai/docs/pipelines/gcpc-label-propagation).

Label rules (Resource Manager, the same for Vertex AI and Dataflow): keys and values at most 63
characters of lowercase letters, digits, '_' and '-', keys starting with a letter, at most 64 labels
per resource (https://cloud.google.com/resource-manager/docs/labels-overview#requirements)."""
from __future__ import annotations

from typing import Optional

from shared.pipelines import ATTEMPT_LABEL, RUN_ID_LABEL
from shared.serving import label_value  # lowercase letters, digits, '_' and '-', at most 63 characters

SCHEDULE_ID_LABEL = "trainyard-schedule-id"
MODEL_LABEL = "trainyard-model"
DATA_RUNNER_LABEL = "trainyard-data-runner"
DATAFLOW_MACHINE_LABEL = "trainyard-dataflow-machine"
DATAFLOW_WORKERS_LABEL = "trainyard-dataflow-workers"
NO_SCHEDULE = "none"  # a run made by hand: "none" is filterable, an absent label is not


def billing_labels(run_id: str, attempt: int, model_name: str, schedule_id: Optional[str]) -> dict[str, str]:
    return {RUN_ID_LABEL: label_value(run_id), ATTEMPT_LABEL: label_value(attempt),
            MODEL_LABEL: label_value(model_name), SCHEDULE_ID_LABEL: label_value(schedule_id or NO_SCHEDULE)}


def for_spec(spec) -> dict[str, str]:
    """The labels of a RunSpec's jobs (the model is registered under the run's name)."""
    return billing_labels(spec.run_id, spec.attempt, spec.run_name, getattr(spec, "schedule_id", None))


def dataflow_args(labels: dict[str, str]) -> list[str]:
    """Beam's Dataflow option for job labels: `--labels=key=value`, repeatable (apache_beam
    options/pipeline_options.py, GoogleCloudOptions: `--labels`, action='append')."""
    return [f"--labels={key}={value}" for key, value in sorted(labels.items())]
