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


def queued(world, *changes) -> list[str]:
    """Each (caller, change, body) sent is queued (202); the commands queued, in order."""
    for who, change, body in changes:
        response = world.call(who, "POST", f"/api/endpoints/{ENDPOINT}/{change}", body)
        assert response.status_code == 202, response.get_json()
    return [p["command"] for _, p, _ in world.publisher.messages]


def test_the_teams_deployer_changes_it(world):
    assert queued(world, ("dan@example.com", "traffic", TRAFFIC), ("dan@example.com", "undeploy", UNDEPLOY)) == [
        "endpoint_traffic", "undeploy"]
    assert {p["run_id"] for _, p, _ in world.publisher.messages} == {world.run_id}


# ----------------------------------------------------------------------------- an endpoint shared by two teams

def entry(run_id: str, model: str, by: str) -> dict:
    return {"at": f"2026-01-0{1 if model == 'm1' else 2}T00:00:00+00:00", "action": "deployed", "by": by,
            "endpoint": f"local/endpoints/{ENDPOINT}", "deployed_model_id": model, "from": {}, "to": {model: 100},
            "reason": f"deployed by {by}", "change_id": f"c-{model}"}


@pytest.fixture
def shared(world):
    """recs-prod serves m2 from alice's recs run and m1 (90%) from mallory's ads run."""
    world.ads_exp = world.catalog("mallory@example.com", "ads quick test", {"recall_at_100": 0.32}, "gs://ads-data/")
    world.ads_run = world.run("mallory@example.com", world.ads_exp, "ads-v1")
    for run_id, model, by in ((world.ads_run, "m1", "mallory@example.com"), (world.run_id, "m2", "alice@example.com")):
        world.repo.mutate_run(run_id, lambda d, model=model, by=by, run_id=run_id: {
            **d, "deployment_status": "deployed", "is_deployed": True, "endpoint_history": [entry(run_id, model, by)],
            "deployment": {"id": f"d-{model}", "status": "deployed", "endpoint_id": ENDPOINT,
                           "endpoint_resource_name": f"local/endpoints/{ENDPOINT}", "deployed_model_id": model}})
    return world


@pytest.mark.parametrize("member, theirs, mine, other", [
    ("alice@example.com", "m2", "m1", ("ads-v1", "mallory@example.com")),
    ("mallory@example.com", "m1", "m2", ("recs-v1", "alice@example.com"))])
def test_a_shared_endpoint_shows_both_teams_the_other_teams_model_only_as_such(shared, member, theirs, mine, other):
    own_run = shared.run_id if theirs == "m2" else shared.ads_run
    other_run = shared.ads_run if theirs == "m2" else shared.run_id
    listed_ = shared.call(member, "GET", "/api/endpoints").get_json()["endpoints"]
    one = shared.call(member, "GET", f"/api/endpoints/{ENDPOINT}").get_json()["endpoint"]
    for endpoint in (listed_[0], one):
        models = {m["id"]: m["run"] for m in endpoint["deployed_models"]}
        assert models[theirs]["id"] == own_run
        assert models[mine] == {"of_another_team": True}
    by_model = {h["deployed_model_id"]: h for h in one["history"]}
    assert by_model[theirs]["run_id"] == own_run and by_model[theirs]["by"] == member
    assert by_model[mine] == {"at": by_model[mine]["at"], "action": "deployed", "endpoint": f"local/endpoints/{ENDPOINT}",
                              "deployed_model_id": mine, "from": {}, "to": {mine: 100}, "change_id": f"c-{mine}",
                              "of_another_team": True}
    text = str(listed_) + str(one)
    assert all(secret not in text for secret in (*other, f"'{other_run}'")), text  # no name, creator or run id


def test_a_deployer_may_not_move_or_take_off_another_teams_model(shared):
    refused(shared.call("dan@example.com", "POST", f"/api/endpoints/{ENDPOINT}/traffic", TRAFFIC), team="ads",
            needed="deployer")
    refused(shared.call("dan@example.com", "POST", f"/api/endpoints/{ENDPOINT}/undeploy", {"deployed_model_id": "m1"}),
            team="ads", needed="deployer")
    refused(shared.call("mallory@example.com", "POST", f"/api/endpoints/{ENDPOINT}/undeploy", UNDEPLOY), needed="deployer")
    refused(shared.call("mallory@example.com", "POST", f"/api/endpoints/{ENDPOINT}/traffic", TRAFFIC), needed="deployer")
    assert not shared.publisher.messages


def test_a_deployer_takes_off_their_own_model_and_a_platform_admin_moves_any(shared):
    assert queued(shared, ("dan@example.com", "undeploy", UNDEPLOY), ("ops@example.com", "traffic", TRAFFIC)) == [
        "undeploy", "endpoint_traffic"]
