"""GPU fallback through the local stack: a Trainer that fails for quota (the pipeline-events consumer, Firestore,
the run-commands consumer over Pub/Sub push) is submitted again by itself on the run's next shape; a failure
for any other reason is not."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest

from tests.integration.test_control_plane_flow import catalog, create, deliver  # noqa: F401 (fixture)
from tests.unit.scenario import job_timeline

pytestmark = pytest.mark.integration

QUOTA = ("RuntimeError: The following quota metrics exceed quota limits: "
         "aiplatform.googleapis.com/custom_model_training_nvidia_l4_gpus (code 8)")
SHAPES = {"gpu_type": "NVIDIA_L4", "gpu_count": 2,
          "fallbacks": [{"gpu_type": "NVIDIA_TESLA_T4", "gpu_count": 2, "region": "us-central1", "preemptible": False}]}


def failing_trainer(job_id: str, error: str):
    """The job's timeline up to its Trainer failing with `error` (as the Vertex backend's root cause gives it)."""
    return [replace(s, tasks=tuple(replace(t, error=error) if t.state == "FAILED" else t for t in s.tasks))
            for s in job_timeline(job_id, fail_at="Trainer")]


def test_a_quota_failure_submits_the_next_attempt_on_the_next_shape(local_stack, catalog):  # noqa: F811
    run = create(local_stack, catalog, "fallback-quota", gpu_config=SHAPES)
    local_stack.wait_for(run["id"], lambda r: r["status"] == "running", what="submission")
    deliver(local_stack, failing_trainer(f"{run['id']}-a1", QUOTA), f"{run['id']}-a1")
    second = local_stack.wait_for(run["id"], lambda r: r["attempt"] == 2 and r["status"] == "running",
                                  what="attempt 2 on the fallback shape")
    assert second["gpu_config"]["gpu_type"] == "NVIDIA_TESLA_T4" and second["gpu_config"]["region"] == "us-central1"
    assert second["gpu_config"]["preemptible"] is False and second["gpu_config"]["machine_type"] == "n1-standard-16"
    first = second["attempts"][0]
    assert first["ended_because"] == "quota" and first["retried_by"] == "trainyard (gpu fallback)"
    assert first["shape"]["gpu_type"] == "NVIDIA_L4"
    request = local_stack.pipeline.jobs[f"{run['id']}-a2"]["request"]
    assert request["labels"]["trainyard-attempt"] == "2"


def test_a_failure_that_is_not_quota_or_capacity_does_not_fall_back(local_stack, catalog):  # noqa: F811
    run = create(local_stack, catalog, "fallback-oom", gpu_config=SHAPES)
    local_stack.wait_for(run["id"], lambda r: r["status"] == "running", what="submission")
    deliver(local_stack, job_timeline(f"{run['id']}-a1", fail_at="Trainer"), f"{run['id']}-a1")  # out of memory
    local_stack.wait_for(run["id"], lambda r: r["status"] == "failed", what="failure")
    time.sleep(3)  # what a fallback would do follows within a push delivery: it would have happened by now
    failed = local_stack.get(f"/api/training-runs/{run['id']}").json()["training_run"]
    assert failed["attempt"] == 1 and failed["status"] == "failed"
    assert f"{run['id']}-a2" not in local_stack.pipeline.jobs
