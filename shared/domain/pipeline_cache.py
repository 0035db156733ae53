"""Whether a pipeline job may reuse cached task outputs: only while they still exist.

Vertex caching reuses an earlier execution of a task within the same pipeline name (Trainyard's is
per run, so only a retry of the run can hit it), and that execution's outputs are objects under the
pipeline root, which Terraform's lifecycle rule deletes `pipeline_root_retention_days` after they were
written (terraform/storage.tf). A cache hit on deleted objects fails the task that reads them. So a
submit may use the cache only while every output of the run's earlier attempts outlives the new
attempt: the run is younger than the retention minus CACHE_MARGIN (no output of the run is older
than the run itself), else the job recomputes every task.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

# How long a new attempt may still read its earlier attempts' outputs: a Vertex CustomJob's default
# timeout is 7 days (cloud.google.com/vertex-ai/docs/reference/rest/v1/CustomJobSpec#Scheduling), which
# bounds the Trainer, the longest task; the data stages finish before it.
CACHE_MARGIN = timedelta(days=8)


def caching_allowed(run: dict, retention_days: Optional[float], at: datetime) -> bool:
    """retention_days: the pipeline root's lifecycle age (None: outputs are never deleted, the local twin)."""
    if retention_days is None:
        return True
    return at - run["created_at"] < timedelta(days=retention_days) - CACHE_MARGIN
