"""The pipeline-events payload: a Cloud Logging LogEntry the log sink routes from Vertex AI Pipelines
(terraform/logging.tf), as Pub/Sub delivers it — the LogEntry's JSON
(https://cloud.google.com/logging/docs/reference/v2/rest/v2/LogEntry: `logName`, `resource`
{`type`, `labels`}, `jsonPayload`, ...) — and the local pipeline service imitates it.

Only the envelope is relied on: the resource names the pipeline job (`resource.labels.pipeline_job_id`),
and the entry means "this job changed"; the consumer reads the state from the backend. The job id
is deterministic (shared/contract/labels.job_id_for: `<run id>-a<attempt>`), and the entry carries
no user labels of the job, so the run and attempt are read from the id, before any handler runs:
every log line of the consumer carries its run (shared/consumer.py).
"""
from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.contract.labels import parse_job_id

PIPELINE_RESOURCE_TYPE = "aiplatform.googleapis.com/PipelineJob"
# The job and task event logs; a sink delivers logName with the log id URL-encoded ("%2F").
PIPELINE_LOGS = ("aiplatform.googleapis.com%2Fpipeline_job_events", "aiplatform.googleapis.com%2Fpipeline_job_task_events",
                 "aiplatform.googleapis.com/pipeline_job_events", "aiplatform.googleapis.com/pipeline_job_task_events")


class PipelineResource(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _pipeline_job(cls, value: str) -> str:
        if value != PIPELINE_RESOURCE_TYPE:
            raise ValueError(f"not a pipeline job entry (resource.type={value!r})")
        return value


class PipelineLogEntry(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    log_name: str = Field(alias="logName")
    resource: PipelineResource

    @field_validator("log_name")
    @classmethod
    def _pipeline_log(cls, value: str) -> str:
        if not value.endswith(PIPELINE_LOGS):
            raise ValueError(f"not a pipeline job log (logName={value!r})")
        return value

    @field_validator("resource")
    @classmethod
    def _names_a_job(cls, value: PipelineResource) -> PipelineResource:
        if not value.labels.get("pipeline_job_id"):
            raise ValueError("entry has no resource.labels.pipeline_job_id")
        return value

    @classmethod
    def of(cls, entry) -> "PipelineLogEntry":
        """An entry already read, or its JSON (a ValueError — pydantic's ValidationError is one — if it
        is not a pipeline job's)."""
        if isinstance(entry, cls):
            return entry
        if not isinstance(entry, dict):
            raise ValueError("log entry is not a JSON object")
        return cls.model_validate(entry)

    @property
    def job_id(self) -> str:
        return self.resource.labels["pipeline_job_id"]

    @property
    def run_id(self) -> Optional[str]:
        """The run whose job this is; None for a pipeline job Trainyard did not create."""
        parsed = parse_job_id(self.job_id)
        return parsed[0] if parsed else None

    @property
    def attempt(self) -> Optional[int]:
        parsed = parse_job_id(self.job_id)
        return parsed[1] if parsed else None
