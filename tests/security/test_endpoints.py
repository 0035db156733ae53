"""Endpoints belong to the teams of the runs deployed to them (shared/services/endpoint_views.py). Replayed through
the HTTP app as deployed (Google ID tokens, tests/security/test_ownership.py's teams): the team's viewer and
trainer see the endpoint but may not change its traffic or undeploy (403 naming deployer); another team's admin and
a signed-in stranger do not see it at all (absent from the list, 404 by id and on a change) and nothing is queued;
an endpoint no run was deployed to is a platform admin's alone; the team's deployer is let through."""
from __future__ import annotations

import pytest

from shared import composition
from shared.adapters.serving.local import LocalEndpoints, write_endpoint
from tests.security.test_ownership import World, refused

ENDPOINT = "recs-prod"
TRAFFIC = {"traffic_split": {"m1": 50, "m2": 50}}
UNDEPLOY = {"deployed_model_id": "m2"}


@pytest.fixture
def world(tmp_path, monkeypatch):
    directory = str(tmp_path / "endpoints")
    endpoints = LocalEndpoints(directory, "http://127.0.0.1:1")
    monkeypatch.setattr(composition, "endpoint_reader", lambda settings: endpoints)  # the API's endpoints port
    w = World()
    w.recs_exp = w.catalog("alice@example.com", "recs quick test", {"recall_at_100": 0.31}, "gs://recs-data/")
    write_endpoint(directory, {"endpoint_id": ENDPOINT, "display_name": "recs prod", "traffic_split": {"m1": 90, "m2": 10},
                               "deployed_models": [{"id": "m1", "model": "/r/a", "model_version_id": "1"},
                                                   {"id": "m2", "model": "/r/b", "model_version_id": "2"}]})
    write_endpoint(directory, {"endpoint_id": "unowned", "display_name": "made in the console", "traffic_split": {},
                               "deployed_models": []})
    w.run_id = w.run("alice@example.com", w.recs_exp, "recs-v1")
    w.repo.mutate_run(w.run_id, lambda d: {**d, "deployment_status": "deployed", "is_deployed": True, "deployment": {
        "id": "d-1", "status": "deployed", "endpoint_id": ENDPOINT, "endpoint_resource_name": f"local/endpoints/{ENDPOINT}",
        "deployed_model_id": "m2"}})
    return w


def listed(world, who) -> list[str]:
    response = world.call(who, "GET", "/api/endpoints")
    assert response.status_code == 200, response.get_json()
    return [e["id"] for e in response.get_json()["endpoints"]]


@pytest.mark.parametrize("member", ["vic@example.com", "tom@example.com"])
def test_the_teams_viewer_and_trainer_see_it_and_may_not_change_it(world, member):
    assert listed(world, member) == [ENDPOINT]
    assert world.call(member, "GET", f"/api/endpoints/{ENDPOINT}").status_code == 200
    refused(world.call(member, "POST", f"/api/endpoints/{ENDPOINT}/traffic", TRAFFIC), needed="deployer")
    refused(world.call(member, "POST", f"/api/endpoints/{ENDPOINT}/undeploy", UNDEPLOY), needed="deployer")
    assert not world.publisher.messages


@pytest.mark.parametrize("attacker", ["mallory@example.com", "eve@example.com"])
def test_another_team_and_a_stranger_do_not_see_it(world, attacker):
    assert listed(world, attacker) == []
    for method, path, body in (("GET", f"/api/endpoints/{ENDPOINT}", None),
                               ("POST", f"/api/endpoints/{ENDPOINT}/traffic", TRAFFIC),
                               ("POST", f"/api/endpoints/{ENDPOINT}/undeploy", UNDEPLOY),
                               ("GET", "/api/endpoints/unowned", None)):
        assert world.call(attacker, method, path, body).status_code == 404, (method, path)
    assert not world.publisher.messages


def test_an_endpoint_of_no_run_is_a_platform_admins_alone(world):
    assert listed(world, "ops@example.com") == [ENDPOINT, "unowned"]
    assert listed(world, "alice@example.com") == [ENDPOINT]


def test_the_teams_deployer_changes_it(world):
    response = world.call("dan@example.com", "POST", f"/api/endpoints/{ENDPOINT}/traffic", TRAFFIC)
    assert response.status_code == 202, response.get_json()
    response = world.call("dan@example.com", "POST", f"/api/endpoints/{ENDPOINT}/undeploy", UNDEPLOY)
    assert response.status_code == 202, response.get_json()
    assert [p["command"] for _, p, _ in world.publisher.messages] == ["endpoint_traffic", "undeploy"]
    assert {p["run_id"] for _, p, _ in world.publisher.messages} == {world.run_id}
