"""The names of the Dataflow jobs a run's data stages launch: set by the compiler (Beam's `--job_name`, per
component) and read back by the logs reader, which finds each job's worker and job-message logs in Cloud
Logging by `resource.labels.job_name` (resource type dataflow_step) without asking Dataflow for ids.

A name is unique per run, attempt and stage. Dataflow allows one *active* job of a name per project and
region, and names match [a-z]([-a-z0-9]{0,1022}[a-z0-9])?
(https://cloud.google.com/dataflow/docs/reference/rest/v1b3/projects.jobs, Job.name); we stay within
40 characters, the older documented limit.
"""
from __future__ import annotations

import hashlib
import re

from shared.contract.nodes import NODE_OF_STAGE

# The stages whose component runs Beam (BaseBeamComponent): SchemaGen, the Trainer and the Pusher do not.
BEAM_STAGES = ("Examples", "Stats", "Transform", "Evaluate")
_NAME = re.compile(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?")


def dataflow_job_name(run_id: str, attempt: int, stage: str) -> str:
    if stage not in BEAM_STAGES:
        raise ValueError(f"{stage} launches no Dataflow job")
    node = NODE_OF_STAGE[stage].lower()
    name = f"{run_id.lower()}-a{attempt}-{node}"
    if _NAME.fullmatch(name):
        return name
    # A run id that is not a name (too long, or other characters): a stable digest of it instead.
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:12]
    return f"ty-{digest}-a{attempt}-{node}"[:40].rstrip("-")


def dataflow_jobs_of(run_id: str, attempt: int) -> dict[str, str]:
    """{job name: stage} of every data stage of one attempt."""
    return {dataflow_job_name(run_id, attempt, stage): stage for stage in BEAM_STAGES}
