"""Run actions through the HTTP API and the run-commands consumer, with in-memory fakes (no I/O):
every action in every status, repeats as no-ops, and what each action leaves on the run."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.contract import results, topics
from shared.domain import runs
from shared.contract import labels
from shared.contract.messages import RunCommand
from shared.errors import PermanentError, TransientError
from shared.http.app import Dependencies, create_app
from shared.contract.pipeline_jobs import JobSnapshot, TaskSnapshot
from shared.adapters.run_data_sources import RunDataSources
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.adapters.serving import DeployResult, Serving
from shared.services import commands
from shared.services import intake
from shared.services.ports import Effects
from tests.builders import demo_member, local_settings, run_body, seed_catalog
from tests.fakes import FakeBackend, FakePublisher, InMemoryRepository
from tests.unit.scenario import T0

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
ARTIFACTS = "gs://bucket/training/run"


class MemoryStore:
    def __init__(self):
        self.files: dict[str, str] = {}

    def read_text(self, uri):
        return self.files.get(uri)

    def write_text(self, uri, text):
        self.files[uri] = text

    def delete_tree(self, uri):
        gone = [k for k in self.files if k.startswith(uri.rstrip("/") + "/")]
        for key in gone:
            del self.files[key]
        return len(gone)


class FakeLogs:
    def __init__(self):
        self.calls = []

    def read(self, run, attempt, stage, severity, page_size, cursor):
        self.calls.append((f"{run['id']}-a{attempt}", stage, page_size, cursor))
        entries = [{"timestamp": "2026-01-01T00:00:00Z", "severity": "INFO", "stage": stage or "Train",
                    "task": "Trainer", "message": f"line {i}"} for i in range(page_size)]
        return {"entries": entries, "next_cursor": {"next": True} if not cursor else None, "source": "fake"}


class FakeQuota:
    def __init__(self, limit=4):
        self.limit = limit

    def check(self, region, gpu_type, gpu_count, preemptible):
        return {"region": region, "gpu_type": gpu_type, "gpu_count": gpu_count, "preemptible": preemptible,
                "quota_applies": True, "limit": self.limit, "in_use": 0, "available": self.limit,
                "sufficient": gpu_count <= self.limit, "message": f"{self.limit} free; the run needs {gpu_count}"}


class FakeRegistrar:
    serving_image = "europe-docker.pkg.dev/p/trainyard/serving:1"

    def __init__(self):
        self.registered = []

    def register(self, spec, serving_model_uri):
        self.registered.append((spec.run_id, serving_model_uri))
        return results.RegistryEntry(model_display_name=spec.run_name, model_resource_name="projects/p/locations/l/models/7",
                                     model_version_id="3", serving_model_uri=serving_model_uri, registered_at=T0)


class FakeEndpoints:
    def __init__(self, fail=None):
        self.requests = []
        self.fail = fail

    def deploy(self, request, started=None, on_started=None):
        self.requests.append(request)
        if self.fail:
            raise self.fail
        if on_started:
            on_started("operations/42")
        name = request.endpoint_id or f"projects/p/locations/l/endpoints/{request.run_id}"
        return DeployResult(endpoint_resource_name=name, deployed_model_id="dm-1",
                            traffic_split={"dm-1": request.traffic_percent}, predict_url=f"https://x/{name}:predict")


class FakeTrainerJobs:
    def __init__(self):
        self.cancelled = []

    def cancel_for_run(self, run_id):
        self.cancelled.append(run_id)
        return [f"customJobs/{run_id}"]


@pytest.fixture
def world():
    repo, publisher, store = InMemoryRepository(), FakePublisher(), MemoryStore()
    settings = local_settings("dev@example.com", TOKEN,
                       region="europe-west4")
    deps = Dependencies(repo=repo, publisher=publisher, store=store, settings=settings,
                        run_data=RunDataSources(FakeLogs(), FakeQuota()))
    serving = Serving(FakeRegistrar(), FakeEndpoints(), FakeTrainerJobs(), machine_type="n1-standard-4")

    class World:
        pass

    w = World()
    w.repo, w.publisher, w.store, w.deps, w.serving, w.backend = repo, publisher, store, deps, serving, FakeBackend()
    w.client = create_app(deps).test_client()
    w.ids = seed_catalog(repo)
    return w


def make_run(w, status: str, **fields) -> dict:
    run = intake.create_run(w.repo, Effects(w.publisher, LocalTickerJobs()),
                            run_body(w.ids["experiment"]), *demo_member("owner@example.com"))
    w.publisher.messages.clear()
    extra = {"gcs_artifacts_path": ARTIFACTS}
    if status in (runs.COMPLETED, runs.NOT_BLESSED):
        extra.update(is_blessed=status == runs.COMPLETED, completed_at=T0)
    if status == runs.COMPLETED:
        extra.update(vertex_model_name=run["name"], vertex_model_resource_name="projects/p/locations/l/models/7",
                     vertex_model_version="1")
    if status == runs.FAILED:
        extra.update(error_stage="Train", error_message="CUDA out of memory", error_details={"task": "Trainer"})
    if status in (runs.RUNNING, runs.CANCELLING):
        extra.update(vertex_pipeline_job_name=f"projects/p/locations/l/pipelineJobs/{run['id']}-a1")
    attempts = [{"attempt": 1, "status": status, "error_stage": extra.get("error_stage"),
                 "error_message": extra.get("error_message")}] if status != runs.PENDING else []
    return w.repo.mutate_run(run["id"], lambda d: {**d, "status": status, "attempts": attempts, **extra, **fields})


def post(w, path, body=None):
    return w.client.post(path, data=json.dumps(body) if body is not None else None, headers=AUTH)


def published_commands(w):
    return [p for t, p, _ in w.publisher.messages if t == topics.RUN_COMMANDS]


def submits(w):
    return [p for t, p, _ in w.publisher.messages if t == topics.RUN_SUBMIT]


# ----------------------------------------------------------------------------- every action × every status

ALLOWED = {
    "cancel": {runs.AWAITING_APPROVAL, runs.PENDING, runs.SCHEDULED, runs.SUBMITTING, runs.RUNNING},
    "retry": {runs.FAILED, runs.CANCELLED},
    "deploy": {runs.COMPLETED},
    "push-anyway": {runs.NOT_BLESSED},
}
NO_OP = {"cancel": {runs.CANCELLING, runs.CANCELLED}}
REASON = {"cancel": "only awaiting_approval, pending, scheduled, submitting or running runs can be cancelled",
          "retry": "only failed or cancelled runs can be retried", "deploy": "deployed",
          "push-anyway": "only not_blessed runs can be pushed anyway"}


@pytest.mark.parametrize("action", sorted(ALLOWED))
@pytest.mark.parametrize("status", runs.STATUSES)
def test_every_action_in_every_status(world, action, status):
    run = make_run(world, status)
    response = post(world, f"/api/training-runs/{run['id']}/{action}")
    body = response.get_json()
    if status in ALLOWED[action]:
        assert response.status_code in (200, 202), body
        assert body["changed"] is True
        effect = {"cancel": lambda r: r["status"] in (runs.CANCELLED, runs.CANCELLING) and r["cancelled_by"],
                  "retry": lambda r: r["attempt"] == 2 and r["status"] == runs.PENDING,
                  "deploy": lambda r: r["deployment_status"] == "deploying",
                  "push-anyway": lambda r: r["push_anyway"]["status"] == "pushing"}[action]
        assert effect(world.repo.get_run(run["id"]))
    elif status in NO_OP.get(action, ()):
        assert response.status_code == 200 and body["changed"] is False
    else:
        assert response.status_code == 409, body
        assert body["error"] == "conflict" and f"is {status}" in body["message"]
        if action == "push-anyway" and status == runs.COMPLETED:
            assert "registered" in body["message"]
        elif action == "deploy" and status == runs.NOT_BLESSED:
            assert "push it anyway first" in body["message"]
        elif action != "deploy":
            assert REASON[action] in body["message"]
        assert world.repo.get_run(run["id"])["status"] == status  # nothing moved
        assert not published_commands(world) and not submits(world)


def test_unknown_run_is_404_for_every_action(world):
    for action in ALLOWED:
        assert post(world, f"/api/training-runs/nope/{action}").status_code == 404


# ----------------------------------------------------------------------------- cancel


def test_cancel_pending_ends_at_once_and_records_who(world):
    run = make_run(world, runs.PENDING)
    body = post(world, f"/api/training-runs/{run['id']}/cancel").get_json()
    stored = world.repo.get_run(run["id"])
    assert body["training_run"]["status"] == stored["status"] == runs.CANCELLED
    assert stored["cancelled_by"] == "dev@example.com" and stored["cancelled_at_stage"] is None
    assert stored["attempts"][-1]["status"] == runs.CANCELLED and stored["completed_at"]
    assert not published_commands(world)  # no job to stop
    # the submitter's claim no longer takes it
    assert runs.claim_for_submit(stored, 1, runs.now()) is None


def test_cancel_running_queues_the_job_cancel_and_repeats_are_no_ops(world):
    run = make_run(world, runs.RUNNING, current_epoch=12)
    first = post(world, f"/api/training-runs/{run['id']}/cancel")
    assert first.status_code == 202 and first.get_json()["training_run"]["status"] == runs.CANCELLING
    assert published_commands(world) == [{"command": "cancel", "run_id": run["id"], "attempt": 1}]
    version = world.repo.get_run(run["id"])["version"]
    again = post(world, f"/api/training-runs/{run['id']}/cancel")
    assert again.status_code == 200 and again.get_json()["changed"] is False
    assert world.repo.get_run(run["id"])["version"] == version  # no write
    assert len(published_commands(world)) == 2  # re-queued: a lost publish heals itself, the consumer is idempotent


def test_consumer_cancels_the_job_and_its_trainer_job_and_records_stage_and_epoch(world):
    run = make_run(world, runs.RUNNING, current_epoch=12)
    run = world.repo.mutate_run(run["id"], lambda d: {**d, "stage_details": [
        {**s, "status": runs.STAGE_COMPLETED if s["name"] in ("Compile", "Examples", "Stats", "Schema", "Transform")
         else runs.STAGE_RUNNING if s["name"] == "Train" else runs.STAGE_PENDING} for s in d["stage_details"]]})
    post(world, f"/api/training-runs/{run['id']}/cancel")
    job_id = f"{run['id']}-a1"
    world.backend.jobs[job_id] = JobSnapshot(
        job_id=job_id, name=job_id, state="PIPELINE_STATE_CANCELLED", end_time=T0,
        tasks=(TaskSnapshot("Transform", "SUCCEEDED", T0, T0), TaskSnapshot("Trainer", "CANCELLED", T0, T0),
               TaskSnapshot("Evaluator", "CANCELLED")))
    command = RunCommand.model_validate(published_commands(world)[0])
    outcome = commands.handle_command(command, world.repo, world.backend, world.store, world.serving, effects=world.deps.effects, declared=world.deps.settings.teams)
    assert outcome == "cancelled"
    assert world.backend.cancelled == [job_id] and world.serving.trainer_jobs.cancelled == [run["id"]]
    stored = world.repo.get_run(run["id"])
    assert stored["status"] == runs.CANCELLED
    assert stored["cancelled_at_stage"] == "Train" and stored["cancelled_at_epoch"] == 12
    assert stored["cancelled_by"] == "dev@example.com"
    train = next(s for s in stored["stage_details"] if s["name"] == "Train")
    assert train["status"] == runs.STAGE_CANCELLED
    # a redelivery does nothing
    assert commands.handle_command(command, world.repo, world.backend, world.store, world.serving, effects=world.deps.effects, declared=world.deps.settings.teams) == "skipped"
    assert world.backend.cancelled == [job_id]


def test_a_late_running_event_does_not_undo_a_cancel(world):
    run = make_run(world, runs.RUNNING)
    post(world, f"/api/training-runs/{run['id']}/cancel")
    late = JobSnapshot(job_id=f"{run['id']}-a1", name="j", state="PIPELINE_STATE_RUNNING",
                       tasks=(TaskSnapshot("Trainer", "RUNNING", T0),))
    doc = world.repo.get_run(run["id"])
    updated = runs.apply_job_snapshot(doc, late)
    assert (updated or doc)["status"] == runs.CANCELLING


def test_cancel_while_submitting_waits_for_the_job_to_exist(world):
    run = make_run(world, runs.SUBMITTING)
    post(world, f"/api/training-runs/{run['id']}/cancel")
    command = RunCommand.model_validate(published_commands(world)[0])

    class NoJobYet(FakeBackend):
        def cancel_job(self, job_id):
            from shared.errors import NotFound

            raise NotFound(job_id)

    with pytest.raises(TransientError):  # redelivered until the submitter has created the job
        commands.handle_command(command, world.repo, NoJobYet(), world.store, world.serving, effects=world.deps.effects, declared=world.deps.settings.teams)
    # the submitter finishes: the job name is recorded, the run stays cancelling
    doc = runs.record_submitted(world.repo.get_run(run["id"]), 1, "jobs/x", ARTIFACTS, runs.now())
    assert doc["status"] == runs.CANCELLING and doc["vertex_pipeline_job_name"] == "jobs/x"


# ----------------------------------------------------------------------------- retry


def test_retry_starts_the_next_attempt_keeping_the_previous_error(world):
    run = make_run(world, runs.FAILED)
    response = post(world, f"/api/training-runs/{run['id']}/retry",
                    {"gpu_config": {"gpu_type": "NVIDIA_TESLA_A100", "gpu_count": 1}, "training_params": {"epochs": 7}})
    assert response.status_code == 202, response.get_json()
    stored = world.repo.get_run(run["id"])
    assert stored["attempt"] == 2 and stored["status"] == runs.PENDING
    assert stored["gpu_config"]["machine_type"] == "a2-highgpu-1g"  # re-derived for the new GPU
    assert stored["training_params"]["epochs"] == 7 and stored["total_epochs"] == 7
    assert stored["error_message"] == "" and all(s["status"] == "pending" for s in stored["stage_details"])
    previous = stored["attempts"][0]
    assert previous["error_message"] == "CUDA out of memory" and previous["error_stage"] == "Train"
    assert previous["error_details"] == {"task": "Trainer"} and previous["retried_by"] == "dev@example.com"
    assert previous["retry_changes"]["gpu_config"]["gpu_type"] == "NVIDIA_TESLA_A100"
    assert submits(world) == [{"run_id": run["id"], "attempt": 2}]
    # the submitter claims attempt 2 (its job id is {run}-a2: a new Vertex job, cached stages reused)
    assert runs.claim_for_submit(stored, 2, runs.now())["status"] == runs.SUBMITTING
    assert labels.job_id_for(run["id"], 2) == f"{run['id']}-a2"


def test_repeated_retry_is_a_no_op(world):
    run = make_run(world, runs.CANCELLED)
    assert post(world, f"/api/training-runs/{run['id']}/retry", {"attempt": 1}).status_code == 202
    for body in ({"attempt": 1}, None):
        again = post(world, f"/api/training-runs/{run['id']}/retry", body)
        assert again.status_code == 200 and again.get_json()["changed"] is False
    assert world.repo.get_run(run["id"])["attempt"] == 2


def test_retry_validates_changed_config_by_field(world):
    run = make_run(world, runs.FAILED)
    response = post(world, f"/api/training-runs/{run['id']}/retry", {"gpu_config": {"gpu_count": 3}})
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["field"].startswith("gpu_config")
    response = post(world, f"/api/training-runs/{run['id']}/retry", {"training_params": {"epochs": 0}})
    assert response.get_json()["errors"][0]["field"] == "training_params.epochs"
    assert post(world, f"/api/training-runs/{run['id']}/retry", {"colour": "red"}).status_code == 400
    assert world.repo.get_run(run["id"])["attempt"] == 1


# ----------------------------------------------------------------------------- deploy


def test_deploy_queues_the_work_and_the_consumer_records_the_endpoint(world):
    run = make_run(world, runs.COMPLETED)
    response = post(world, f"/api/training-runs/{run['id']}/deploy")
    assert response.status_code == 202
    stored = world.repo.get_run(run["id"])
    assert stored["deployment_status"] == "deploying" and stored["status"] == runs.COMPLETED
    assert stored["deployment"]["endpoint_name"] == run["name"] and stored["deployment"]["traffic_split"] == 100
    assert stored["deployment"]["automatic"] is False and stored["deployment"]["requested_by"] == "dev@example.com"
    (command,) = published_commands(world)
    assert command == {"command": "deploy", "run_id": run["id"], "deployment_id": stored["deployment"]["id"]}
    # repeat while deploying: no-op
    again = post(world, f"/api/training-runs/{run['id']}/deploy")
    assert again.status_code == 200 and again.get_json()["changed"] is False
    outcome = commands.handle_command(RunCommand.model_validate(command), world.repo, world.backend, world.store, world.serving, effects=world.deps.effects, declared=world.deps.settings.teams)
    assert outcome == "deployed"
    stored = world.repo.get_run(run["id"])
    assert stored["deployment_status"] == "deployed" and stored["is_deployed"] is True
    assert stored["endpoint_resource_name"].endswith(run["id"]) and stored["deployed_at"]
    assert stored["deployment"]["operation"] == "operations/42"
    request = world.serving.endpoints.requests[0]
    assert request.model_resource_name == "projects/p/locations/l/models/7" and request.model_version_id == "1"
    assert request.serving_model_uri == f"{ARTIFACTS}/model/saved_model"
    # deployed, same target: still a no-op; a redelivered command: skipped
    assert post(world, f"/api/training-runs/{run['id']}/deploy").get_json()["changed"] is False
    assert commands.handle_command(RunCommand.model_validate(command), world.repo, world.backend, world.store,
                                  world.serving, effects=world.deps.effects, declared=world.deps.settings.teams) == "skipped"


def test_deploy_to_an_existing_endpoint_with_a_traffic_split(world):
    run = make_run(world, runs.COMPLETED)
    assert post(world, f"/api/training-runs/{run['id']}/deploy",
                {"endpoint_id": "123", "traffic_split": 101}).status_code == 400
    assert post(world, f"/api/training-runs/{run['id']}/deploy", {"traffic_split": 30}).status_code == 400
    response = post(world, f"/api/training-runs/{run['id']}/deploy", {"endpoint_id": "123", "traffic_split": 30})
    assert response.status_code == 202
    other = post(world, f"/api/training-runs/{run['id']}/deploy", {"endpoint_id": "456", "traffic_split": 30})
    assert other.status_code == 409 and "being deployed" in other.get_json()["message"]
    commands.handle_command(RunCommand.model_validate(published_commands(world)[0]), world.repo, world.backend, world.store,
                           world.serving, effects=world.deps.effects, declared=world.deps.settings.teams)
    assert world.serving.endpoints.requests[0].endpoint_id == "123"
    assert world.serving.endpoints.requests[0].traffic_percent == 30


def test_a_failed_deployment_is_recorded_and_can_be_retried(world):
    run = make_run(world, runs.COMPLETED)
    world.serving.endpoints.fail = PermanentError("quota exceeded for n1-standard-4", stage="Deploy")
    post(world, f"/api/training-runs/{run['id']}/deploy")
    assert commands.handle_command(RunCommand.model_validate(published_commands(world)[0]), world.repo, world.backend,
                                  world.store, world.serving, effects=world.deps.effects, declared=world.deps.settings.teams) == "failed"
    stored = world.repo.get_run(run["id"])
    assert stored["deployment_status"] == "failed" and "quota" in stored["deployment"]["error"]
    assert stored["status"] == runs.COMPLETED
    errors = world.client.get(f"/api/training-runs/{run['id']}/errors", headers=AUTH).get_json()
    assert "quota" in errors["action_errors"]["deployment"]["error"]
    assert post(world, f"/api/training-runs/{run['id']}/deploy").status_code == 202


# ----------------------------------------------------------------------------- push anyway


def test_push_anyway_registers_a_not_blessed_model_and_records_it(world):
    from tests.unit.scenario import write_results

    run = make_run(world, runs.NOT_BLESSED)
    world.store.write_text(f"{ARTIFACTS}/config.json", json.dumps(_spec_json(world, run)))  # the submitter's snapshot
    write_results(world.store, ARTIFACTS, blessed=False)
    response = post(world, f"/api/training-runs/{run['id']}/push-anyway")
    assert response.status_code == 202
    assert post(world, f"/api/training-runs/{run['id']}/push-anyway").get_json()["changed"] is False
    command = RunCommand.model_validate(published_commands(world)[0])
    assert commands.handle_command(command, world.repo, world.backend, world.store, world.serving, effects=world.deps.effects, declared=world.deps.settings.teams) == "pushed"
    stored = world.repo.get_run(run["id"])
    assert stored["status"] == runs.NOT_BLESSED and stored["pushed_anyway"] is True
    assert stored["vertex_model_resource_name"] == "projects/p/locations/l/models/7"
    assert stored["push_anyway"]["status"] == "pushed" and stored["push_anyway"]["requested_by"] == "dev@example.com"
    entry = results.RegistryEntry.model_validate_json(world.store.read_text(f"{ARTIFACTS}/{results.REGISTRY_FILE}"))
    assert entry.pushed_anyway is True
    assert world.serving.registrar.registered == [(run["id"], f"{ARTIFACTS}/model/saved_model")]
    card = get(world, f"/api/training-runs/{run['id']}/model-card").get_json()  # written when registered anyway
    assert card["card"]["gate"]["pushed_anyway"] is True and "registered anyway by hand" in card["markdown"]
    assert card["card"]["lineage"]["serving_image"] == FakeRegistrar.serving_image
    assert world.store.read_text(f"{ARTIFACTS}/{results.MODEL_CARD_MARKDOWN}") == card["markdown"]
    # now it can be deployed
    assert post(world, f"/api/training-runs/{run['id']}/deploy").status_code == 202


def _spec_json(world, run):
    from shared.services.submission import build_run_spec

    settings = replace(world.deps.settings, artifacts_root="gs://bucket/training", pipeline_root="gs://bucket/root")
    return json.loads(build_run_spec(world.repo.get_run(run["id"]), world.repo, settings).to_json())


# ----------------------------------------------------------------------------- run data


def get(w, path, **params):
    return w.client.get(path, query_string=params, headers=AUTH)


def test_logs_are_bounded_and_paginated(world):
    run = make_run(world, runs.RUNNING)
    body = get(world, f"/api/training-runs/{run['id']}/logs", stage="Train", page_size=5).get_json()
    assert len(body["entries"]) == 5 and body["next_page_token"] and body["attempt"] == 1
    assert world.deps.run_data.logs.calls[0] == (f"{run['id']}-a1", "Train", 5, None)
    more = get(world, f"/api/training-runs/{run['id']}/logs", stage="Train", page_size=5,
               page_token=body["next_page_token"]).get_json()
    assert world.deps.run_data.logs.calls[1][3] == {"next": True} and more["next_page_token"] is None
    assert get(world, f"/api/training-runs/{run['id']}/logs", page_size=501).status_code == 400
    assert get(world, f"/api/training-runs/{run['id']}/logs", stage="Nope").status_code == 400
    assert get(world, f"/api/training-runs/{run['id']}/logs", attempt=2).status_code == 400


def test_training_history_per_epoch_with_learning_rate(world):
    run = make_run(world, runs.RUNNING)
    for epoch in (2, 1):
        world.repo.put_epoch(run["id"], 1, {"run_id": run["id"], "epoch": epoch, "total_epochs": 2, "loss": 1 / epoch,
                                            "learning_rate": 0.1 / epoch, "grad_norm": 3.0 / epoch,
                                            "metrics": {"recall_at_100": 0.2 * epoch}})
    body = get(world, f"/api/training-runs/{run['id']}/training-history").get_json()
    assert [e["epoch"] for e in body["epochs"]] == [1, 2] and body["epochs"][1]["learning_rate"] == 0.05
    assert [e["grad_norm"] for e in body["epochs"]] == [3.0, 1.5]  # the Training tab's gradient-norm chart
    assert body["source"] == "history"


def test_training_history_falls_back_to_the_trainers_metrics_file(world):
    from tests.unit.scenario import write_results

    run = make_run(world, runs.COMPLETED)
    write_results(world.store, ARTIFACTS)
    body = get(world, f"/api/training-runs/{run['id']}/training-history").get_json()
    assert body["source"] == "training_metrics" and len(body["epochs"]) == 3
    assert body["epochs"][0]["learning_rate"] == 0.1 and body["best_epoch"] == 3


def test_artifacts_follow_the_layout_and_link_registry_and_endpoint(world):
    run = make_run(world, runs.COMPLETED)
    body = get(world, f"/api/training-runs/{run['id']}/artifacts").get_json()
    assert body["artifacts"]["saved_model"]["uri"] == f"{ARTIFACTS}/model/saved_model"
    assert body["artifacts"]["registry_entry"]["uri"] == f"{ARTIFACTS}/registry/registry_entry.json"
    assert body["artifacts"]["saved_model"]["console_url"].startswith("https://console.cloud.google.com/storage/browser/")
    assert body["registry"]["console_url"].endswith("/models/7/versions/1?project=p")
    assert body["endpoint"] is None


def test_model_card_of_a_version_registered_before_cards_is_built_from_its_files(world):
    from tests.unit.scenario import write_results

    run = make_run(world, runs.COMPLETED)
    world.store.write_text(f"{ARTIFACTS}/config.json", json.dumps(_spec_json(world, run)))
    write_results(world.store, ARTIFACTS, recall=0.47)
    body = get(world, f"/api/training-runs/{run['id']}/model-card").get_json()
    card = body["card"]
    assert card["lineage"]["run_id"] == run["id"] and card["lineage"]["model_resource_name"].endswith("/models/42")
    assert card["metrics"]["recall_at_100"] == 0.47 and card["baselines"]["most_popular"]["recall_at_100"] == 0.47 / 3
    assert [e["epoch"] for e in card["training"]["epochs"]] == [1, 2, 3] and card["training"]["best_epoch"] == 3
    assert card["gate"]["decision"] == "blessed: recall_at_100 0.4700; threshold 0.4"
    assert body["uri"] == f"{ARTIFACTS}/{results.MODEL_CARD_MARKDOWN}" and "# Model card: " in body["markdown"]
    assert world.store.read_text(body["uri"]) is None  # reading never writes


def test_model_card_of_a_run_without_a_registered_model_is_a_404_saying_why(world):
    run = make_run(world, runs.NOT_BLESSED)
    response = get(world, f"/api/training-runs/{run['id']}/model-card")
    assert response.status_code == 404 and "no registered model: status not_blessed" in response.get_json()["message"]
    registered = make_run(world, runs.COMPLETED)  # registered, but its files are gone
    response = get(world, f"/api/training-runs/{registered['id']}/model-card")
    assert response.status_code == 404 and "config.json" in response.get_json()["message"]


def test_errors_per_attempt(world):
    run = make_run(world, runs.FAILED)
    post(world, f"/api/training-runs/{run['id']}/retry")
    world.repo.mutate_run(run["id"], lambda d: runs.record_failure(
        runs.claim_for_submit(d, 2, runs.now()), 2, "Compile", "the feature config names a missing column",
        {"column": "x"}, runs.now()))
    body = get(world, f"/api/training-runs/{run['id']}/errors").get_json()
    assert [a["attempt"] for a in body["attempts"]] == [1, 2]
    assert body["attempts"][0]["error_message"] == "CUDA out of memory"
    assert body["attempts"][1]["error_stage"] == "Compile" and body["attempts"][1]["error_details"] == {"column": "x"}
    assert body["error_stage"] == "Compile"


def test_gpu_availability_and_the_create_warning(world):
    body = get(world, "/api/gpu-availability", region="us-central1", gpu_type="NVIDIA_L4", gpu_count=8).get_json()
    assert body["sufficient"] is False and body["region"] == "us-central1" and body["limit"] == 4
    assert get(world, "/api/gpu-availability", gpu_type="NVIDIA_H100").status_code == 400
    assert get(world, "/api/gpu-availability", gpu_type="NVIDIA_L4", gpu_count=3).status_code == 400
    # creating a run that the quota cannot cover: created (201) with a warning
    world.deps.run_data.gpu_quota.limit = 1
    response = post(world, "/api/training-runs", run_body(world.ids["experiment"], name="short-of-gpus"))
    assert response.status_code == 201
    warnings = response.get_json()["warnings"]
    assert any("GPU quota" in w for w in warnings)
    assert any("GPU quota" in w for w in world.repo.get_run(response.get_json()["training_run"]["id"])["warnings"])
    # Several machines: the quota must cover every machine's GPUs (4 free; 2 machines x 2 L4 fit, 3 do not).
    world.deps.run_data.gpu_quota.limit = 4
    assert get(world, "/api/gpu-availability", gpu_type="NVIDIA_L4", gpu_count=2, machine_count=2).get_json()["sufficient"]
    body = get(world, "/api/gpu-availability", gpu_type="NVIDIA_L4", gpu_count=2, machine_count=3).get_json()
    assert body["sufficient"] is False and body["gpu_count"] == 6
    assert get(world, "/api/gpu-availability", gpu_type="NVIDIA_L4", machine_count=17).status_code == 400
    response = post(world, "/api/training-runs", run_body(world.ids["experiment"], name="three-machines",
                                                          gpu_config={"gpu_type": "NVIDIA_L4", "gpu_count": 2,
                                                                      "machine_count": 3}))
    assert response.status_code == 201 and any("needs 6" in w for w in response.get_json()["warnings"])


def test_delete_removes_the_runs_artifacts_once_the_grace_period_is_over(world):
    from shared.services import reconcile

    run = make_run(world, runs.COMPLETED)
    world.store.write_text(f"{ARTIFACTS}/model/saved_model/saved_model.pb", "x")
    response = world.client.delete(f"/api/training-runs/{run['id']}", headers=AUTH)
    assert response.status_code == 200 and world.store.files  # kept while it may be restored
    later = runs.now() + timedelta(days=world.deps.settings.delete_grace_days, minutes=1)
    report = reconcile.reconcile(world.repo, world.deps.effects, world.backend, world.store, world.deps.settings, at=later)
    assert report["repaired"] == {"purged": 1} and report["repairs"][0]["artifacts_removed"] == 1
    assert not world.store.files and world.repo.get_run(run["id"]) is None


def test_malformed_commands_are_refused_as_unreadable():
    with pytest.raises(ValueError):
        RunCommand.model_validate({"command": "explode", "run_id": "x"})
