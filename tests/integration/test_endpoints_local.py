"""Endpoints on the local side with the real local prediction server (scripts/prediction_server.py over HTTP)
and real SavedModels: two runs deployed to one endpoint through the API; the endpoint listed and read through
the API (the local endpoints port the API reads); its traffic moved and models undeployed through the API,
carried out by the run-commands code — and the server answers accordingly: only from the model with the
traffic, still after the other is undeployed, and no longer once the last is undeployed with force.
(The repository is the in-memory fake, as in test_canary_local.py.)"""
from __future__ import annotations

import pytest

from tests.integration.test_canary_local import World, predict
from tests.integration.test_local_endpoint import build_retrieval_saved_model, server  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


@pytest.fixture
def world(server):  # noqa: F811 - the prediction server of test_local_endpoint
    w = World(*server)
    w.deps.endpoints = w.serving.endpoints  # the API reads the endpoints run-commands writes, as the stack's do
    return w


def deployed(world, tmp_path, name: str, seed: int, body: dict) -> dict:
    artifacts = str(tmp_path / name)
    build_retrieval_saved_model(f"{artifacts}/model/saved_model", seed=seed)
    run = world.completed_run(artifacts)
    response = world.post(f"/api/training-runs/{run['id']}/deploy", body)
    assert response.status_code == 202, response.get_json()
    assert world.carry_out_commands() == ["deployed"]
    return world.repo.get_run(run["id"])


def get(world, path):
    return world.client.get(path, headers={"Authorization": "Bearer it-token"})


def test_traffic_and_undeploy_through_the_api_change_what_the_server_answers(world, tmp_path):
    old = deployed(world, tmp_path, "old", 1, {})
    endpoint = old["deployment"]["endpoint_resource_name"].rsplit("/", 1)[-1]
    new = deployed(world, tmp_path, "new", 2, {"endpoint_id": endpoint, "traffic_split": 30})
    a, b = old["deployment"]["deployed_model_id"], new["deployment"]["deployed_model_id"]
    assert endpoint in [e["id"] for e in get(world, "/api/endpoints").get_json()["endpoints"]]
    one = get(world, f"/api/endpoints/{endpoint}").get_json()["endpoint"]
    assert one["traffic_split"] == {a: 70, b: 30}
    assert {m["id"]: m["run"]["id"] for m in one["deployed_models"]} == {a: old["id"], b: new["id"]}

    assert world.post(f"/api/endpoints/{endpoint}/traffic", {"traffic_split": {b: 100}}).status_code == 202
    assert world.carry_out_commands() == ["traffic_changed"]
    assert set(predict(world, endpoint, 10)[200]) == {b}

    assert world.post(f"/api/endpoints/{endpoint}/undeploy", {"deployed_model_id": a}).status_code == 202
    assert world.carry_out_commands() == ["undeployed"]
    assert set(predict(world, endpoint, 5)[200]) == {b}
    assert world.repo.get_run(old["id"])["deployment_status"] == "undeployed"

    last = world.post(f"/api/endpoints/{endpoint}/undeploy", {"deployed_model_id": b})
    assert last.status_code == 409 and "force" in last.get_json()["message"]
    assert world.post(f"/api/endpoints/{endpoint}/undeploy", {"deployed_model_id": b, "force": True}).status_code == 202
    assert world.carry_out_commands() == ["undeployed"]
    assert set(predict(world, endpoint, 1)) == {400}  # the server: no model taking traffic
    history = get(world, f"/api/endpoints/{endpoint}").get_json()["endpoint"]["history"]
    assert [h["action"] for h in history] == ["deployed", "deployed", "traffic_changed", "undeployed", "undeployed"]
