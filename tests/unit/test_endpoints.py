"""Endpoints on the in-memory fakes and the local endpoints port (shared/adapters/serving/local.py, on a temporary
directory): two runs deployed to one endpoint through the API and the run-commands consumer; the endpoint
listed (paged with a signed token) and read with its models, split, runs and history; its traffic changed and
a model undeployed through the API, carried out by the consumer, recorded once; what is refused and why."""
from __future__ import annotations

import pytest

from shared.adapters.serving.local import LocalEndpoints
from shared.domain import runs
from tests.unit.test_actions import make_run, post, published_commands, world  # noqa: F401 - the fixture
from tests.unit.test_canary import run_commands


@pytest.fixture
def served(world, tmp_path, monkeypatch):  # noqa: F811 - the fixture imported above
    """The API and the consumer share one local endpoints directory (as the local stack's processes do)."""
    endpoints = LocalEndpoints(str(tmp_path / "endpoints"), "http://127.0.0.1:1")
    monkeypatch.setattr(endpoints, "_load", lambda endpoint_id: {})  # no prediction server in a unit test
    world.deps.endpoints = world.serving.endpoints = endpoints
    return world


def get(w, path):
    from tests.unit.test_actions import AUTH

    return w.client.get(path, headers=AUTH)


def deploy(w, body=None) -> dict:
    run = make_run(w, runs.COMPLETED)
    response = post(w, f"/api/training-runs/{run['id']}/deploy", body or {})
    assert response.status_code == 202, response.get_json()
    assert run_commands(w) == ["deployed"]
    return w.repo.get_run(run["id"])


def two_on_one(w) -> tuple[dict, dict, str]:
    """The champion on its own endpoint, then a challenger beside it at 20 %."""
    old = deploy(w)
    endpoint = old["deployment"]["endpoint_resource_name"].rsplit("/", 1)[-1]
    new = deploy(w, {"endpoint_id": endpoint, "traffic_split": 20})
    return w.repo.get_run(old["id"]), new, endpoint


def test_an_endpoint_is_listed_and_read_with_its_models_runs_split_and_history(served):
    old, new, endpoint = two_on_one(served)
    listed = get(served, "/api/endpoints").get_json()
    assert [e["id"] for e in listed["endpoints"]] == [endpoint] and listed["next_page_token"] is None
    one = get(served, f"/api/endpoints/{endpoint}").get_json()["endpoint"]
    assert one["traffic_split"] == {old["deployment"]["deployed_model_id"]: 80, new["deployment"]["deployed_model_id"]: 20}
    runs_of = {m["id"]: (m["run"]["id"], m["run"]["name"], m["traffic_percent"]) for m in one["deployed_models"]}
    assert runs_of == {old["deployment"]["deployed_model_id"]: (old["id"], old["name"], 80),
                       new["deployment"]["deployed_model_id"]: (new["id"], new["name"], 20)}
    assert [m["run"]["model_version"] for m in one["deployed_models"]] == ["1", "1"]
    assert [(h["action"], h["run_id"]) for h in one["history"]] == [("deployed", old["id"]), ("deployed", new["id"])]
    assert one["teams"] == [old["team"]] and one["canary"] is None and one["under_way"] == []
    assert get(served, "/api/endpoints/nope").status_code == 404
    asked = []
    reads = served.deps.endpoints.get_endpoint
    served.deps.endpoints.get_endpoint = lambda endpoint_id: asked.append(endpoint_id) or reads(endpoint_id)
    for odd in ("..", "a.json", "%00x", "a%5Cb"):  # nothing that is no endpoint id reaches a file or a resource name
        assert get(served, f"/api/endpoints/{odd}").status_code == 404, odd
    assert asked == []


def test_the_list_pages_with_a_signed_token(served):
    made = sorted(deploy(served)["deployment"]["endpoint_resource_name"].rsplit("/", 1)[-1] for _ in range(3))
    first = get(served, "/api/endpoints?page_size=2").get_json()
    assert [e["id"] for e in first["endpoints"]] == made[:2] and first["next_page_token"]
    second = get(served, f"/api/endpoints?page_size=2&page_token={first['next_page_token']}").get_json()
    assert [e["id"] for e in second["endpoints"]] == made[2:] and second["next_page_token"] is None
    forged = first["next_page_token"][:-2] + ("AA" if not first["next_page_token"].endswith("AA") else "BB")
    refused = get(served, f"/api/endpoints?page_token={forged}")
    assert refused.status_code == 400 and refused.get_json()["errors"][0]["field"] == "page_token"


def test_a_traffic_change_is_validated_queued_carried_out_and_recorded_once(served):
    old, new, endpoint = two_on_one(served)
    a, b = old["deployment"]["deployed_model_id"], new["deployment"]["deployed_model_id"]

    def refused(body, status=400):
        response = post(served, f"/api/endpoints/{endpoint}/traffic", body)
        assert response.status_code == status, response.get_json()
        return response.get_json()

    assert refused({"traffic_split": {a: 50, b: 40}})["errors"][0] == {
        "field": "traffic_split", "message": "must add up to 100 (it adds up to 90)"}
    assert refused({"traffic_split": {a: 50, "ghost": 50}})["errors"][0]["field"] == "traffic_split.ghost"
    assert refused({"traffic_split": {a: 150}})["errors"][0]["field"] == f"traffic_split.{a}"
    assert refused({})["errors"][0]["field"] == "traffic_split"
    assert not published_commands(served)

    response = post(served, f"/api/endpoints/{endpoint}/traffic", {"traffic_split": {a: 50, b: 50}, "reason": "A/B"})
    assert response.status_code == 202 and response.get_json()["run_id"] == new["id"]  # the newest run records it
    (command,) = published_commands(served)
    assert run_commands(served, kinds=None) == ["traffic_changed"]
    assert served.serving.endpoints.traffic(f"local/endpoints/{endpoint}") == {a: 50, b: 50}
    served.publisher.messages.append(("run-commands", command, {}))
    assert run_commands(served) == ["traffic_changed"]  # a redelivery: the split is in place, recorded once
    history = get(served, f"/api/endpoints/{endpoint}").get_json()["endpoint"]["history"]
    assert [h["action"] for h in history] == ["deployed", "deployed", "traffic_changed"]
    assert history[-1]["from"] == {a: 80, b: 20} and history[-1]["to"] == {a: 50, b: 50}
    assert history[-1]["reason"] == "A/B" and history[-1]["by"] == "dev@example.com"
    assert served.repo.get_run(new["id"])["deployment"]["traffic"] == {a: 50, b: 50}
    again = post(served, f"/api/endpoints/{endpoint}/traffic", {"traffic_split": {a: 50, b: 50}})
    assert again.status_code == 200 and again.get_json()["changed"] is False and not published_commands(served)


def test_an_undeploy_hands_the_traffic_over_and_the_last_model_needs_force(served):
    old, new, endpoint = two_on_one(served)
    a, b = old["deployment"]["deployed_model_id"], new["deployment"]["deployed_model_id"]
    missing = post(served, f"/api/endpoints/{endpoint}/undeploy", {"deployed_model_id": "ghost"})
    assert missing.status_code == 400 and missing.get_json()["errors"][0]["field"] == "deployed_model_id"

    response = post(served, f"/api/endpoints/{endpoint}/undeploy", {"deployed_model_id": b})
    assert response.status_code == 202 and response.get_json()["run_id"] == new["id"]  # the model's own run
    assert run_commands(served) == ["undeployed"]
    assert served.serving.endpoints.traffic(f"local/endpoints/{endpoint}") == {a: 100}
    stored = served.repo.get_run(new["id"])
    assert stored["deployment_status"] == "undeployed" and stored["is_deployed"] is False
    assert stored["endpoint_history"][-1]["from"] == {a: 80, b: 20} and stored["endpoint_history"][-1]["to"] == {a: 100}
    repeat = post(served, f"/api/endpoints/{endpoint}/undeploy", {"deployed_model_id": b})
    assert repeat.status_code == 200 and repeat.get_json()["changed"] is False

    last = post(served, f"/api/endpoints/{endpoint}/undeploy", {"deployed_model_id": a})
    assert last.status_code == 409 and "force: true" in last.get_json()["message"]
    assert not published_commands(served)
    forced = post(served, f"/api/endpoints/{endpoint}/undeploy", {"deployed_model_id": a, "force": True})
    assert forced.status_code == 202 and run_commands(served) == ["undeployed"]
    assert served.serving.endpoints.get_endpoint(endpoint).deployed_models == ()
    assert served.repo.get_run(old["id"])["deployment_status"] == "undeployed"


def test_a_change_waits_while_a_deploy_or_canary_owns_the_split(served):
    old, new, endpoint = two_on_one(served)
    served.repo.mutate_run(new["id"], lambda d: {**d, "deployment": {**d["deployment"], "status": "canary"},
                                                 "deployment_status": "canary"})
    a = old["deployment"]["deployed_model_id"]
    response = post(served, f"/api/endpoints/{endpoint}/traffic", {"traffic_split": {a: 100}})
    assert response.status_code == 409 and "roll it back" in response.get_json()["message"]
    assert get(served, f"/api/endpoints/{endpoint}").get_json()["endpoint"]["canary"]["run_id"] == new["id"]


def test_the_answers_match_the_openapi_document(served):
    """What the fuzz checks on the local stack, here for each endpoint operation: the answer fits its documented
    schema (the schemas of shared/http/endpoint_routes.py, resolved against the whole document)."""
    import jsonschema

    from shared.http.openapi import document

    spec = document()
    old, new, endpoint = two_on_one(served)

    def fits(response, path: str, method: str):
        schema = spec["paths"][path][method]["responses"][str(response.status_code)]["content"]["application/json"]["schema"]
        jsonschema.validate(response.get_json(), {**schema, "components": spec["components"]})

    fits(get(served, "/api/endpoints"), "/api/endpoints", "get")
    fits(get(served, f"/api/endpoints/{endpoint}"), "/api/endpoints/{endpoint_id}", "get")
    a = old["deployment"]["deployed_model_id"]
    fits(post(served, f"/api/endpoints/{endpoint}/traffic", {"traffic_split": {a: 100}}),
         "/api/endpoints/{endpoint_id}/traffic", "post")
    run_commands(served)
    fits(get(served, f"/api/endpoints/{endpoint}"), "/api/endpoints/{endpoint_id}", "get")  # with a by-hand change
    fits(post(served, f"/api/endpoints/{endpoint}/undeploy", {"deployed_model_id": new["deployment"]["deployed_model_id"]}),
         "/api/endpoints/{endpoint_id}/undeploy", "post")
    fits(post(served, f"/api/endpoints/{endpoint}/traffic", {"traffic_split": {a: 1}}),
         "/api/endpoints/{endpoint_id}/traffic", "post")  # a 400 fits the Error schema
