"""GPU fallback as deployed: a run listing a fallback shape is submitted over HTTP and compiled for Vertex; its
Trainer's CustomJob is refused its GPUs (RESOURCE_EXHAUSTED, Vertex's quota text: tests/events/gpu_failures.json)
and the Trainer task fails with it, as Vertex reports it: the task's error is the replica's exit, the launcher's
CustomJob holds the traceback that prints the refused job. The log sink's entry reaches the pipeline-events
function, which reads the job and that CustomJob back over gRPC (PipelineService, JobService); the run fails at
Train for quota, run-commands starts the next attempt on the next shape, and the submitter creates attempt 2's
PipelineJob with the Trainer's CustomJob on that shape (machine, accelerator, region, on-demand)."""
from __future__ import annotations

import json

import grpc
import pytest

from shared.domain import gpu_fallback, runs
from shared.contract import labels
from tests.events import HERE
from tests.rehearsal.test_cloud_runs import _assert_iam_table_names_every_rpc_served, submitted
from tests.rehearsal.test_cloud_runs import api, experiment  # noqa: F401 - the fixtures
from tests.rehearsal.test_deployment_runs import _params, compiled
from tests.rehearsal.vertex_run import Player, task_order

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]
QUOTA = next(c for c in json.loads((HERE / "gpu_failures.json").read_text())["cases"]
             if c["cause"] == "quota" and "exceed quota limits" in c["text"] and "429" not in c["text"])
FIRST = {"gpu_type": "NVIDIA_L4", "gpu_count": 1, "machine_type": "g2-standard-8"}
FALLBACK = {"gpu_type": "NVIDIA_TESLA_T4", "gpu_count": 2, "machine_type": "n1-standard-16", "region": "us-central1",
            "preemptible": False}


class RefusedPlayer(Player):
    def refuse_trainer(self, message: str) -> str:
        """The tasks before the Trainer succeed; the Trainer's CustomJob is refused its GPUs (code 8) and the task
        fails as TFX's Vertex Trainer makes it fail; the job's end is published as the sink publishes it."""
        parent = f"projects/{self.cloud.project}/locations/{self.cloud.region}"
        self.step("PIPELINE_STATE_RUNNING", task=False)
        trainer = next(n for n in task_order(self.job) if "Trainer" in n)
        for name in task_order(self.job)[:task_order(self.job).index(trainer)]:
            self.step("PIPELINE_STATE_RUNNING", {name: "SUCCEEDED"})
        self.step("PIPELINE_STATE_RUNNING", {trainer: "RUNNING"})
        refused = self.cloud.jobs.add_custom_job(parent, f"trainer-{self.job_id}", {labels.RUN_ID_LABEL: self.run_id},
                                                 "JOB_STATE_FAILED", message, grpc.StatusCode.RESOURCE_EXHAUSTED)
        # tfx/extensions/google_cloud_ai_platform/runner.py (_launch_cloud_training): RuntimeError with the job it polled.
        detailed = f"Job '{refused}' did not succeed.  Detailed response {self.cloud.jobs.custom_job(refused)}."
        launcher = self.cloud.jobs.add_custom_job(
            parent, f"launcher-{self.job_id}", {}, "JOB_STATE_FAILED",
            "The replica workerpool0-0 exited with a non-zero status of 1. Termination reason: Error. \n"
            "Traceback (most recent call last):\n  File \"/usr/local/lib/python3.10/site-packages/tfx/extensions/"
            "google_cloud_ai_platform/runner.py\", line 120, in _launch_cloud_training\n"
            f"    raise RuntimeError(err_msg)\nRuntimeError: {detailed}\n")
        self.cloud.pipelines.advance(
            self.job_id, "PIPELINE_STATE_RUNNING", {trainer: "FAILED"},
            task_errors={trainer: "The replica workerpool0-0 exited with a non-zero status of 1. Termination reason: Error."},
            main_jobs={trainer: launcher})
        self._event(task=True)
        self.step("PIPELINE_STATE_FAILED", task=False)
        return refused


def _trainer(job: dict) -> dict:
    task = next(t for t in job["pipelineSpec"]["root"]["dag"]["tasks"] if "Trainer" in t)
    return json.loads(_params(job, task)["custom_config"])


def test_a_trainer_refused_its_gpus_moves_on_to_the_next_shape_over_grpc(cloud, api, experiment):  # noqa: F811
    run, job_id = submitted(cloud, api, experiment, "cloud-rehearsal-gpu-fallback",
                            gpu_config={**FIRST, "fallbacks": [FALLBACK]})
    first = compiled(cloud, job_id)
    pool = _trainer(first)["ai_platform_training_args"]["job_spec"]["worker_pool_specs"][0]
    assert pool["machine_spec"] == {"machine_type": "g2-standard-8", "accelerator_type": "NVIDIA_L4",
                                    "accelerator_count": 1}

    RefusedPlayer(cloud, job_id, run["id"]).refuse_trainer(QUOTA["text"])

    # pipeline-events failed the attempt at Train for quota; run-commands started attempt 2; the submitter made its job.
    second_id = labels.job_id_for(run["id"], 2)
    cloud.wait(lambda: any(n.endswith("/" + second_id) for n in cloud.pipelines.jobs), 420,
               f"attempt 2's PipelineJob {second_id}")
    doc = cloud.wait(lambda: (d := cloud.repo.get_run(run["id"]))["status"] == runs.RUNNING and d, 60,
                     "attempt 2 to be running")
    assert doc["attempt"] == 2 and doc["last_retry"]["by"] == gpu_fallback.AUTOMATIC_RETRIER
    ended = next(a for a in doc["attempts"] if a["attempt"] == 1)
    assert ended["ended_because"] == gpu_fallback.QUOTA and ended["retried_by"] == gpu_fallback.AUTOMATIC_RETRIER
    assert ended["shape"] == gpu_fallback.shape_of(run["gpu_config"])
    assert "quota metrics exceed quota limits" in ended["error_message"]
    assert {k: doc["gpu_config"][k] for k in FALLBACK} == FALLBACK

    second = compiled(cloud, second_id)
    trainer = _trainer(second)
    assert trainer["ai_platform_vertex_region"] == "us-central1"
    spec = trainer["ai_platform_training_args"]["job_spec"]
    assert spec["worker_pool_specs"][0]["machine_spec"] == {
        "machine_type": "n1-standard-16", "accelerator_type": "NVIDIA_TESLA_T4", "accelerator_count": 2}
    assert "SPOT" not in json.dumps(spec.get("scheduling") or {})  # the fallback is on-demand
    # One next attempt, however many times the failure was seen (the task's event and the job's).
    assert [n for n in cloud.pipelines.jobs if n.endswith(f"/{labels.job_id_for(run['id'], 3)}")] == []
    handled = [e["outcome"] for e in cloud.log_entries('consumer_service["run_commands"]')
               if e.get("run_id") == run["id"] and e.get("message") == "message handled"]
    assert handled.count("started") == 1 and set(handled) <= {"started", "ignored"}, handled
    _assert_iam_table_names_every_rpc_served(cloud)  # pipeline-events' GetCustomJob has its grant
