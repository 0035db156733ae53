"""Issue 27's loose ends through the local stack (both emulators, the real functions): a blessed run with a
batch_prediction_config writes top-K for every user of its data by itself, through the pipeline-events and
run-commands consumers and the local batch code over a real SavedModel; a not-blessed one writes nothing and
says why; a run says what started it (the CLI or the API)."""
from __future__ import annotations

import json

import pytest

from shared.adapters.artifact_store import ArtifactStore
from shared.contract import results
from shared.domain import triggers
from tests.integration.test_control_plane_flow import catalog, create, deliver  # noqa: F401 (fixture)
from tests.unit.scenario import job_timeline, write_results

pytestmark = pytest.mark.integration
USERS = [f"c{i}" for i in range(12)]


def save_per_user_model(path: str) -> None:
    """A SavedModel with the retrieval signature's shape: each user's own ranked ids, so rows can be checked."""
    tf = pytest.importorskip("tensorflow")

    class PerUser(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="customer_id")])
        def serve(self, customer_id):
            ranks = tf.range(10)
            ids = tf.strings.join([tf.repeat(customer_id[:, None], 10, axis=1), "-item-",
                                   tf.strings.as_string(tf.tile(ranks[None, :], [tf.shape(customer_id)[0], 1]))])
            return {"ids": ids, "scores": -tf.cast(tf.tile(ranks[None, :], [tf.shape(customer_id)[0], 1]), tf.float32)}

    model = PerUser()
    tf.saved_model.save(model, path, signatures={"serving_default": model.serve})


def trained(local_stack, run: dict, blessed: bool) -> str:
    """The run's Trainer and Pusher outputs as the pipeline writes them, with its user id vocabulary."""
    artifacts = run["gcs_artifacts_path"]
    store = ArtifactStore()
    write_results(store, artifacts, blessed=blessed)
    vocabularies = results.join(artifacts, results.VOCABULARIES_DIR)
    store.write_text(results.join(artifacts, results.ARTIFACTS_FILE), results.ArtifactLocations(
        saved_model=results.join(artifacts, results.SAVED_MODEL_DIR), vocabularies=vocabularies).model_dump_json())
    store.write_text(f"{vocabularies}/customer_id", "\n".join(USERS) + "\n")
    return artifacts


def test_a_blessed_run_writes_top_k_for_every_user_of_its_data_by_itself(local_stack, catalog, tmp_path):  # noqa: F811
    out = tmp_path / "batch"
    run = create(local_stack, catalog, "after-blessed",
                 batch_prediction_config={"k": 3, "gcs_output": str(out)})
    run = local_stack.wait_for(run["id"], lambda r: r["status"] == "running", what="submission")
    artifacts = trained(local_stack, run, blessed=True)
    save_per_user_model(results.join(artifacts, results.SAVED_MODEL_DIR))
    deliver(local_stack, job_timeline(f"{run['id']}-a1"), f"{run['id']}-a1")
    done = local_stack.wait_for(run["id"], lambda r: (r.get("batch_prediction") or {}).get("status")
                                in ("succeeded", "failed"), timeout_s=180, what="the batch predictions")
    batch = done["batch_prediction"]
    assert batch["status"] == "succeeded", batch
    assert batch["automatic"] is True and batch["requested_by"] == "trainyard (after training)"
    assert batch["users"] == len(USERS) and batch["outputs"]["gcs"]["rows"] == len(USERS)
    written = [json.loads(line) for line in open(f"{batch['outputs']['gcs']['location']}/predictions.jsonl")]
    assert [w["instance"]["customer_id"] for w in written] == USERS
    assert written[4]["prediction"]["ids"] == ["c4-item-0", "c4-item-1", "c4-item-2"]  # its own top 3


def test_a_not_blessed_run_writes_nothing_and_says_why(local_stack, catalog, tmp_path):  # noqa: F811
    run = create(local_stack, catalog, "after-not-blessed",
                 batch_prediction_config={"k": 3, "gcs_output": str(tmp_path / "never")})
    run = local_stack.wait_for(run["id"], lambda r: r["status"] == "running", what="submission")
    trained(local_stack, run, blessed=False)
    deliver(local_stack, job_timeline(f"{run['id']}-a1"), f"{run['id']}-a1")
    done = local_stack.wait_for(run["id"], lambda r: r.get("batch_prediction"), what="the reason on the run")
    assert done["status"] == "not_blessed" and done["batch_prediction"]["status"] == "skipped"
    assert "not blessed" in done["batch_prediction"]["error"] and not (tmp_path / "never").exists()


def test_a_run_says_whether_the_cli_or_the_api_made_it(local_stack, catalog):  # noqa: F811
    body = {"name": "made-by-cli", "base_experiment_id": catalog["experiment"], "training_params": {"epochs": 3}}
    by_cli = local_stack.session.post(local_stack.api + "/api/training-runs", json=body, timeout=30,
                                      headers={"User-Agent": f"{triggers.CLI_USER_AGENT}/test"}).json()["training_run"]
    assert by_cli["trigger"]["kind"] == "manual" and by_cli["trigger"]["via"] == "cli"
    by_api = create(local_stack, catalog, "made-by-api")
    assert by_api["trigger"]["via"] == "api" and by_api["trigger"]["by"] == by_cli["trigger"]["by"]
