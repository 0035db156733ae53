"""API → Firestore → Pub/Sub → submitter → pipeline events → live stage progress, through both
official emulators and real functions-framework processes."""
from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.adapters.artifact_store import ArtifactStore
from tests.builders import post_catalog
from tests.unit.scenario import job_timeline, write_results

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def catalog(local_stack):
    return {"experiment": post_catalog(local_stack.post, "winning quick test",
                                       {"batch_size": 1024, "learning_rate": 0.05}, {"recall_at_100": 0.61})}


def create(local_stack, catalog, name, **extra):
    response = local_stack.post("/api/training-runs", {"name": name, "base_experiment_id": catalog["experiment"],
                                                       "training_params": {"epochs": 3}, **extra})
    assert response.status_code == 201, response.text
    return response.json()["training_run"]


def submitted(local_stack, catalog, name):
    run = create(local_stack, catalog, name)
    return local_stack.wait_for(run["id"], lambda r: r["status"] == "running", what="submission")


def sink_entry(job_id: str, log: str = "pipeline_job_events") -> dict:
    return {"logName": f"projects/trainyard-local/logs/aiplatform.googleapis.com%2F{log}",
            "resource": {"type": "aiplatform.googleapis.com/PipelineJob",
                         "labels": {"pipeline_job_id": job_id, "location": "local"}},
            "jsonPayload": {"state": "PIPELINE_STATE_RUNNING"}, "severity": "INFO"}


def deliver(local_stack, snapshots, job_id):
    """Each event is handled by pipeline_events while the pipeline service reports its snapshot."""
    for snapshot in snapshots:
        local_stack.pipeline.set_job(snapshot)
        message_id = local_stack.publish("pipeline-events", sink_entry(job_id, random.choice(
            ["pipeline_job_events", "pipeline_job_task_events"])))
        local_stack.wait_handled("pipeline_events", message_id)


def comparable(run: dict) -> dict:
    stages = [{k: s.get(k) for k in ("name", "status", "duration_seconds")} for s in run["stage_details"][1:]]
    return {"status": run["status"], "stages": stages, "metrics": run["metrics"], "progress": run["progress_percent"],
            "current_stage": run["current_stage"], "blessed": run["is_blessed"], "error": run["error_stage"],
            "registry": run.get("vertex_model_resource_name"), "epoch": run.get("current_epoch")}


def test_a_run_is_created_submitted_and_followed_to_completion(local_stack, catalog):
    started = time.perf_counter()
    run = create(local_stack, catalog, "spine-happy-path")
    assert run["status"] == "pending" and run["training_params"]["batch_size"] == 1024
    run = local_stack.wait_for(run["id"], lambda r: r["status"] == "running", what="submission")
    job_id = f"{run['id']}-a1"
    request = local_stack.pipeline.jobs[job_id]["request"]
    assert request["labels"]["trainyard-run-id"] == run["id"]
    spec = json.loads(open(request["run_spec_uri"]).read())
    assert spec["run_id"] == run["id"] and spec["training_params"]["epochs"] == 3
    assert json.loads(open(request["pipeline_job_uri"]).read())["displayName"] == "spine-happy-path"
    assert run["stage_details"][0]["status"] == "completed" and run["gcs_artifacts_path"]

    write_results(ArtifactStore(), run["gcs_artifacts_path"], blessed=True)
    timeline = job_timeline(job_id)
    seen_stages = []
    for snapshot in timeline:
        deliver(local_stack, [snapshot], job_id)
        current = local_stack.run(run["id"])
        if current["current_stage"] and current["current_stage"] not in seen_stages:
            seen_stages.append(current["current_stage"])
    final = local_stack.wait_for(run["id"], lambda r: r["status"] == "completed", what="completion")
    assert seen_stages == ["Examples", "Stats", "Schema", "Transform", "Train", "Evaluate", "Push"]
    assert final["recall_at_100"] == pytest.approx(0.47) and final["vertex_model_version"] == "1"
    assert final["progress_percent"] == 100
    print(f"happy path through the stack: {time.perf_counter() - started:.1f}s")


def test_shuffled_and_twice_delivered_events_end_in_the_same_document(local_stack, catalog):
    in_order, shuffled = (submitted(local_stack, catalog, f"spine-order-{i}") for i in range(2))
    store = ArtifactStore()
    for run in (in_order, shuffled):
        write_results(store, run["gcs_artifacts_path"], blessed=True)
    first = job_timeline(f"{in_order['id']}-a1")
    deliver(local_stack, first, f"{in_order['id']}-a1")
    second = job_timeline(f"{shuffled['id']}-a1")
    events = second * 2
    random.Random(7).shuffle(events)
    deliver(local_stack, events + [second[-1]], f"{shuffled['id']}-a1")
    a = local_stack.wait_for(in_order["id"], lambda r: r["status"] == "completed", what="in-order completion")
    b = local_stack.wait_for(shuffled["id"], lambda r: r["status"] == "completed", what="shuffled completion")
    assert comparable(a) == comparable(b)


def test_duplicate_run_submit_submits_one_job(local_stack, catalog):
    run = create(local_stack, catalog, "spine-duplicates")
    for _ in range(3):  # the same message again, racing the first delivery
        local_stack.publish("run-submit", {"run_id": run["id"], "attempt": 1})
    local_stack.wait_for(run["id"], lambda r: r["status"] == "running", what="submission")
    deadline = time.time() + 30
    while time.time() < deadline:
        ignored = [line for line in local_stack.log_lines("submitter")
                   if run["id"] in line and ("run-submit ignored" in line or "being submitted" in line)]
        if len(ignored) >= 3:
            break
        time.sleep(0.2)
    assert len(ignored) >= 3, "the duplicates were not all delivered"
    assert local_stack.pipeline.create_calls[f"{run['id']}-a1"] == 1


def test_concurrent_creates_get_distinct_run_numbers(local_stack, catalog):
    with ThreadPoolExecutor(max_workers=6) as pool:
        runs = list(pool.map(lambda _: create(local_stack, catalog, f"spine-concurrent-{_ % 3}"), range(12)))
    # One counter per model (the stack's earlier runs drew from it too): 12 distinct, consecutive numbers
    # whatever the runs' names.
    numbers = sorted(r["run_number"] for r in runs)
    assert numbers == list(range(numbers[0], numbers[0] + 12))


def test_epochs_stream_into_live_fields_and_history(local_stack, catalog):
    run = submitted(local_stack, catalog, "spine-epochs")
    job_id = f"{run['id']}-a1"
    deliver(local_stack, job_timeline(job_id)[:10], job_id)  # Train running
    for epoch in range(1, 4):
        local_stack.publish("training-progress", {"run_id": run["id"], "attempt": 1, "epoch": epoch, "total_epochs": 3,
                                                  "loss": 1.0 / epoch, "val_loss": 1.1 / epoch, "learning_rate": 0.05,
                                                  "metrics": {"recall_at_100": 0.1 * epoch}})
    live = local_stack.wait_for(run["id"], lambda r: r.get("current_epoch") == 3, what="epoch 3")
    assert live["live_metrics"]["recall_at_100"] == pytest.approx(0.3)
    assert live["current_stage"] == "Train" and live["status"] == "running"
    from shared.adapters.repository import FirestoreRepository

    history = FirestoreRepository(local_stack.stack.config.project).list_epochs(run["id"], 1)
    assert [e["epoch"] for e in history] == [1, 2, 3]


def test_a_failing_task_fails_the_run_at_its_stage(local_stack, catalog):
    run = submitted(local_stack, catalog, "spine-failure")
    job_id = f"{run['id']}-a1"
    deliver(local_stack, job_timeline(job_id, fail_at="Trainer"), job_id)
    final = local_stack.wait_for(run["id"], lambda r: r["status"] == "failed", what="failure")
    assert final["error_stage"] == "Train" and "out of memory" in final["error_message"]


def test_a_pipeline_that_does_not_compile_fails_at_compile(local_stack, catalog):
    run = create(local_stack, catalog, "uncompilable-run")
    final = local_stack.wait_for(run["id"], lambda r: r["status"] == "failed", what="compile failure")
    assert final["error_stage"] == "Compile" and "column" in final["error_message"]


def test_malformed_events_are_acknowledged_not_looped(local_stack, catalog):
    from google.cloud import pubsub_v1

    client = local_stack.publisher()
    topic = client.topic_path(local_stack.stack.config.project, "pipeline-events")
    client.publish(topic, b"this is not json").result()
    local_stack.publish("pipeline-events", {"logName": "projects/p/logs/other", "resource": {"type": "gce_instance"}})
    deadline = time.time() + 20
    while time.time() < deadline:
        acked = [l for l in local_stack.log_lines("pipeline_events") if "acknowledged" in l]
        if len(acked) >= 2:
            break
        time.sleep(0.2)
    assert len(acked) >= 2
    time.sleep(2)  # a looping message would be redelivered and logged again
    assert len([l for l in local_stack.log_lines("pipeline_events") if "acknowledged" in l]) == len(acked)
    assert pubsub_v1  # the client library is what the functions use too


def test_unauthenticated_requests_are_refused(local_stack):
    import requests

    assert requests.get(local_stack.api + "/api/training-runs", timeout=10).status_code == 401
    assert requests.get(local_stack.api + "/health", timeout=10).status_code == 200
