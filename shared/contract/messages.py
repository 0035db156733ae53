"""The payload of every topic a consumer reads, validated at the edge (shared/consumer.py `consume`).

| topic | model | published by |
| --- | --- | --- |
| run-submit | RunSubmit | the API, the scheduler, whatever releases a run (shared/services/queueing.py) |
| run-commands | RunCommand | the API's run actions (shared/services/actions/), deploy after training (actions/deploy.py), notifications (actions/notify.py) |
| schedule-trigger | ScheduleTrigger | Cloud Scheduler's job (Terraform-free: the API makes it), the local ticker |
| training-progress | shared.contract.results.EpochMetrics | the Trainer, once an epoch |
| pipeline-events | shared.contract.pipeline_log_entry.PipelineLogEntry (a Cloud Logging LogEntry) | the log sink |
| reconcile | ReconcileTick | Cloud Scheduler's reconcile job, the local ticker (terraform/reconciler.tf) |
| data-landed | DataLanded | Cloud Storage bucket notifications, the BigQuery audit log sink, the local watcher (terraform/data_triggers.tf) |

A payload that does not validate is logged and acknowledged as malformed, never retried.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator


class RunSubmit(BaseModel):
    model_config = ConfigDict(extra="ignore")
    run_id: str = Field(min_length=1)
    attempt: int = Field(1, ge=1)


CANCEL, DEPLOY, PUSH_ANYWAY, NOTIFY = "cancel", "deploy", "push_anyway", "notify"  # the run-commands
CANARY_CHECK, ROLLBACK = "canary_check", "rollback"  # a canary's watch (sent by the reconciler), a rollback
BATCH_PREDICT = "batch_predict"  # top-K for a list of users
GPU_FALLBACK = "gpu_fallback"  # the next attempt of a run that failed for GPU quota or capacity
ENDPOINT_TRAFFIC, UNDEPLOY = "endpoint_traffic", "undeploy"  # a change by hand on an endpoint the run is deployed to


class RunCommand(BaseModel):
    model_config = ConfigDict(extra="ignore")
    command: Literal["cancel", "deploy", "push_anyway", "notify", "canary_check", "rollback", "batch_predict",
                     "gpu_fallback", "endpoint_traffic", "undeploy"]
    run_id: str = Field(min_length=1)
    attempt: Optional[int] = None
    deployment_id: Optional[str] = None  # deploy, canary_check, rollback: acted on only while it is the run's
    batch_id: Optional[str] = None  # batch_predict: which batch prediction of the run
    event: Optional[str] = None  # notify: which event (shared/domain/notifications.py)
    schedule_id: Optional[str] = None  # notify: a schedule's event
    # endpoint_traffic, undeploy: which endpoint, what change, by whom; change_id records it once in the history
    endpoint: Optional[str] = None
    traffic_split: Optional[dict[str, int]] = None
    deployed_model_id: Optional[str] = None
    force: bool = False  # undeploy: even the last model holding traffic
    change_id: Optional[str] = None
    requested_by: Optional[str] = None
    reason: Optional[str] = None


class ScheduleTrigger(BaseModel):
    """Cloud Scheduler's job sends only the schedule (its slot is the message's publish time); the local
    ticker and a catch-up name the slot."""

    model_config = ConfigDict(extra="ignore")
    schedule_id: str = Field(min_length=1)
    slot: Optional[datetime] = None

    @field_validator("slot")
    @classmethod
    def _aware(cls, value: Optional[datetime]) -> Optional[datetime]:
        if value is not None and value.tzinfo is None:
            raise ValueError("slot needs a UTC offset")
        return value


class DataLanded(BaseModel):
    """A storage notification's object resource or the sink's LogEntry, as sent: which one it is, and the event
    in it, is shared/domain/data_triggers.from_message's (it needs the attributes too)."""

    model_config = ConfigDict(extra="allow")


class ReconcileTick(BaseModel):
    """`{}`: a tick carries nothing; the reconciler reads what is stuck from Firestore."""

    model_config = ConfigDict(extra="ignore")
