"""Labels Trainyard puts on cloud resources (pipeline jobs, the Trainer's custom job, model versions,
endpoints) so a run finds what it started, and the ids of its pipeline jobs.

Label values: lowercase letters, digits, '_' and '-', at most 63 characters
(https://cloud.google.com/vertex-ai/docs/general/resource-labels).
"""
from __future__ import annotations

import re
from typing import Optional

RUN_ID_LABEL = "trainyard-run-id"
ATTEMPT_LABEL = "trainyard-attempt"


def label_value(value) -> str:
    """Any value as a valid label value."""
    return re.sub(r"[^a-z0-9_-]", "-", str(value).lower())[:63]


def job_labels(run_id: str, attempt: int) -> dict[str, str]:
    """What a run's pipeline job (and the Trainer's custom job) carries: which run and attempt made it."""
    return {RUN_ID_LABEL: label_value(run_id), ATTEMPT_LABEL: str(attempt)}


def run_labels(spec) -> dict[str, str]:
    """What a registered model version carries: which run and attempt made it."""
    return {**job_labels(spec.run_id, spec.attempt), "trainyard-run-number": str(spec.run_number),
            "trainyard-model-type": spec.model_type}


def job_id_for(run_id: str, attempt: int) -> str:
    """Pipeline job id: deterministic, so a redelivered run-submit finds the job it made."""
    return f"{run_id}-a{attempt}"


def parse_job_id(job_id: str) -> Optional[tuple[str, int]]:
    match = re.fullmatch(r"(?P<run_id>.+)-a(?P<attempt>\d+)", job_id or "")
    return (match["run_id"], int(match["attempt"])) if match else None
