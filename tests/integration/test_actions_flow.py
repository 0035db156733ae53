"""Run actions end to end through the local stack: API → Firestore → run-commands (Pub/Sub push) →
the pipeline service / the real local prediction server / the local registry, and back."""
from __future__ import annotations

import pytest
import requests

from shared.adapters.artifact_store import ArtifactStore
from tests.integration.test_control_plane_flow import catalog, create, deliver, submitted  # noqa: F401 (fixture)
from tests.integration.test_local_endpoint import build_retrieval_saved_model
from tests.unit.scenario import job_timeline, write_results

pytestmark = pytest.mark.integration


def train_running(local_stack, job_id):
    timeline = job_timeline(job_id)
    trainer_running = next(i for i, s in enumerate(timeline)
                           if any(t.task_name == "Trainer" and t.state == "RUNNING" for t in s.tasks))
    deliver(local_stack, timeline[:trainer_running + 1], job_id)


def test_cancel_a_running_run_stops_its_job_and_records_where(local_stack, catalog):  # noqa: F811
    run = submitted(local_stack, catalog, "actions-cancel")
    job_id = f"{run['id']}-a1"
    train_running(local_stack, job_id)
    local_stack.publish("training-progress", {"run_id": run["id"], "attempt": 1, "epoch": 2, "total_epochs": 3,
                                              "loss": 0.5, "learning_rate": 0.05})
    local_stack.wait_for(run["id"], lambda r: r.get("current_epoch") == 2, what="epoch 2")

    response = local_stack.post(f"/api/training-runs/{run['id']}/cancel", {})
    assert response.status_code == 202 and response.json()["training_run"]["status"] == "cancelling"
    final = local_stack.wait_for(run["id"], lambda r: r["status"] == "cancelled", what="cancelled")
    assert final["cancelled_at_stage"] == "Train" and final["cancelled_at_epoch"] == 2
    assert final["cancelled_by"] == "developer@localhost"
    assert local_stack.pipeline.cancel_calls[job_id] == 1
    job = local_stack.pipeline.jobs[job_id]
    assert job["state"] == "PIPELINE_STATE_CANCELLED"
    assert not [t for t in job["tasks"] if t["state"] in ("RUNNING", "PENDING")]  # nothing keeps running
    again = local_stack.post(f"/api/training-runs/{run['id']}/cancel", {})
    assert again.status_code == 200 and again.json()["changed"] is False
    assert local_stack.post(f"/api/training-runs/{run['id']}/deploy", {}).status_code == 409


def test_retry_a_failed_run_submits_the_next_attempt(local_stack, catalog):  # noqa: F811
    run = submitted(local_stack, catalog, "actions-retry")
    deliver(local_stack, job_timeline(f"{run['id']}-a1", fail_at="Trainer"), f"{run['id']}-a1")
    local_stack.wait_for(run["id"], lambda r: r["status"] == "failed", what="failure")

    response = local_stack.post(f"/api/training-runs/{run['id']}/retry",
                                {"attempt": 1, "gpu_config": {"gpu_type": "NVIDIA_TESLA_A100", "gpu_count": 1}})
    assert response.status_code == 202, response.text
    assert local_stack.post(f"/api/training-runs/{run['id']}/retry", {"attempt": 1}).json()["changed"] is False
    second = local_stack.wait_for(run["id"], lambda r: r["attempt"] == 2 and r["status"] == "running",
                                  what="attempt 2 running")
    request = local_stack.pipeline.jobs[f"{run['id']}-a2"]["request"]
    assert request["labels"]["trainyard-attempt"] == "2" and request["enable_caching"] is True
    assert second["gpu_config"]["machine_type"] == "a2-highgpu-1g"
    errors = local_stack.get(f"/api/training-runs/{run['id']}/errors").json()
    assert errors["attempts"][0]["error_stage"] == "Train" and "out of memory" in errors["attempts"][0]["error_message"]
    assert errors["attempts"][1]["status"] == "running"


def test_deploy_a_completed_run_to_the_local_prediction_server(local_stack, catalog):  # noqa: F811
    import numpy as np
    import tensorflow as tf

    run = submitted(local_stack, catalog, "actions-deploy")
    artifacts = run["gcs_artifacts_path"]
    write_results(ArtifactStore(), artifacts, blessed=True)  # the registry entry serves artifacts/model/saved_model
    saved_model = f"{artifacts}/model/saved_model"
    build_retrieval_saved_model(saved_model, seed=5)
    deliver(local_stack, job_timeline(f"{run['id']}-a1"), f"{run['id']}-a1")
    local_stack.wait_for(run["id"], lambda r: r["status"] == "completed", what="completion")

    response = local_stack.post(f"/api/training-runs/{run['id']}/deploy", {})
    assert response.status_code == 202 and response.json()["training_run"]["deployment_status"] == "deploying"
    deployed = local_stack.wait_for(run["id"], lambda r: r.get("deployment_status") in ("deployed", "failed"),
                                    timeout_s=120, what="deployment")
    assert deployed["deployment_status"] == "deployed", deployed.get("deployment")
    assert deployed["endpoint_resource_name"] == f"local/endpoints/{run['id']}" and deployed["deployed_at"]
    predict_url = deployed["deployment"]["predict_url"]
    queries = ["c2", "c11"]
    answer = requests.post(predict_url, json={"instances": [{"customer_id": c} for c in queries]}, timeout=60).json()
    direct = tf.saved_model.load(saved_model).signatures["serving_default"](customer_id=tf.constant(queries))
    for i, prediction in enumerate(answer["predictions"]):
        assert prediction["ids"] == [x.decode() for x in direct["ids"][i].numpy()]
        np.testing.assert_allclose(prediction["scores"], direct["scores"][i].numpy(), rtol=1e-6)
    links = local_stack.get(f"/api/training-runs/{run['id']}/artifacts").json()
    assert links["endpoint"]["predict_url"] == predict_url and links["registry"]["model_version"] == "1"
    assert local_stack.post(f"/api/training-runs/{run['id']}/deploy", {}).json()["changed"] is False


def test_a_run_that_deploys_after_training_is_deployed_once_by_itself(local_stack, catalog):  # noqa: F811
    """deployment_config deploy_new: the pipeline-events consumer requests the deploy when the run completes
    blessed and registered; run-commands deploys it to the real local prediction server. A redelivered
    final event changes nothing and requests nothing."""
    run = create(local_stack, catalog, "actions-auto-deploy",
                 deployment_config={"action": "deploy_new", "endpoint_name": "auto-recs"})
    run = local_stack.wait_for(run["id"], lambda r: r["status"] == "running", what="submission")
    job_id = f"{run['id']}-a1"
    write_results(ArtifactStore(), run["gcs_artifacts_path"], blessed=True)
    build_retrieval_saved_model(f"{run['gcs_artifacts_path']}/model/saved_model", seed=7)
    timeline = job_timeline(job_id)
    deliver(local_stack, timeline, job_id)
    deployed = local_stack.wait_for(run["id"], lambda r: r.get("deployment_status") in ("deployed", "failed"),
                                    timeout_s=120, what="the automatic deployment")
    assert deployed["status"] == "completed" and deployed["deployment_status"] == "deployed", deployed.get("deployment")
    deployment = deployed["deployment"]
    assert deployment["automatic"] is True and deployment["requested_by"] == "trainyard (deployment_config)"
    assert deployment["endpoint_name"] == "auto-recs" and deployment["queued_at"]
    assert deployed["is_deployed"] and deployed["endpoint_resource_name"] == f"local/endpoints/{run['id']}"
    answer = requests.post(deployment["predict_url"], json={"instances": [{"customer_id": "c2"}]}, timeout=60).json()
    assert len(answer["predictions"]) == 1 and answer["predictions"][0]["ids"]

    deliver(local_stack, [timeline[-1], timeline[-1], timeline[3]], job_id)  # redelivered and late events
    again = local_stack.run(run["id"])
    assert again["deployment"]["id"] == deployment["id"] and again["deployment"]["status"] == "deployed"
    assert again["deployment"]["queued_at"] == deployment["queued_at"]
    requested = [line for line in local_stack.log_lines("pipeline_events")
                 if "automatic deploy requested" in line and run["id"] in line]
    assert len(requested) == 1, requested
    # the manual route sees the same deployment: a repeat, not a second one
    assert local_stack.post(f"/api/training-runs/{run['id']}/deploy", {}).json()["changed"] is False


def test_a_not_blessed_run_with_deploy_new_is_not_deployed(local_stack, catalog):  # noqa: F811
    run = create(local_stack, catalog, "actions-auto-not-blessed", deployment_config={"action": "deploy_new"})
    run = local_stack.wait_for(run["id"], lambda r: r["status"] == "running", what="submission")
    write_results(ArtifactStore(), run["gcs_artifacts_path"], blessed=False)
    deliver(local_stack, job_timeline(f"{run['id']}-a1"), f"{run['id']}-a1")
    final = local_stack.wait_for(run["id"], lambda r: r["status"] == "not_blessed", what="not blessed")
    assert not final.get("deployment") and not final.get("deployment_status")


def test_logs_history_and_gpu_availability(local_stack, catalog):  # noqa: F811
    run = submitted(local_stack, catalog, "actions-data")
    job_id = f"{run['id']}-a1"
    local_stack.pipeline.logs[job_id] = (
        ["INFO:absl:Component ExampleGen is running."] + [f"INFO:absl:examples {i}" for i in range(3)]
        + ["INFO:absl:Component Trainer is running."] + [f"INFO:absl:epoch {i}" for i in range(7)])
    page = local_stack.get(f"/api/training-runs/{run['id']}/logs", stage="Train", page_size=5).json()
    assert [e["stage"] for e in page["entries"]] == ["Train"] * 5 and page["next_page_token"]
    rest = local_stack.get(f"/api/training-runs/{run['id']}/logs", stage="Train", page_size=5,
                           page_token=page["next_page_token"]).json()
    assert len(rest["entries"]) == 3 and rest["next_page_token"] is None
    assert rest["entries"][-1]["message"].endswith("epoch 6")
    gpu = local_stack.get("/api/gpu-availability", region="europe-west4", gpu_type="NVIDIA_L4", gpu_count=2).json()
    assert gpu["sufficient"] is True and gpu["quota_applies"] is False
    assert local_stack.get(f"/api/training-runs/{run['id']}/training-history").json()["epochs"] == []


def test_push_anyway_registers_a_not_blessed_model_locally(local_stack, catalog):  # noqa: F811
    run = submitted(local_stack, catalog, "actions-push-anyway")
    artifacts = run["gcs_artifacts_path"]
    write_results(ArtifactStore(), artifacts, blessed=False)
    build_retrieval_saved_model(f"{artifacts}/model/saved_model", seed=6)
    deliver(local_stack, job_timeline(f"{run['id']}-a1"), f"{run['id']}-a1")
    local_stack.wait_for(run["id"], lambda r: r["status"] == "not_blessed", what="not blessed")
    assert local_stack.post(f"/api/training-runs/{run['id']}/deploy", {}).status_code == 409

    assert local_stack.post(f"/api/training-runs/{run['id']}/push-anyway", {}).status_code == 202
    pushed = local_stack.wait_for(run["id"], lambda r: (r.get("push_anyway") or {}).get("status") in ("pushed", "failed"),
                                  timeout_s=120, what="push anyway")
    assert pushed["push_anyway"]["status"] == "pushed", pushed["push_anyway"]
    assert pushed["pushed_anyway"] is True and pushed["vertex_model_version"] == "1"
    assert pushed["vertex_model_resource_name"].endswith("registry/actions-push-anyway")


def test_a_deleted_run_is_hidden_in_firestore_and_restored(local_stack, catalog):  # noqa: F811
    """The soft delete against the Firestore emulator: the `deleted` query, the counts, the restore."""
    run = submitted(local_stack, catalog, "actions-delete")
    deliver(local_stack, job_timeline(f"{run['id']}-a1", fail_at="Trainer"), f"{run['id']}-a1")
    local_stack.wait_for(run["id"], lambda r: r["status"] == "failed", what="failure")
    before = local_stack.get("/api/training-runs").json()["total"]

    deleted = local_stack.session.delete(f"{local_stack.api}/api/training-runs/{run['id']}", timeout=30)
    assert deleted.status_code == 200 and deleted.json()["deleted_by"] == "developer@localhost"
    assert local_stack.get(f"/api/training-runs/{run['id']}").status_code == 404
    listed = local_stack.get("/api/training-runs", page_size=100).json()
    assert run["id"] not in [r["id"] for r in listed["training_runs"]] and listed["total"] == before - 1
    bin_ = local_stack.get("/api/training-runs", deleted="true").json()
    assert run["id"] in [r["id"] for r in bin_["training_runs"]] and bin_["total"] >= 1

    restored = local_stack.post(f"/api/training-runs/{run['id']}/restore", {})
    assert restored.status_code == 200 and restored.json()["changed"] is True
    assert local_stack.run(run["id"])["status"] == "failed"
    assert local_stack.get("/api/training-runs").json()["total"] == before
