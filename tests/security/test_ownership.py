"""H3 (security review): nothing was owned. Replayed through the HTTP app as the attacker would: mallory
(admin of another team, `ads`) and eve (signed in, no role anywhere) against alice's team `recs`;
each attack is refused (403, or 400 naming the field) or filtered out of a list. Then the allowed
paths for each role, so the checks do not simply refuse everything."""
from __future__ import annotations

import json
from dataclasses import replace

import flask
import pytest

from shared.adapters.artifact_store import ArtifactStore
from shared.adapters.serving import Serving
from shared.contract import topics
from shared.contract.messages import RunCommand
from shared.domain import runs, teams
from shared.http.app import Dependencies, create_app
from shared.services import commands
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.services.ports import Effects
from shared.settings import get_settings
from tests.builders import dataset_body, feature_config_body, model_config_body
from tests.fakes import FakeBackend, FakePublisher, InMemoryRepository
from tests.identity_tokens import GCLOUD_CLIENT_ID, delivered_token
from tests.unit.test_actions import FakeEndpoints, FakeRegistrar, FakeTrainerJobs, MemoryStore

API_URL = "https://europe-west4-p.cloudfunctions.net/trainyard-api"
TEAMS = teams.parse({
    "recs": {"members": {"alice@example.com": "admin", "vic@example.com": "viewer", "tom@example.com": "trainer",
                         "dan@example.com": "deployer"},
             "model_names": ["recs-*"], "endpoints": ["recs-prod"], "buckets": ["gs://recs-data/"]},
    "ads": {"members": {"mallory@example.com": "admin"}, "model_names": ["ads-*"], "endpoints": ["ads-prod"],
            "buckets": ["gs://ads-data/"]},
})
REGISTERED = {"vertex_model_name": "recs-v1", "vertex_model_resource_name": "projects/p/locations/l/models/7",
              "vertex_model_version": "1", "gcs_artifacts_path": "gs://b/runs/x"}


class World:
    """The API as deployed behind Cloud Run IAM (Google ID tokens), with the teams above; ops is a
    platform admin."""

    def __init__(self, declared=TEAMS, **adapters):
        self.repo, self.publisher = InMemoryRepository(), FakePublisher()
        self.adapters = adapters  # more of the API's Dependencies (a fake import source)
        self.serve(declared)

    def serve(self, declared) -> None:
        settings = replace(get_settings(), auth_mode="google", allowed_domain="example.com",
                           auth_audience=f"{API_URL}, {GCLOUD_CLIENT_ID}", teams=declared,
                           admins=frozenset({"ops@example.com"}))
        self.client = create_app(Dependencies(repo=self.repo, publisher=self.publisher, store=ArtifactStore(),
                                              settings=settings, **self.adapters)).test_client()

    def call(self, who: str, method: str, path: str, body=None):
        headers = {"Authorization": f"Bearer {delivered_token(who)}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self.client.open(path, method=method, headers=headers,
                                data=json.dumps(body) if body is not None else None)

    def catalog(self, who: str, name: str, metrics: dict, bucket: str) -> str:
        """A catalog as `who`, on data in `bucket` (a bucket of their team: data is confined to a team's)."""
        data = dataset_body(source={"kind": "files", "uri": f"{bucket}transactions.csv", "format": "csv"})
        made = {kind: self.call(who, "POST", f"/api/{kind}", body).get_json()["item"]["id"] for kind, body in (
            ("datasets", data), ("feature-configs", feature_config_body()),
            ("model-configs", model_config_body()))}
        return self.call(who, "POST", "/api/experiments", {
            "name": name, "model_type": "retrieval", "dataset_id": made["datasets"],
            "feature_config_id": made["feature-configs"], "model_config_id": made["model-configs"],
            "metrics": metrics}).get_json()["item"]["id"]

    def run(self, who: str, experiment: str, name: str, status: str = runs.COMPLETED, **body) -> str:
        made = self.call(who, "POST", "/api/training-runs", {"name": name, "base_experiment_id": experiment, **body})
        assert made.status_code == 201, made.get_json()
        run_id = made.get_json()["training_run"]["id"]
        extra = {runs.COMPLETED: REGISTERED, runs.NOT_BLESSED: {"gcs_artifacts_path": "gs://b/runs/x",
                                                                "is_blessed": False}}.get(status, {})
        self.repo.mutate_run(run_id, lambda d: {**d, "status": status, **extra})
        self.publisher.messages.clear()
        return run_id


@pytest.fixture
def world():
    w = World()
    w.recs_exp = w.catalog("alice@example.com", "recs quick test", {"recall_at_100": 0.31}, "gs://recs-data/")
    w.ads_exp = w.catalog("mallory@example.com", "ads quick test", {"recall_at_100": 0.32}, "gs://ads-data/")
    return w


def refused(response, team="recs", needed=None):
    assert response.status_code == 403, response.get_json()
    body = response.get_json()
    assert body["error"] == "forbidden" and body["team"] == team and (needed is None or body["needed"] == needed)
    return body["message"]


# ----------------------------------------------------------------------------- P2: another team's run


@pytest.mark.parametrize("attacker", ["mallory@example.com", "eve@example.com"])
def test_cancelling_alices_run_is_refused(world, attacker):
    run_id = world.run("alice@example.com", world.recs_exp, "recs-v1", runs.RUNNING)
    message = refused(world.call(attacker, "POST", f"/api/training-runs/{run_id}/cancel", {}), needed="trainer")
    assert f"{attacker} has no role on team 'recs'" in message and "needs trainer" in message
    assert world.repo.get_run(run_id)["status"] == runs.RUNNING and not world.publisher.messages


def test_retrying_alices_run_on_16_a100_machines_for_1000_epochs_is_refused(world):
    run_id = world.run("alice@example.com", world.recs_exp, "recs-v1", runs.FAILED)
    expensive = {"gpu_config": {"gpu_type": "NVIDIA_TESLA_A100", "gpu_count": 8, "machine_count": 16,
                                "preemptible": False}, "training_params": {"epochs": 1000}}
    refused(world.call("mallory@example.com", "POST", f"/api/training-runs/{run_id}/retry", expensive), needed="trainer")
    run = world.repo.get_run(run_id)
    assert run["attempt"] == 1 and run["status"] == runs.FAILED and not world.publisher.messages


def test_deleting_alices_run_is_refused_even_to_her_teams_deployer(world):
    run_id = world.run("alice@example.com", world.recs_exp, "recs-v1", runs.FAILED)
    refused(world.call("mallory@example.com", "DELETE", f"/api/training-runs/{run_id}"), needed="admin")
    refused(world.call("dan@example.com", "DELETE", f"/api/training-runs/{run_id}"), needed="admin")
    assert world.repo.get_run(run_id) is not None
    assert world.call("alice@example.com", "DELETE", f"/api/training-runs/{run_id}").status_code == 200


def test_push_anyway_and_deploy_of_alices_run_are_refused(world):
    unblessed = world.run("alice@example.com", world.recs_exp, "recs-v1", runs.NOT_BLESSED)
    completed = world.run("alice@example.com", world.recs_exp, "recs-v2")
    refused(world.call("mallory@example.com", "POST", f"/api/training-runs/{unblessed}/push-anyway", {}),
            needed="deployer")
    refused(world.call("mallory@example.com", "POST", f"/api/training-runs/{completed}/deploy",
                       {"endpoint_id": "ads-prod", "traffic_split": 100}), needed="deployer")
    assert "push_anyway" not in world.repo.get_run(unblessed) and "deployment" not in world.repo.get_run(completed)
    assert not world.publisher.messages


def test_reading_alices_run_its_logs_and_artifacts_is_refused(world):
    run_id = world.run("alice@example.com", world.recs_exp, "recs-v1")
    for suffix in ("", "/errors", "/artifacts", "/training-history", "/model-card"):
        refused(world.call("mallory@example.com", "GET", f"/api/training-runs/{run_id}{suffix}"), needed="viewer")


def test_batch_predictions_need_a_deployer_of_the_runs_team_and_write_only_into_its_data(world, tmp_path):
    """Batch predictions put the team's model to work and write where products read: deployer, like a deploy,
    and only into the team's own buckets and datasets (400 naming the field otherwise)."""
    run_id = world.run("alice@example.com", world.recs_exp, "recs-v1")
    world.repo.mutate_run(run_id, lambda d: {**d, "gcs_artifacts_path": str(tmp_path / "run")})
    path = f"/api/training-runs/{run_id}/batch-predictions"
    body = {"users": ["c1", "c2"], "gcs_output": "gs://recs-data/batch/"}
    refused(world.call("mallory@example.com", "POST", path, body), needed="deployer")
    refused(world.call("tom@example.com", "POST", path, body), needed="deployer")
    for field, value in (("gcs_output", "gs://ads-data/stolen/"), ("bigquery_output", "ads-proj.ads_data")):
        response = world.call("dan@example.com", "POST", path, {"users": ["c1"], field: value})
        assert response.status_code == 400 and response.get_json()["errors"][0]["field"] == field
    assert "batch_prediction" not in world.repo.get_run(run_id) and not world.publisher.messages
    allowed = world.call("dan@example.com", "POST", path, body)
    assert allowed.status_code == 202, allowed.get_json()
    assert world.repo.get_run(run_id)["batch_prediction"]["outputs"]["gcs"]["destination"] == "gs://recs-data/batch"


# ----------------------------------------------------------------------------- owned endpoints and model names


@pytest.mark.parametrize("endpoint", ["ads-prod", "projects/other/locations/europe-west4/endpoints/recs-prod",
                                      "projects/p/locations/europe-west4/endpoints/ads-prod"])
def test_deploying_to_an_endpoint_the_team_does_not_own_is_refused(world, endpoint):
    run_id = world.run("alice@example.com", world.recs_exp, "recs-v1")
    message = refused(world.call("dan@example.com", "POST", f"/api/training-runs/{run_id}/deploy",
                                 {"endpoint_id": endpoint}))
    assert "is not one team 'recs' owns" in message and "deployment" not in world.repo.get_run(run_id)


def test_a_run_that_would_deploy_to_another_teams_endpoint_after_training_is_refused(world):
    made = world.call("alice@example.com", "POST", "/api/training-runs", {
        "name": "recs-v1", "base_experiment_id": world.recs_exp,
        "deployment_config": {"action": "deploy_existing", "existing_endpoint_id": "ads-prod"}})
    assert "deployment_config.existing_endpoint_id" in refused(made)
    trainer = world.call("tom@example.com", "POST", "/api/training-runs", {
        "name": "recs-v1", "base_experiment_id": world.recs_exp, "deployment_config": {"action": "deploy_new"}})
    refused(trainer, needed="deployer")  # deploying after training is a deploy: the deployer's call
    assert not world.repo.runs


def test_naming_a_run_after_another_teams_model_is_a_400_on_name(world):
    made = world.call("mallory@example.com", "POST", "/api/training-runs",
                      {"name": "recs-v1", "base_experiment_id": world.ads_exp})
    assert made.status_code == 400
    assert made.get_json()["errors"][0]["field"] == "name" and "team 'ads' owns" in made.get_json()["errors"][0]["message"]
    schedule = world.call("mallory@example.com", "POST", "/api/training/schedules", {
        "name": "sneaky", "schedule_type": "daily", "time_of_day": "02:00",
        "run_template": {"name": "recs-v1", "base_experiment_id": world.ads_exp}})
    assert schedule.status_code == 400 and schedule.get_json()["errors"][0]["field"] == "run_template.name"
    assert not world.repo.runs and not world.repo.schedules


def test_building_a_run_or_an_experiment_on_alices_catalog_is_refused(world):
    refused(world.call("mallory@example.com", "POST", "/api/training-runs",
                       {"name": "ads-v1", "base_experiment_id": world.recs_exp}), needed="viewer")
    dataset = world.repo.get_catalog("experiments", world.recs_exp)["dataset_id"]
    features = world.repo.get_catalog("experiments", world.ads_exp)
    refused(world.call("mallory@example.com", "POST", "/api/experiments", {
        "name": "borrowed", "model_type": "retrieval", "dataset_id": dataset,
        "feature_config_id": features["feature_config_id"], "model_config_id": features["model_config_id"]}),
        needed="viewer")


def test_the_run_commands_consumer_refuses_a_deploy_to_an_endpoint_the_team_does_not_own(world):
    """Defence in depth: a deploy command whose recorded endpoint is not the team's (a document written
    around the API) fails the deployment with the reason instead of deploying."""
    run_id = world.run("alice@example.com", world.recs_exp, "recs-v1")
    world.repo.mutate_run(run_id, lambda d: {**d, "deployment": {
        "id": "d1", "status": "deploying", "endpoint_id": "ads-prod", "traffic_split": 100,
        "model_resource_name": REGISTERED["vertex_model_resource_name"], "model_version_id": "1"}})
    endpoints = FakeEndpoints()
    serving = Serving(FakeRegistrar(), endpoints, FakeTrainerJobs(), machine_type="n1-standard-4")
    outcome = commands.handle_command(RunCommand(command="deploy", run_id=run_id, deployment_id="d1"), world.repo,
                                      FakeBackend(), MemoryStore(), serving,
                                      effects=Effects(FakePublisher(), LocalTickerJobs()), declared=TEAMS)
    deployment = world.repo.get_run(run_id)["deployment"]
    assert outcome == "failed" and not endpoints.requests
    assert deployment["status"] == "failed" and "endpoint 'ads-prod' is not one team 'recs' owns" in deployment["error"]


# ----------------------------------------------------------------------------- P6: another team's schedule


def test_cancelling_pausing_or_triggering_alices_schedule_is_refused(world):
    made = world.call("alice@example.com", "POST", "/api/training/schedules", {
        "name": "nightly", "schedule_type": "daily", "time_of_day": "02:00",
        "run_template": {"name": "recs-nightly", "base_experiment_id": world.recs_exp}})
    assert made.status_code == 201, made.get_json()
    schedule_id = made.get_json()["schedule"]["id"]
    for action in ("cancel", "pause", "trigger"):
        refused(world.call("mallory@example.com", "POST", f"/api/training/schedules/{schedule_id}/{action}", {}),
                needed="trainer")
    refused(world.call("vic@example.com", "POST", f"/api/training/schedules/{schedule_id}/cancel", {}), needed="trainer")
    assert world.repo.get_schedule(schedule_id)["status"] == "active" and not world.repo.runs
    assert world.call("vic@example.com", "GET", f"/api/training/schedules/{schedule_id}").status_code == 200
    assert world.call("tom@example.com", "POST", f"/api/training/schedules/{schedule_id}/cancel", {}).status_code == 200


# ----------------------------------------------------------------------------- P5: invented metrics


def test_an_experiment_with_invented_metrics_does_not_top_alices_promotion_list(world):
    posted = world.call("mallory@example.com", "POST", "/api/experiments", {
        **{k: world.repo.get_catalog("experiments", world.ads_exp)[k]
           for k in ("dataset_id", "feature_config_id", "model_config_id")},
        "name": "best ever", "model_type": "retrieval", "metrics": {"recall_at_100": 0.999}})
    assert posted.status_code == 201
    top = world.call("alice@example.com", "GET", "/api/experiments/top-for-training?model_type=retrieval").get_json()
    assert [e["id"] for e in top["experiments"]] == [world.recs_exp]
    assert top["experiments"][0]["source"] == {"kind": "posted", "by": "alice@example.com"}
    mallorys = world.call("mallory@example.com", "GET", "/api/experiments/top-for-training?model_type=retrieval")
    assert mallorys.get_json()["experiments"][0]["source"]["by"] == "mallory@example.com"


def test_the_source_of_an_experiments_metrics_is_set_by_the_server_only(world):
    ids = {k: world.repo.get_catalog("experiments", world.ads_exp)[k]
           for k in ("dataset_id", "feature_config_id", "model_config_id")}
    forged = world.call("mallory@example.com", "POST", "/api/experiments", {
        **ids, "name": "verified?", "model_type": "retrieval", "source": {"kind": "pipeline", "by": "trainyard"}})
    assert forged.status_code == 400 and forged.get_json()["errors"][0]["field"] == "source"


# ----------------------------------------------------------------------------- lists show the caller's teams


def test_lists_show_only_the_teams_the_caller_may_view(world):
    mine = world.run("mallory@example.com", world.ads_exp, "ads-v1")
    world.run("alice@example.com", world.recs_exp, "recs-v1")
    world.call("alice@example.com", "POST", "/api/training/schedules", {
        "name": "nightly", "schedule_type": "daily", "time_of_day": "02:00",
        "run_template": {"name": "recs-nightly", "base_experiment_id": world.recs_exp}})

    listed = world.call("mallory@example.com", "GET", "/api/training-runs").get_json()
    assert [r["id"] for r in listed["training_runs"]] == [mine] and listed["total"] == 1
    assert world.call("mallory@example.com", "GET", "/api/training/schedules").get_json()["schedules"] == []
    for kind in ("datasets", "feature-configs", "model-configs", "experiments"):
        items = world.call("mallory@example.com", "GET", f"/api/{kind}").get_json()["items"]
        assert {i["team"] for i in items} == {"ads"}, kind
    found = world.call("mallory@example.com", "GET", "/api/experiments/search?q=quick").get_json()["experiments"]
    assert [e["id"] for e in found] == [world.ads_exp]

    eve = world.call("eve@example.com", "GET", "/api/training-runs").get_json()
    assert eve["training_runs"] == [] and eve["total"] == 0
    assert len(world.call("ops@example.com", "GET", "/api/training-runs").get_json()["training_runs"]) == 2


def test_more_teams_than_one_firestore_in_filter_holds_are_all_listed(world):
    """A caller on 31+ teams: the repository asks in chunks of 30 and merges (newest first)."""
    many = teams.parse({f"t{n}": {"members": {"multi@example.com": "trainer"}, "model_names": ["*"],
                               "buckets": [f"gs://t{n}-data/"]}
                        for n in range(35)})
    world.serve(many)
    for n in (0, 31, 34):
        made = world.call("multi@example.com", "POST", "/api/datasets", dataset_body(
            name=f"data {n}", team=f"t{n}", source={"kind": "files", "uri": f"gs://t{n}-data/a.csv", "format": "csv"}))
        assert made.status_code == 201, made.get_json()
    items = world.call("multi@example.com", "GET", "/api/datasets").get_json()["items"]
    assert sorted(i["team"] for i in items) == ["t0", "t31", "t34"]


# ----------------------------------------------------------------------------- the allowed paths, role by role


def test_each_role_may_do_what_it_grants_and_no_more(world):
    run_id = world.run("alice@example.com", world.recs_exp, "recs-v1", runs.RUNNING)
    assert world.call("vic@example.com", "GET", f"/api/training-runs/{run_id}").status_code == 200
    message = refused(world.call("vic@example.com", "POST", f"/api/training-runs/{run_id}/cancel", {}), needed="trainer")
    assert "vic@example.com is viewer on team 'recs'; cancelling a run" in message
    assert world.call("tom@example.com", "POST", f"/api/training-runs/{run_id}/cancel", {}).status_code in (200, 202)

    done = world.run("alice@example.com", world.recs_exp, "recs-v2")
    refused(world.call("tom@example.com", "POST", f"/api/training-runs/{done}/deploy", {}), needed="deployer")
    deployed = world.call("dan@example.com", "POST", f"/api/training-runs/{done}/deploy", {"endpoint_id": "recs-prod"})
    assert deployed.status_code == 202, deployed.get_json()
    assert [t for t, _, _ in world.publisher.messages] == [topics.RUN_COMMANDS]


def test_a_legacy_run_without_a_team_is_left_to_platform_admins(world):
    run_id = world.run("alice@example.com", world.recs_exp, "recs-v1", runs.FAILED)
    world.repo.mutate_run(run_id, lambda d: {k: v for k, v in d.items() if k != "team"})
    refused(world.call("alice@example.com", "GET", f"/api/training-runs/{run_id}"), team=None, needed="admin")
    assert world.call("alice@example.com", "GET", "/api/training-runs").get_json()["training_runs"] == []
    assert world.call("ops@example.com", "GET", f"/api/training-runs/{run_id}").status_code == 200


def test_each_decision_is_left_for_the_audit_trail(world):
    run_id = world.run("alice@example.com", world.recs_exp, "recs-v1", runs.RUNNING)
    with world.client:
        world.call("mallory@example.com", "POST", f"/api/training-runs/{run_id}/cancel", {})
        assert flask.g.authorization == {"team": "recs", "role": None, "needed": "trainer"}
    with world.client:
        world.call("tom@example.com", "POST", f"/api/training-runs/{run_id}/cancel", {})
        assert flask.g.authorization == {"team": "recs", "role": "trainer", "needed": "trainer"}


def test_only_admins_of_both_teams_move_a_resource_and_a_legacy_one_takes_a_team_from_a_platform_admin(world):
    run_id = world.run("alice@example.com", world.recs_exp, "recs-v1", runs.FAILED)
    move = {"kind": "training_runs", "id": run_id, "team": "ads"}
    refused(world.call("mallory@example.com", "POST", "/api/admin/team-assignments", move), needed="admin")
    refused(world.call("alice@example.com", "POST", "/api/admin/team-assignments", move), team="ads", needed="admin")
    assert world.repo.get_run(run_id)["team"] == "recs"

    world.repo.mutate_run(run_id, lambda d: {k: v for k, v in d.items() if k != "team"})  # made before teams
    legacy = {"kind": "training_runs", "id": run_id, "team": "recs"}
    refused(world.call("alice@example.com", "POST", "/api/admin/team-assignments", legacy), team=None)
    taken = world.call("ops@example.com", "POST", "/api/admin/team-assignments", legacy)
    assert taken.status_code == 200 and world.repo.get_run(run_id)["team"] == "recs"
    assert world.call("vic@example.com", "GET", f"/api/training-runs/{run_id}").status_code == 200

    experiment = {"kind": "experiments", "id": world.recs_exp, "team": "ads"}
    moved = world.call("ops@example.com", "POST", "/api/admin/team-assignments", experiment)
    assert moved.status_code == 409 and world.repo.get_catalog("experiments", world.recs_exp)["team"] == "recs"
    bad = world.call("ops@example.com", "POST", "/api/admin/team-assignments", {**experiment, "team": "nope"})
    assert bad.status_code == 400 and bad.get_json()["errors"][0]["field"] == "team"
    world.repo.catalog["experiments"][world.recs_exp].pop("team")  # a catalog entry made before teams
    assert world.call("alice@example.com", "GET", f"/api/experiments/{world.recs_exp}").status_code == 403
    assert world.call("ops@example.com", "POST", "/api/admin/team-assignments", experiment).status_code == 200
    assert world.call("mallory@example.com", "GET", f"/api/experiments/{world.recs_exp}").status_code == 200
