"""Canary deploys on the local side with the real local prediction server (scripts/prediction_server.py
over HTTP) and real SavedModels: the run is deployed through the API, its commands carried out by the
run-commands code with the local serving adapters (endpoint file, the server's own counters), and the
watch driven by reconciler passes. A clean canary is promoted after its watch; a canary whose model
fails every prediction is rolled back automatically, and the endpoint answers from the old model again.
(The repository is the in-memory fake: the Firestore side of the loop is covered by the unit tests.)"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests

from shared.adapters.artifact_store import ArtifactStore
from shared.adapters.run_data_sources import RunDataSources
from shared.adapters.serving import Serving
from shared.adapters.serving.local import LocalEndpoints, LocalServingMetrics, NoTrainerJobs, read_endpoint
from shared.contract import topics
from shared.contract.messages import RunCommand
from shared.domain import runs
from shared.http.app import Dependencies, create_app
from shared.services import commands, intake, reconcile
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.services.ports import Effects
from tests.builders import demo_member, local_settings, run_body, seed_catalog
from tests.fakes import FakeBackend, FakePublisher, InMemoryRepository
from tests.integration.test_local_endpoint import build_retrieval_saved_model, deploy_request, server  # noqa: F401

pytestmark = pytest.mark.integration
TOKEN = "it-token"
LIMITS = {"percent": 50, "watch_minutes": 15, "max_error_rate": 0.05, "min_requests": 10}


def build_failing_saved_model(path: str) -> None:
    """Loads and answers the serving signature's shape, but every call fails (a broken export)."""
    import tensorflow as tf

    class Broken(tf.Module):
        @tf.function(input_signature=[{"customer_id": tf.TensorSpec([None], tf.string, name="customer_id")}])
        def retrieve(self, raw):
            tf.debugging.assert_equal(tf.size(raw["customer_id"]), -1, message="the export is broken")
            return {"ids": tf.fill([tf.size(raw["customer_id"]), 10], "p0"),
                    "scores": tf.zeros([tf.size(raw["customer_id"]), 10])}

    module = Broken()
    tf.saved_model.save(module, path, signatures={"serving_default": module.retrieve.get_concrete_function()})


class World:
    def __init__(self, endpoints_dir: str, url: str):
        self.repo, self.publisher, self.store = InMemoryRepository(), FakePublisher(), ArtifactStore()
        self.settings = local_settings("dev@example.com", TOKEN)
        self.deps = Dependencies(repo=self.repo, publisher=self.publisher, store=self.store, settings=self.settings,
                                 run_data=RunDataSources(None, None))
        self.client = create_app(self.deps).test_client()
        self.serving = Serving(None, LocalEndpoints(endpoints_dir, url), NoTrainerJobs(),
                               metrics=LocalServingMetrics(url))
        self.endpoints_dir, self.url = endpoints_dir, url
        self.ids = seed_catalog(self.repo)

    def completed_run(self, artifacts: str) -> dict:
        run = intake.create_run(self.repo, Effects(self.publisher, LocalTickerJobs()), run_body(self.ids["experiment"]),
                                *demo_member("dev@example.com"))
        return self.repo.mutate_run(run["id"], lambda d: {
            **d, "status": runs.COMPLETED, "is_blessed": True, "gcs_artifacts_path": artifacts,
            "vertex_model_name": d["name"], "vertex_model_resource_name": "registry/product-recommender",
            "vertex_model_version": "2"})

    def post(self, path, body):
        return self.client.post(path, data=json.dumps(body),
                                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})

    def carry_out_commands(self) -> list[str]:
        done = []
        for topic, payload, _ in list(self.publisher.messages):
            if topic == topics.RUN_COMMANDS:
                done.append(commands.handle_command(RunCommand.model_validate(payload), self.repo, FakeBackend(),
                                                    self.store, self.serving, effects=self.deps.effects,
                                                    declared=self.settings.teams))
        self.publisher.messages.clear()
        return done

    def reconcile(self) -> dict:
        return reconcile.reconcile(self.repo, self.deps.effects, FakeBackend(), self.store, self.settings)

    def end_watch(self, run_id: str) -> None:
        self.repo.mutate_run(run_id, lambda d: {**d, "deployment": {**d["deployment"], "canary": {
            **d["deployment"]["canary"], "watch_until": runs.now() - timedelta(seconds=1)}}})


@pytest.fixture
def world(server):  # noqa: F811 - the prediction server of test_local_endpoint
    return World(*server)


def serve_base(world, tmp_path, endpoint: str) -> str:
    base_model = str(tmp_path / "base")
    build_retrieval_saved_model(base_model, seed=1)
    return LocalEndpoints(world.endpoints_dir, world.url).deploy(deploy_request(endpoint, base_model, "1")).deployed_model_id


def stage(world, tmp_path, endpoint: str, build) -> dict:
    artifacts = str(tmp_path / "run")
    build(f"{artifacts}/model/saved_model")
    run = world.completed_run(artifacts)
    response = world.post(f"/api/training-runs/{run['id']}/deploy", {"endpoint_id": endpoint, "canary": LIMITS})
    assert response.status_code == 202, response.get_json()
    assert world.carry_out_commands() == ["canary"]
    return world.repo.get_run(run["id"])


def predict(world, endpoint: str, n: int) -> dict:
    served = {}
    for i in range(n):
        answer = requests.post(f"{world.url}/v1/endpoints/{endpoint}:predict",
                               json={"instances": [{"customer_id": f"c{i % 20}"}]}, timeout=60)
        served.setdefault(answer.status_code, []).append(answer.json().get("deployed_model_id"))
    return served


def test_a_clean_canary_is_promoted_after_its_watch(world, tmp_path):
    base = serve_base(world, tmp_path, "tr-canary-clean")
    run = stage(world, tmp_path, "tr-canary-clean", lambda path: build_retrieval_saved_model(path, seed=2))
    new = run["deployment"]["deployed_model_id"]
    assert read_endpoint(world.endpoints_dir, "tr-canary-clean")["traffic_split"] == {new: 50, base: 50}
    served = predict(world, "tr-canary-clean", 40)
    assert set(served) == {200} and set(served[200]) == {new, base}
    world.reconcile()
    assert world.carry_out_commands() == ["watching"]  # inside the watch
    check = world.repo.get_run(run["id"])["deployment"]["canary"]["last_check"]
    assert check["requests"] == served[200].count(new) and check["errors"] == 0
    world.end_watch(run["id"])
    world.reconcile()
    assert world.carry_out_commands() == ["promoted"]
    assert read_endpoint(world.endpoints_dir, "tr-canary-clean")["traffic_split"] == {new: 100, base: 0}
    assert set(predict(world, "tr-canary-clean", 5)[200]) == {new}
    history = world.repo.get_run(run["id"])["endpoint_history"]
    assert [(e["action"], e["to"]) for e in history] == [("canary_started", {new: 50, base: 50}),
                                                          ("promoted", {new: 100, base: 0})]


def test_a_canary_whose_model_fails_is_rolled_back(world, tmp_path):
    base = serve_base(world, tmp_path, "tr-canary-broken")
    run = stage(world, tmp_path, "tr-canary-broken", build_failing_saved_model)
    new = run["deployment"]["deployed_model_id"]
    served = predict(world, "tr-canary-broken", 60)
    assert set(served[500]) == {new} and set(served[200]) == {base}  # every canary answer failed
    world.reconcile()
    assert world.carry_out_commands() == ["rolled_back"]
    stored = world.repo.get_run(run["id"])
    assert stored["deployment_status"] == "rolled_back" and stored["deployment"]["canary"]["status"] == "breached"
    assert "error rate 100.0%" in stored["endpoint_history"][-1]["reason"]
    assert read_endpoint(world.endpoints_dir, "tr-canary-broken")["traffic_split"] == {new: 0, base: 100}
    after = predict(world, "tr-canary-broken", 10)
    assert set(after) == {200} and set(after[200]) == {base}
    world.reconcile()
    assert world.carry_out_commands() == []  # decided: no more checks
