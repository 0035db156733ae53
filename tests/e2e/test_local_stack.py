"""End to end through HTTP, both emulators, the submitter, the local pipeline service (LocalDagRunner)
and pipeline_events: what a user of `make up` sees, stage by stage, in Firestore."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from shared.domain import runs as run_domain

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PARAMS = {"epochs": 4, "batch_size": 256, "learning_rate": 0.2, "lr_schedule": {"type": "constant"},
          "checkpoint_every_epochs": 2}


class Recorder:
    """A Firestore listener on one run: every version of the document, as a dashboard sees it."""

    def __init__(self, db, run_id):
        self.versions: list[dict] = []
        self.lock = threading.Lock()
        self.watch = db.collection("training_runs").document(run_id).on_snapshot(self._on)

    def _on(self, docs, changes, read_time):
        with self.lock:
            self.versions += [d.to_dict() for d in docs if d.exists]


@pytest.fixture(scope="module")
def stack(local_stack):
    from google.cloud import firestore

    client, config, root = local_stack["client"], local_stack["config"], local_stack["root"]
    db = firestore.Client(project=config.project)

    def create(name, **extra):
        body = {"name": name, "base_experiment_id": local_stack["experiment"], "training_params": PARAMS,
                "gpu_config": {"gpu_type": "NVIDIA_TESLA_T4", "gpu_count": 1}, **extra}
        run = client.post("/api/training-runs", body)["training_run"]
        return run, Recorder(db, run["id"])

    missing = client.post("/api/datasets", {**_dataset(client, local_stack["ids"]["dataset"]),
                                            "name": "missing-file",
                                            "source": {"kind": "files", "uri": str(root / "nope.csv"), "format": "csv"}})
    # Start these runs now: the local pipeline service runs them one at a time, in creation order
    # (TRAINYARD_LOCAL_MAX_RUNNING_JOBS=1), while the tests read them.
    started = {
        # Deploys itself after training (deployment_config), as the wizard's "deploy to a new endpoint" asks.
        "completed": create("e2e-blessed", evaluator_config={
            "enabled": True, "blessing_threshold": {"metric": "recall_at_100", "min_value": 0.01}},
            deployment_config={"action": "deploy_new", "endpoint_name": "e2e-recs"}),
        "not_blessed": create("e2e-unreachable", evaluator_config={
            "enabled": True, "blessing_threshold": {"metric": "recall_at_100", "min_value": 0.999}}),
        "missing_data": create("e2e-missing-data", dataset_id=missing["item"]["id"]),
    }
    try:
        yield {"client": client, "config": config, "runs": started, "stack": local_stack["stack"], "create": create}
    finally:
        for _, recorder in started.values():
            recorder.watch.unsubscribe()


def _dataset(client, dataset_id):
    item = client.get(f"/api/datasets/{dataset_id}")["item"]
    return {k: v for k, v in item.items() if k not in ("id", "created_at", "created_by")}


def wait(stack, key, predicate, timeout_s=900):
    run, _ = stack["runs"][key]
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        current = stack["client"].get(f"/api/training-runs/{run['id']}")["training_run"]
        if predicate(current):
            return current
        time.sleep(0.5)
    raise AssertionError(f"{key}: timed out; run is {current}")


def test_a_run_passes_every_stage_in_order_and_completes(stack):
    final = wait(stack, "completed", lambda r: run_domain.is_terminal(r["status"]))
    assert final["status"] == "completed", (final.get("error_stage"), final.get("error_message"))
    assert final["is_blessed"] is True and final["recall_at_100"] > 0
    assert final["vertex_model_version"] and final["vertex_model_resource_name"]
    assert [s["status"] for s in final["stage_details"]] == ["completed"] * 8
    _, recorder = stack["runs"]["completed"]
    order: list[str] = []
    for version in recorder.versions:  # the order stages left "pending", as Firestore showed it
        for stage in version["stage_details"]:
            if stage["status"] != "pending" and stage["name"] not in order:
                order.append(stage["name"])
    assert order == list(run_domain.STAGES)
    assert any(v.get("current_stage") == "Train" and v.get("current_epoch") for v in recorder.versions)
    from shared.adapters.repository import FirestoreRepository

    history = FirestoreRepository(stack["config"].project).list_epochs(final["id"], 1)
    assert [e["epoch"] for e in history] == list(range(1, len(history) + 1)) and len(history) >= 2
    assert all(e.get("loss") is not None and e.get("learning_rate") is not None for e in history)
    assert all(e.get("grad_norm", 0) > 0 for e in history)  # the Training tab's gradient-norm chart
    # TensorBoard's event files, where `trainyard runs tensorboard` serves them from (a local run: its artifacts).
    board = os.path.join(final["gcs_artifacts_path"], "tensorboard")
    assert {run for run in ("train", "validation") if any(
        name.startswith("events.out.tfevents.") for name in os.listdir(os.path.join(board, run)))} == {"train", "validation"}
    job = os.path.join(final["gcs_artifacts_path"], "pipeline_job.json")
    assert os.path.exists(job), "the compiled job JSON is kept with the run's artifacts"
    # Its estimated cost, from the real stage durations (what it would cost on Vertex in TRAINYARD_REGION).
    estimate = final["estimated_cost"]
    priced = {s["stage"]: s["seconds"] for s in estimate["stages"]}
    assert priced["Train"] == next(s["duration_seconds"] for s in final["stage_details"] if s["name"] == "Train")
    assert estimate["total"] > estimate["pipeline_run_fee"] > 0 and estimate["partial"] is False
    with open(job) as handle:  # the compiled job carries the billing labels
        labels = json.load(handle)["labels"]
    assert labels["trainyard-run-id"] == final["id"] and labels["trainyard-schedule-id"] == "none"


def test_an_unreachable_threshold_ends_not_blessed_and_unregistered(stack):
    final = wait(stack, "not_blessed", lambda r: run_domain.is_terminal(r["status"]))
    assert final["status"] == "not_blessed", (final.get("error_stage"), final.get("error_message"))
    assert final["is_blessed"] is False and not final.get("vertex_model_resource_name")
    assert final["evaluation_results"]["threshold_value"] == 0.999
    assert final["stage_details"][-1]["status"] in ("completed", "skipped")
    from shared.contract import results

    artifacts = final["gcs_artifacts_path"]
    assert os.path.exists(os.path.join(artifacts, results.SAVED_MODEL_DIR, "saved_model.pb"))  # kept
    assert not os.path.exists(os.path.join(artifacts, results.REGISTRY_FILE))  # not registered


def test_a_missing_data_file_fails_at_examples_with_a_readable_error(stack):
    final = wait(stack, "missing_data", lambda r: run_domain.is_terminal(r["status"]))
    assert final["status"] == "failed" and final["error_stage"] == "Examples"
    assert "nope.csv" in final["error_message"] or "No such file" in final["error_message"] \
        or "not found" in final["error_message"].lower(), final["error_message"]


def test_cancelling_a_running_run_stops_its_process(stack):
    # Created now, so it is not finished before this test looks (the service runs one job at a time, in
    # order); it could not finish on its own within the test anyway: 200 epochs, no early stopping.
    stack["runs"]["cancel"] = stack["create"]("e2e-cancel", training_params={
        **PARAMS, "epochs": 200, "early_stopping": {"enabled": False}})
    run = wait(stack, "cancel", lambda r: r.get("current_stage") in ("Transform", "Train") or
               run_domain.is_terminal(r["status"]))
    assert run["status"] == "running"
    job_id = f"{run['id']}-a1"
    from shared.adapters.pipelines import LocalPipelineServiceBackend

    backend = LocalPipelineServiceBackend(f"http://127.0.0.1:{stack['config'].port('pipeline_service')}")
    try:
        stack["client"].post(f"/api/training-runs/{run['id']}/cancel")
    except Exception:  # the cancel action lands with "Run actions"; the backend contract is what stops it
        backend.cancel_job(job_id)
    final = wait(stack, "cancel", lambda r: run_domain.is_terminal(r["status"]), timeout_s=120)
    assert final["status"] == "cancelled"
    assert final.get("cancelled_at_stage") in ("Transform", "Train", "Evaluate")
    record = stack["config"].local_dir / "pipeline-service" / "jobs" / job_id / "job.json"
    import json

    pid = json.loads(record.read_text())["pid"]
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the pipeline's process group is still running after cancel")


def test_the_deployed_model_answers_like_the_exported_model(stack):
    """The run deploys itself after training (deployment_config deploy_new: pipeline_events requests it,
    the run-commands consumer loads the registered SavedModel into the local prediction server), then
    compare the endpoint's top-K with the SavedModel called directly."""
    import requests

    final = wait(stack, "completed", lambda r: run_domain.is_terminal(r["status"]))
    assert final["status"] == "completed"
    deployed = wait(stack, "completed", lambda r: r.get("deployment_status") in ("deployed", "failed"), timeout_s=300)
    assert deployed["deployment_status"] == "deployed", deployed.get("deployment")
    assert deployed["is_deployed"] and deployed["endpoint_resource_name"] and deployed["deployed_at"]
    assert deployed["deployment"]["automatic"] is True and deployed["deployment"]["endpoint_name"] == "e2e-recs"
    again = stack["client"].post(f"/api/training-runs/{final['id']}/deploy", {"traffic_split": 100})
    assert again["changed"] is False  # deploying by hand now repeats the automatic deployment, not a second one
    # As a JSON client sends it: the int64 timestamp as a string too (the endpoint converts it).
    instance = {"customer_id": "C00007", "segment": "retail", "city": "bialystok", "timestamp": "1704092581"}
    served = requests.post(deployed["deployment"]["predict_url"], json={"instances": [instance]},
                           timeout=120).json()["predictions"][0]

    import scann  # noqa: F401 - registers the ScaNN ops the exported index uses
    import tensorflow as tf

    model = tf.saved_model.load(final["artifacts"]["saved_model"])
    signature = model.signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    inputs = {name: tf.constant([int(instance[name]) if spec.dtype.is_integer else instance[name]], dtype=spec.dtype)
              for name, spec in specs.items()}
    direct = signature(**inputs)
    ids_key = next(k for k in direct if "id" in k)
    direct_ids = [x.decode() for x in direct[ids_key].numpy()[0].tolist()]
    assert served["ids"][:10] == direct_ids[:10]


def test_batch_predictions_match_the_endpoint_and_the_model_card_tells_the_run(stack, tmp_path):
    """Issue 27's batch recommendations and model card on a real run: the run-commands consumer runs the
    serving container's code over the users' instances; each user's written top-k is the first k of what
    the deployed endpoint answers for the same instance. The registered version's card carries the run's
    data, curves, metrics against the baselines, the gate and the lineage."""
    import csv

    import requests

    deployed = wait(stack, "completed", lambda r: r.get("deployment_status") in ("deployed", "failed"), timeout_s=900)
    assert deployed["deployment_status"] == "deployed", deployed.get("deployment")
    client, run_id = stack["client"], deployed["id"]
    dataset = client.get(f"/api/datasets/{deployed['dataset_id']}")["item"]
    users: dict[str, dict] = {}
    with open(dataset["source"]["uri"]) as rows:
        for row in csv.DictReader(rows):
            users.setdefault(row["customer_id"], {k: row[k] for k in ("customer_id", "segment", "city", "timestamp")})
            if len(users) == 12:
                break
    instances = list(users.values())
    asked = client.post(f"/api/training-runs/{run_id}/batch-predictions",
                        {"users": instances, "k": 5, "gcs_output": str(tmp_path / "batch")})
    assert asked["changed"] is True
    deadline, batch = time.time() + 300, {}
    while time.time() < deadline and batch.get("status") not in ("succeeded", "failed"):
        time.sleep(0.5)
        batch = client.get(f"/api/training-runs/{run_id}")["training_run"].get("batch_prediction") or {}
    assert batch.get("status") == "succeeded", batch
    output = batch["outputs"]["gcs"]
    assert output["rows"] == len(instances) and not output.get("failed_rows")
    written = [json.loads(line) for line in open(os.path.join(output["location"], "predictions.jsonl"))]
    answers = requests.post(deployed["deployment"]["predict_url"], json={"instances": instances},
                            timeout=120).json()["predictions"]
    by_user = {w["instance"]["customer_id"]: w["prediction"] for w in written}
    for instance, answer in zip(instances, answers):
        assert by_user[instance["customer_id"]]["ids"] == answer["ids"][:5]
    # A repeat of the same request is the same batch, not a second one.
    assert client.post(f"/api/training-runs/{run_id}/batch-predictions",
                       {"users": instances, "k": 5, "gcs_output": str(tmp_path / "batch")})["changed"] is False

    card = client.get(f"/api/training-runs/{run_id}/model-card")["card"]
    assert card["lineage"]["run_id"] == run_id and card["model_version"]
    assert card["data"]["rows_per_split"].get("train", 0) > 0 and card["data"]["rows_per_split"].get("test", 0) > 0
    assert [e["epoch"] for e in card["training"]["epochs"]] and card["training"]["epochs"][0]["loss"] is not None
    assert card["metrics"]["recall_at_100"] == pytest.approx(deployed["metrics"]["recall_at_100"])
    assert card["baselines"]["most_popular"]["recall_at_100"] == pytest.approx(
        deployed["evaluation_results"]["baseline_metrics"]["recall_at_100"])
    assert card["gate"]["blessed"] is True and card["gate"]["decision"].startswith("blessed")


def test_a_run_warm_started_from_the_blessed_run_loads_its_weights_and_says_so(stack):
    """Issue 27's warm start through the whole stack: a second run names the blessed run as its source
    (`warm_restart.source: run`); the Trainer loads its SavedModel's weights by name and carries every
    embedding row by id (same data, so the vocabularies agree), and the run records it."""
    final = wait(stack, "completed", lambda r: run_domain.is_terminal(r["status"]))
    assert final["status"] == "completed"
    run, recorder = stack["create"]("e2e-warm", training_params={
        **PARAMS, "epochs": 1, "warm_restart": {"enabled": True, "source": "run", "run_id": final["id"]}})
    try:
        assert run["warm_source"]["source"] == "run" and run["warm_source"]["source_id"] == final["id"]
        deadline, current = time.time() + 900, run
        while time.time() < deadline and not run_domain.is_terminal(current["status"]):
            time.sleep(0.5)
            current = stack["client"].get(f"/api/training-runs/{run['id']}")["training_run"]
        assert current["status"] in ("completed", "not_blessed"), current.get("error_message")
        warm = current["warm_start"]
        assert (warm["status"], warm["source"], warm["source_id"]) == ("loaded", "run", final["id"]), warm
        assert warm["tables"] > 0 and warm["rows_kept"] > 0 and warm["rows_new"] == warm["rows_dropped"] == 0
        assert warm["variables_fresh"] == 0 and warm["variables_loaded"] > 0
    finally:
        recorder.watch.unsubscribe()
