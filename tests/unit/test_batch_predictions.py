"""Batch recommendations (shared/services/actions/batch_predict.py) through the HTTP API and the
run-commands consumer with in-memory fakes; the Vertex adapter through the official GAPIC client
against JobService's gRPC protocol fake; the local adapter with a real SavedModel, checked against the
local prediction server's answers for the same users."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.adapters.batch_prediction import BatchJobRequest, BatchJobStatus, VertexBatchPredictions
from shared.contract.messages import RunCommand
from shared.domain import batch_predictions, runs
from shared.errors import PermanentError, TransientError
from shared.services import commands
from tests.unit.test_actions import ARTIFACTS, make_run, post, published_commands, world  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
BODY = {"users": ["c1", "c2", {"customer_id": "c3"}], "k": 5, "gcs_output": "gs://recs-data/batch/"}


class FakeBatch:
    wait_s, poll_s = 5.0, 0.0

    def __init__(self, states=("succeeded",), fail=None):
        self.started, self.states, self.fail = [], list(states), fail

    def start(self, request):
        if self.fail:
            raise self.fail
        self.started.append(request)
        return f"jobs/{request.kind}-{len(self.started)}"

    def status(self, job):
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return BatchJobStatus(state=state, rows=3 if state == "succeeded" else 1, failed_rows=0,
                              location=f"gs://recs-data/batch/prediction-{job.rsplit('/', 1)[-1]}",
                              error="boom" if state == "failed" else None)


def consume(w, command):
    return commands.handle_command(RunCommand.model_validate(command), w.repo, w.backend, w.store, w.serving,
                                   effects=w.deps.effects, declared=w.deps.settings.teams)


def test_the_models_k_is_the_exporters():
    export = (REPO / "pipeline_compiler/modules/export.py").read_text()
    assert int(re.search(r"^TOP_K = (\d+)", export, re.M).group(1)) == batch_predictions.MODEL_TOP_K


def test_machine_count_grows_with_users_up_to_the_cap():
    assert [batch_predictions.machine_count(n) for n in (1, 100_000, 100_001, 450_000, 10**8)] == [1, 1, 2, 5, 10]


def test_request_writes_the_instances_records_the_batch_and_queues_the_command(world):
    run = make_run(world, runs.COMPLETED)
    response = post(world, f"/api/training-runs/{run['id']}/batch-predictions", BODY)
    assert response.status_code == 202, response.get_json()
    batch = world.repo.get_run(run["id"])["batch_prediction"]
    assert batch["status"] == "running" and batch["users"] == 3 and batch["k"] == 5 and batch["machine_count"] == 1
    assert batch["outputs"] == {"gcs": {"destination": "gs://recs-data/batch", "job": None, "state": None,
                                        "location": None, "rows": 0, "failed_rows": 0}}
    assert batch["input_uri"] == f"{ARTIFACTS}/batch_predictions/{batch['id']}/instances.jsonl"
    lines = [json.loads(line) for line in world.store.files[batch["input_uri"]].splitlines()]
    assert lines == [{"customer_id": "c1"}, {"customer_id": "c2"}, {"customer_id": "c3"}]  # the dataset's user column
    (command,) = published_commands(world)
    assert command == {"command": "batch_predict", "run_id": run["id"], "batch_id": batch["id"]}
    # the same request again: a no-op that re-queues the command; another one while it runs: 409
    again = post(world, f"/api/training-runs/{run['id']}/batch-predictions", BODY)
    assert again.status_code == 200 and again.get_json()["changed"] is False and len(published_commands(world)) == 2
    other = post(world, f"/api/training-runs/{run['id']}/batch-predictions", {**BODY, "k": 7})
    assert other.status_code == 409 and "wait for them" in other.get_json()["message"]


@pytest.mark.parametrize("body, field", [
    ({**BODY, "k": 101}, "k"), ({**BODY, "users": []}, "users"), ({"users": ["c1"]}, "body"),
    ({**BODY, "gcs_output": "s3://x/y"}, "gcs_output"), ({**BODY, "bigquery_output": "p.d.t"}, "bigquery_output"),
])
def test_bad_requests_name_the_field(world, body, field):
    run = make_run(world, runs.COMPLETED)
    response = post(world, f"/api/training-runs/{run['id']}/batch-predictions", body)
    assert response.status_code == 400
    assert field in json.dumps(response.get_json()), response.get_json()


@pytest.mark.parametrize("status", sorted(set(runs.STATUSES) - {runs.COMPLETED}))
def test_only_a_run_with_a_registered_model_predicts(world, status):
    run = make_run(world, status)
    response = post(world, f"/api/training-runs/{run['id']}/batch-predictions", BODY)
    assert response.status_code == 409 and "no registered model" in response.get_json()["message"]
    assert "batch_prediction" not in world.repo.get_run(run["id"]) and not world.store.files


def test_the_consumer_starts_one_job_per_output_and_records_rows_and_where(world):
    world.serving.batch_predictions = FakeBatch(states=("running", "succeeded"))
    run = make_run(world, runs.COMPLETED)
    post(world, f"/api/training-runs/{run['id']}/batch-predictions", {**BODY, "bigquery_output": "recs-proj.recs_out"})
    (command,) = published_commands(world)
    assert consume(world, command) == "done"
    batch = world.repo.get_run(run["id"])["batch_prediction"]
    assert batch["status"] == "succeeded" and batch["finished_at"]
    assert {k: (o["state"], o["rows"], o["job"]) for k, o in batch["outputs"].items()} == {
        "gcs": ("succeeded", 3, "jobs/gcs-1"), "bigquery": ("succeeded", 3, "jobs/bigquery-2")}
    started = world.serving.batch_predictions.started
    assert [(r.kind, r.destination, r.k, r.machine_count) for r in started] == [
        ("gcs", "gs://recs-data/batch", 5, 1), ("bigquery", "recs-proj.recs_out", 5, 1)]
    assert started[0].model_resource_name == "projects/p/locations/l/models/7" and started[0].model_version_id == "1"
    assert started[0].serving_model_uri == f"{ARTIFACTS}/model/saved_model"
    # a redelivered command starts nothing again
    assert consume(world, command) == "skipped" and len(started) == 2
    shown = world.client.get(f"/api/training-runs/{run['id']}", headers={"Authorization": "Bearer test-token"})
    assert shown.get_json()["training_run"]["batch_prediction"]["outputs"]["gcs"]["rows"] == 3


def test_a_redelivery_follows_the_recorded_job_instead_of_starting_another(world):
    world.serving.batch_predictions = FakeBatch(states=("running",))
    world.serving.batch_predictions.wait_s = 0.0  # this delivery's wait is over at the first look
    run = make_run(world, runs.COMPLETED)
    post(world, f"/api/training-runs/{run['id']}/batch-predictions", BODY)
    (command,) = published_commands(world)
    with pytest.raises(TransientError, match="still running"):
        consume(world, command)
    assert world.repo.get_run(run["id"])["batch_prediction"]["outputs"]["gcs"]["job"] == "jobs/gcs-1"
    world.serving.batch_predictions.states = ["succeeded"]
    assert consume(world, command) == "done"
    assert len(world.serving.batch_predictions.started) == 1
    assert world.repo.get_run(run["id"])["batch_prediction"]["status"] == "succeeded"


def test_a_failed_job_fails_the_batch_with_its_reason_and_a_new_request_may_follow(world):
    world.serving.batch_predictions = FakeBatch(fail=PermanentError("no BigQuery locally", stage="BatchPredict"))
    run = make_run(world, runs.COMPLETED)
    post(world, f"/api/training-runs/{run['id']}/batch-predictions", BODY)
    assert consume(world, published_commands(world)[0]) == "done"
    batch = world.repo.get_run(run["id"])["batch_prediction"]
    assert batch["status"] == "failed" and "no BigQuery" in batch["error"]
    assert post(world, f"/api/training-runs/{run['id']}/batch-predictions", BODY).status_code == 202


def test_an_output_still_running_when_the_other_failed_records_its_end():
    """A GCS job goes on writing after the BigQuery job failed: the run shows its rows and where they are,
    the batch staying failed (before, its end was dropped and it showed `running` for good)."""
    doc = {"id": "tr-1", "status": runs.COMPLETED, "vertex_model_resource_name": "projects/p/locations/l/models/7",
           "vertex_model_version": "1", "gcs_artifacts_path": "gs://a/tr-1"}
    outputs = {"gcs": "gs://recs-data/batch", "bigquery": "recs-proj.recs_out"}
    doc = batch_predictions.request(doc, "b1", {"users": 3, "k": 5, "outputs": outputs, "fingerprint": "f",
                                                "input_uri": "gs://a/tr-1/in.jsonl"}, "ana@example.com", runs.now())
    doc = batch_predictions.record(doc, "b1", "bigquery", {"state": "failed", "error": "dataset not found",
                                                           "finished_at": "t1"})
    assert doc["batch_prediction"]["status"] == "failed"
    ended = batch_predictions.record(doc, "b1", "gcs", {"state": "succeeded", "rows": 3, "location": "gs://recs-data/batch/p",
                                                        "finished_at": "t2"})
    batch = ended["batch_prediction"]
    assert batch["outputs"]["gcs"]["rows"] == 3 and batch["outputs"]["gcs"]["location"] == "gs://recs-data/batch/p"
    assert (batch["status"], batch["error"], batch["finished_at"]) == ("failed", "dataset not found", "t1")
    assert batch_predictions.record(ended, "b1", "gcs", {"rows": 9}) is None  # ended outputs stay as they ended
    assert batch_predictions.record(ended, "b2", "gcs", {"rows": 9}) is None  # another batch's news: not this one's


# ----------------------------------------------------------------------------- Vertex, over gRPC

PROJECT, REGION = "proj", "europe-west4"


@pytest.fixture
def vertex():
    from tests.protocol_fakes import vertex as fakes

    fake = fakes.start(REGION)
    yield fake
    fake.server.stop()


def vertex_request(kind="gcs", destination="gs://recs-data/batch", users=250_000):
    return BatchJobRequest(run_id="tr-0123", run_name="recs-v3", batch_id="b1", kind=kind, destination=destination,
                           model_resource_name=f"projects/{PROJECT}/locations/{REGION}/models/7", model_version_id="2",
                           serving_model_uri="gs://a/model", input_uri="gs://a/tr-0123/batch_predictions/b1/instances.jsonl",
                           k=10, machine_count=batch_predictions.machine_count(users))


def test_vertex_creates_the_job_with_the_model_version_input_output_and_machines_once(vertex):
    adapter = VertexBatchPredictions(PROJECT, REGION, "n1-standard-4", emulator_host=vertex.server.address,
                                     service_account=f"trainyard-pipeline@{PROJECT}.iam.gserviceaccount.com")
    name = adapter.start(vertex_request())
    job = vertex.jobs.batch_jobs[name]
    assert job.service_account == f"trainyard-pipeline@{PROJECT}.iam.gserviceaccount.com"  # not a default agent
    assert job.model == f"projects/{PROJECT}/locations/{REGION}/models/7@2"  # its container: our serving image
    assert job.input_config.instances_format == "jsonl"
    assert list(job.input_config.gcs_source.uris) == ["gs://a/tr-0123/batch_predictions/b1/instances.jsonl"]
    assert job.output_config.predictions_format == "jsonl"
    assert job.output_config.gcs_destination.output_uri_prefix == "gs://recs-data/batch"
    assert (job.dedicated_resources.starting_replica_count, job.dedicated_resources.max_replica_count) == (3, 3)
    assert job.dedicated_resources.machine_spec.machine_type == "n1-standard-4"
    assert dict(job.model_parameters) == {"k": 10}  # every request's `parameters`: the container's k
    assert adapter.start(vertex_request()) == name and len(vertex.jobs.batch_jobs) == 1  # a redelivery finds it
    assert adapter.status(name).state == "running"
    vertex.jobs.finish_batch(name, successful=249_990, failed=10)
    done = adapter.status(name)
    assert (done.state, done.rows, done.failed_rows) == ("succeeded", 249_990, 10)
    assert done.location.startswith("gs://recs-data/batch/prediction-recs-v3-batch-b1-gcs-")


def test_vertex_writes_bigquery_as_its_own_job_and_reports_a_failure(vertex):
    adapter = VertexBatchPredictions(PROJECT, REGION, "n1-standard-4", emulator_host=vertex.server.address)
    name = adapter.start(vertex_request("bigquery", "recs-proj.recs_out"))
    job = vertex.jobs.batch_jobs[name]
    assert job.output_config.predictions_format == "bigquery"
    assert job.output_config.bigquery_destination.output_uri == "bq://recs-proj.recs_out"
    assert adapter.start(vertex_request("gcs")) != name  # the other output: its own job
    vertex.jobs.finish_batch(name, successful=5)
    assert adapter.status(name).location.startswith("recs-proj.recs_out.predictions_")
    other = adapter.start(vertex_request("gcs"))
    vertex.jobs.finish_batch(other, "JOB_STATE_FAILED", error="quota exceeded for n1-standard-4")
    failed = adapter.status(other)
    assert failed.state == "failed" and "quota" in failed.error


# ----------------------------------------------------------------------------- locally, a real SavedModel

def test_local_batch_writes_the_endpoints_top_k_for_every_user(tmp_path):
    """The local side runs the container's code over the file; what it writes is, user for user, the first
    k of what the deployed local endpoint answers."""
    tf = pytest.importorskip("tensorflow")
    from scripts.prediction_server import create_app
    from shared.adapters.batch_prediction import LocalBatchPredictions
    from shared.adapters.serving.local import write_endpoint

    class PerUser(tf.Module):  # the retrieval signature's shape: raw query features in, ranked ids and scores out
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="customer_id")])
        def serve(self, customer_id):
            ranks = tf.range(20)
            ids = tf.strings.join([tf.repeat(customer_id[:, None], 20, axis=1), "-item-",
                                   tf.strings.as_string(tf.tile(ranks[None, :], [tf.shape(customer_id)[0], 1]))])
            lengths = tf.cast(tf.strings.length(customer_id), tf.float32)[:, None]
            return {"ids": ids, "scores": lengths - tf.cast(ranks, tf.float32)[None, :]}

    model = PerUser()
    saved = str(tmp_path / "model")
    tf.saved_model.save(model, saved, signatures={"serving_default": model.serve})
    users = [f"c{i}" for i in range(25)]
    (tmp_path / "instances.jsonl").write_text("".join(json.dumps({"customer_id": u}) + "\n" for u in users))
    request = BatchJobRequest(run_id="tr-1", run_name="recs", batch_id="b1", kind="gcs", destination=str(tmp_path / "out"),
                              model_resource_name="local/models/recs", model_version_id="1", serving_model_uri=saved,
                              input_uri=str(tmp_path / "instances.jsonl"), k=7, machine_count=1)
    adapter = LocalBatchPredictions()
    job = adapter.start(request)
    status = adapter.status(job)
    assert (status.state, status.rows, status.failed_rows, status.location) == ("succeeded", 25, 0, job)
    written = [json.loads(line) for line in open(f"{job}/predictions.jsonl")]
    assert [w["instance"]["customer_id"] for w in written] == users

    write_endpoint(str(tmp_path / "endpoints"), {"endpoint_id": "recs", "traffic_split": {"m1": 100}, "deployed_models": [
        {"id": "m1", "saved_model_uri": saved}]})
    server = create_app(str(tmp_path / "endpoints")).test_client()
    answers = server.post("/v1/endpoints/recs:predict", json={"instances": [{"customer_id": u} for u in users]})
    assert answers.status_code == 200
    for line, answer in zip(written, answers.get_json()["predictions"]):
        assert line["prediction"] == {"ids": answer["ids"][:7], "scores": answer["scores"][:7]}
    # the container Vertex runs takes the job's model_parameters as `parameters`: {"k": 7} keeps the first 7
    from model_server import vertex as container

    loader = container.Loader(saved)
    loader._load()
    app = container.create_app(storage_uri=saved, loader=loader).test_client()
    cut = app.post("/predict", json={"instances": [{"customer_id": "c3"}], "parameters": {"k": 7}}).get_json()
    assert cut["predictions"][0] == written[3]["prediction"]
    assert app.post("/predict", json={"instances": [{"customer_id": "c3"}], "parameters": {"k": 0}}).status_code == 400
    assert adapter.start(request) == job  # a redelivery: the result is there, nothing runs again
    (tmp_path / "bad.jsonl").write_text('{"user": "c1"}\n')  # not the signature's feature: refused, with the reason
    refused = adapter.start(BatchJobRequest(**{**request.__dict__, "batch_id": "b2", "input_uri": str(tmp_path / "bad.jsonl")}))
    assert adapter.status(refused).state == "failed" and "customer_id" in adapter.status(refused).error
    with pytest.raises(PermanentError, match="no BigQuery"):
        adapter.start(BatchJobRequest(**{**request.__dict__, "kind": "bigquery"}))


def test_runs_get_shows_the_batch_progress_and_where_the_rows_are():
    from trainyard_cli.run_commands import batch_lines

    run = {"batch_prediction": {"status": "running", "k": 10, "users": 200, "machine_count": 1, "outputs": {
        "gcs": {"state": "succeeded", "rows": 200, "location": "gs://b/out/prediction-x", "destination": "gs://b/out"},
        "bigquery": {"state": "running", "rows": 50, "failed_rows": 2, "destination": "my-proj.recs"}}}}
    assert batch_lines(run) == [
        "batch predictions: running  top-10 for 200 users  63%  (1 machine(s))",
        "  gcs: succeeded  200 rows  → gs://b/out/prediction-x",
        "  bigquery: running  50 rows, 2 failed  → my-proj.recs"]
    assert batch_lines({}) == []


def test_the_consumer_follows_a_vertex_job_to_completion_across_redeliveries(world, vertex):
    """The cloud side end to end with the official client: the API's request, the consumer's job (model
    version, input, output, machines), a redelivery while it runs (no second job), the counts at the end."""
    world.serving.batch_predictions = VertexBatchPredictions(PROJECT, REGION, "n1-standard-4", wait_s=0, poll_s=0,
                                                             emulator_host=vertex.server.address)
    run = make_run(world, runs.COMPLETED)
    post(world, f"/api/training-runs/{run['id']}/batch-predictions", BODY)
    (command,) = published_commands(world)
    with pytest.raises(TransientError, match="still running"):
        consume(world, command)
    (name,) = vertex.jobs.batch_jobs
    job = vertex.jobs.batch_jobs[name]
    assert job.model == "projects/p/locations/l/models/7@1" and dict(job.model_parameters) == {"k": 5}
    batch = world.repo.get_run(run["id"])["batch_prediction"]
    assert list(job.input_config.gcs_source.uris) == [batch["input_uri"]]
    assert batch["outputs"]["gcs"]["job"] == name and batch["outputs"]["gcs"]["state"] == "running"
    with pytest.raises(TransientError):
        consume(world, command)  # redelivered while it runs: followed, not started again
    assert len(vertex.jobs.batch_jobs) == 1
    vertex.jobs.finish_batch(name, successful=3)
    assert consume(world, command) == "done"
    output = world.repo.get_run(run["id"])["batch_prediction"]["outputs"]["gcs"]
    assert output["rows"] == 3 and output["location"].startswith("gs://recs-data/batch/prediction-")
