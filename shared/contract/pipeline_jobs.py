"""A pipeline job as both sides report it (Vertex AI Pipelines and the local pipeline service): its
state, its tasks' states and errors, its labels. Vertex's vocabulary: job states `PIPELINE_STATE_*`,
task states `PENDING|RUNNING|SUCCEEDED|SKIPPED|FAILED|CANCELLED|...`. The domain folds it into a run
(shared/domain/runs.py); the adapters (shared/adapters/pipelines.py) build it."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

TERMINAL_JOB_STATES = frozenset(
    {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"})


@dataclass(frozen=True)
class TaskSnapshot:
    task_name: str
    state: str
    start_time: Optional[datetime] = None
    end_time: Optional[datetime] = None
    error: Optional[str] = None


@dataclass(frozen=True)
class JobSnapshot:
    job_id: str
    name: str
    state: str
    create_time: Optional[datetime] = None
    start_time: Optional[datetime] = None
    end_time: Optional[datetime] = None
    error: Optional[str] = None
    labels: dict = field(default_factory=dict)
    tasks: tuple[TaskSnapshot, ...] = ()

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_JOB_STATES
