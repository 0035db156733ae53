"""Importing catalog entries (POST /api/<kind>:import, docs/import.md) keeps the catalog's rules: the
caller needs the trainer role on the entry's team, an imported experiment may only point at entries
the caller may read, a dataset only at the team's own data, and every import is audited. Another team
importing the same source run gets an entry of its own: it neither sees nor changes this team's."""
from __future__ import annotations

import pytest

from tests.builders import dataset_body, feature_config_body, model_config_body
from tests.security.test_ownership import World, refused

ORIGIN = {"source": "mlflow", "location": "http://mlflow.internal:5000", "experiment": "recs-quick-tests",
          "run_id": "0123abcd"}


def dataset(bucket="gs://recs-data/", team="recs"):
    return dataset_body(team=team, source={"kind": "files", "uri": f"{bucket}transactions.csv", "format": "csv"})


@pytest.fixture
def world():
    return World()


@pytest.mark.parametrize("who,needed", [("mallory@example.com", None), ("eve@example.com", None),
                                        ("vic@example.com", "trainer")])
def test_importing_into_recs_needs_a_trainer_of_recs(world, who, needed):
    refused(world.call(who, "POST", "/api/datasets:import", {"origin": ORIGIN, "item": dataset()}), needed=needed)
    assert world.repo.catalog.get("datasets", {}) == {}


def test_a_trainer_imports_and_re_imports_without_duplicates_each_call_audited(world):
    first = world.call("tom@example.com", "POST", "/api/datasets:import", {"origin": ORIGIN, "item": dataset()})
    assert first.status_code == 201 and first.get_json()["result"] == "created"
    again = world.call("tom@example.com", "POST", "/api/datasets:import", {"origin": ORIGIN, "item": dataset()})
    assert again.status_code == 200 and again.get_json()["result"] == "unchanged"
    assert again.get_json()["item"]["id"] == first.get_json()["item"]["id"]
    assert len(world.repo.catalog["datasets"]) == 1
    audited = [a for a in world.repo.audit.values() if a.get("path") == "/api/datasets:import"]
    assert [(a["actor"], a["status"], a["authorization"]["role"]) for a in audited] == [
        ("tom@example.com", 201, "trainer"), ("tom@example.com", 200, "trainer")]


def test_an_imported_dataset_reads_only_its_teams_data(world):
    made = world.call("tom@example.com", "POST", "/api/datasets:import",
                      {"origin": ORIGIN, "item": dataset(bucket="gs://ads-data/")})
    assert made.status_code == 400, made.get_json()
    assert [e["field"] for e in made.get_json()["errors"]] == ["source.files.uri"]


def test_an_imported_experiment_on_another_teams_configs_is_refused(world):
    ids = {kind: world.call("alice@example.com", "POST", f"/api/{kind}:import",
                            {"origin": ORIGIN, "item": body}).get_json()["item"]["id"]
           for kind, body in (("datasets", dataset()), ("feature-configs", feature_config_body(team="recs")),
                              ("model-configs", model_config_body(team="recs")))}
    experiment = {"name": "run 0123", "model_type": "retrieval", "team": "ads", "dataset_id": ids["datasets"],
                  "feature_config_id": ids["feature-configs"], "model_config_id": ids["model-configs"]}
    refused(world.call("mallory@example.com", "POST", "/api/experiments:import",
                       {"origin": ORIGIN, "item": experiment}))
    assert world.repo.catalog.get("experiments", {}) == {}


def test_another_team_importing_the_same_run_gets_its_own_entry(world):
    recs = world.call("tom@example.com", "POST", "/api/datasets:import", {"origin": ORIGIN, "item": dataset()})
    ads = world.call("mallory@example.com", "POST", "/api/datasets:import",
                     {"origin": ORIGIN, "item": dataset(bucket="gs://ads-data/", team="ads")})
    assert ads.status_code == 201 and recs.status_code == 201
    assert ads.get_json()["item"]["id"] != recs.get_json()["item"]["id"]
    refused(world.call("mallory@example.com", "GET", f"/api/datasets/{recs.get_json()['item']['id']}"))


def test_the_answer_is_the_documented_one(world):
    import jsonschema

    made = world.call("tom@example.com", "POST", "/api/datasets:import", {"origin": ORIGIN, "item": dataset()})
    again = world.call("tom@example.com", "POST", "/api/datasets:import", {"origin": ORIGIN, "item": dataset()})
    operation = world.call("tom@example.com", "GET", "/api/openapi.json").get_json()["paths"][
        "/api/datasets:import"]["post"]
    for answer in (made, again):
        schema = operation["responses"][str(answer.status_code)]["content"]["application/json"]["schema"]
        jsonschema.validate(answer.get_json(), schema)
