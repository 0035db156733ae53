"""A run that failed on Vertex carries the root cause in error_message (issue 16): the failing op and its
message out of the task's google.rpc.Status (or the CustomJob it ran as), never Vertex's or Beam's wrapper."""
from __future__ import annotations

import json

import pytest

from shared.domain import runs
from shared.adapters.pipelines import VertexPipelineBackend
from shared.domain.root_cause import from_text
from tests.events import HERE

PROJECT, REGION = "trainyard-demo", "europe-west4"
ROOT = "InvalidArgumentError: StringToNumberOp could not correctly convert string: V (op StringToNumber)"
TRACEBACK_TAIL = ("The replica workerpool0-0 exited with a non-zero status of 1. Termination reason: Error. \n"
                  "Traceback (most recent call last):\n  [...]\n"
                  "  File \"/usr/local/lib/python3.10/dist-packages/tfx/components/schema_gen/executor.py\", line 9, in Do\n"
                  "    data_check.raise_problems(result)\n"
                  "pipeline_compiler.data_check.DataCheckError: the data does not fit the run's configuration "
                  "(1 problem): column 'brand' (feature 'brand', vocabulary) is not in the data\n")


def _failed_job():
    from google.cloud import aiplatform_v1

    return aiplatform_v1.PipelineJob.from_json((HERE / "pipeline_job_failed.json").read_text())


def test_the_innermost_exception_of_a_chained_traceback_is_the_cause():
    text = json.loads((HERE / "pipeline_job_failed.json").read_text())["jobDetail"]["taskDetails"][3]["error"]["message"]
    assert from_text(text) == ROOT


def test_a_single_traceback_gives_its_exception_and_a_plain_text_stays_as_it_is():
    assert from_text(TRACEBACK_TAIL) == ("DataCheckError: the data does not fit the run's configuration (1 problem): "
                                         "column 'brand' (feature 'brand', vocabulary) is not in the data")
    assert from_text("ValueError\n") == "ValueError"
    wrapper = "The replica workerpool0-0 exited with a non-zero status of 137. Termination reason: OOMKilled."
    assert from_text(wrapper) == wrapper and from_text("") == ""
    truncated = "    return fn(*args)\n  File \"x.py\", line 3, in f\n    g()\nKeyError: 'price'\n"
    assert from_text(truncated) == "KeyError: 'price'"


def test_the_canonical_failed_job_fails_the_run_at_transform_with_the_root_cause():
    job = VertexPipelineBackend._snapshot(_failed_job(), "tr-0123456789abcdef-a1")
    transform = next(t for t in job.tasks if t.task_name == "Transform")
    assert transform.error == ROOT
    run = {"id": "tr-0123456789abcdef", "attempt": 1, "status": runs.RUNNING, "stage_details": runs.initial_stages(),
           "attempts": [{"attempt": 1}]}
    failed = runs.apply_job_snapshot(run, job)
    assert failed["status"] == runs.FAILED and failed["error_stage"] == "Transform"
    assert failed["error_message"] == ROOT
    assert "The DAG failed" not in failed["error_message"] and "replica" not in failed["error_message"]


@pytest.fixture
def vertex():
    from tests.protocol_fakes import vertex as fakes

    fake = fakes.start(REGION)
    yield fake
    fake.server.stop()


def test_a_wrapper_only_task_error_is_replaced_by_its_custom_jobs_traceback_over_grpc(vertex):
    """Through the real GAPIC client against the gRPC fake: the task's error says only that the replica
    exited; the CustomJob it ran as (container_detail.failed_main_jobs) holds the traceback."""
    parent = f"projects/{PROJECT}/locations/{REGION}"
    job = _failed_job()
    job.name = f"{parent}/pipelineJobs/tr-0123456789abcdef-a1"
    job.job_detail = None
    vertex.pipelines.jobs[job.name] = job
    custom = vertex.jobs.add_custom_job(parent, "4711", {}, state="JOB_STATE_FAILED", error=TRACEBACK_TAIL)
    vertex.pipelines.advance("tr-0123456789abcdef-a1", "PIPELINE_STATE_FAILED", {"SchemaGen": "FAILED"},
                             task_errors={"SchemaGen": "The replica workerpool0-0 exited with a non-zero status of 1. "
                                                       "Termination reason: Error."},
                             main_jobs={"SchemaGen": custom})
    backend = VertexPipelineBackend(PROJECT, REGION, emulator_host=vertex.server.address)
    snapshot = backend.get_job("tr-0123456789abcdef-a1")
    schema = next(t for t in snapshot.tasks if t.task_name == "SchemaGen")
    assert schema.error.startswith("DataCheckError: the data does not fit the run's configuration"), schema.error
    assert "column 'brand'" in schema.error


def test_an_unreadable_custom_job_keeps_the_tasks_own_error(vertex):
    parent = f"projects/{PROJECT}/locations/{REGION}"
    job = _failed_job()
    job.name = f"{parent}/pipelineJobs/tr-0123456789abcdef-a2"
    job.job_detail = None
    vertex.pipelines.jobs[job.name] = job
    vertex.pipelines.advance("tr-0123456789abcdef-a2", "PIPELINE_STATE_FAILED", {"Trainer": "FAILED"},
                             task_errors={"Trainer": "The replica workerpool0-0 exited with a non-zero status of 137."},
                             main_jobs={"Trainer": f"{parent}/customJobs/does-not-exist"})
    snapshot = VertexPipelineBackend(PROJECT, REGION, emulator_host=vertex.server.address).get_job("tr-0123456789abcdef-a2")
    assert snapshot.tasks[0].error == "The replica workerpool0-0 exited with a non-zero status of 137."


def test_the_trainers_own_custom_job_error_inside_tfxs_runtime_error_is_the_cause():
    """TFX's Vertex Trainer polls the training CustomJob and raises RuntimeError("Job … did not succeed.
    Detailed response <CustomJob>") (tfx/extensions/google_cloud_ai_platform/runner.py): the printed proto
    quotes the training container's traceback, escaped."""
    from google.cloud import aiplatform_v1
    from google.rpc import status_pb2

    training = aiplatform_v1.CustomJob(name=f"projects/1/locations/{REGION}/customJobs/99", display_name="trainer",
                                       state=aiplatform_v1.JobState.JOB_STATE_FAILED)
    training.error = status_pb2.Status(code=3, message=(
        "The replica workerpool0-0 exited with a non-zero status of 1. Termination reason: Error. \n"
        "Traceback (most recent call last):\n  File \"/pipeline/trainer.py\", line 80, in run_fn\n"
        "    model.fit(train, epochs=epochs)\n"
        "tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating tensor with "
        "shape[8192,131072] and type float on /job:localhost/replica:0/task:0/device:GPU:0\n"))
    detailed = f"Job '{training.name}' did not succeed.  Detailed response {training}."
    task_error = ("The replica workerpool0-0 exited with a non-zero status of 1. Termination reason: Error. \n"
                  "Traceback (most recent call last):\n  [...]\n"
                  "  File \"/usr/local/lib/python3.10/dist-packages/tfx/extensions/google_cloud_ai_platform/runner.py\", "
                  "line 120, in _wait_for_job\n    raise RuntimeError(err_msg)\n"
                  f"RuntimeError: {detailed}\n")
    assert from_text(task_error) == ("ResourceExhaustedError: OOM when allocating tensor with shape[8192,131072] and "
                                     "type float on /job:localhost/replica:0/task:0/device:GPU:0")
