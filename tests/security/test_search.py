"""Lists at any size (issue 26 part 4): a search, a filter or a page token never shows another team's
runs, schedules or catalog entries. Through the HTTP app as the teams of test_ownership.py: alice (recs)
and mallory (admin of ads)."""
from __future__ import annotations

import pytest

from tests.security.test_ownership import World


@pytest.fixture
def world():
    w = World()
    w.recs_exp = w.catalog("alice@example.com", "recs quick test", {"recall_at_100": 0.31}, "gs://recs-data/")
    w.ads_exp = w.catalog("mallory@example.com", "ads quick test", {"recall_at_100": 0.32}, "gs://ads-data/")
    w.recs_runs = [w.run("alice@example.com", w.recs_exp, f"recs-shared-name-{n}") for n in range(3)]
    w.ads_runs = [w.run("mallory@example.com", w.ads_exp, f"ads-shared-name-{n}") for n in range(3)]
    return w


def names(response, key="training_runs"):
    assert response.status_code == 200, response.get_json()
    return sorted(r["name"] for r in response.get_json()[key])


def test_a_search_matching_both_teams_returns_only_the_callers(world):
    assert names(world.call("mallory@example.com", "GET", "/api/training-runs?search=shared-name")) == \
        [f"ads-shared-name-{n}" for n in range(3)]
    assert names(world.call("mallory@example.com", "GET", "/api/training-runs?search=recs-shared")) == []
    assert names(world.call("eve@example.com", "GET", "/api/training-runs?search=shared")) == []
    assert len(names(world.call("ops@example.com", "GET", "/api/training-runs?search=shared-name"))) == 6


def test_asking_for_another_teams_runs_by_team_by_id_or_by_registry_lists_nothing(world):
    for query in ("team=recs", f"search={world.recs_runs[0]}", "team=recs&search=recs",
                  "status=completed,not_blessed&registered=true&team=recs"):
        response = world.call("mallory@example.com", "GET", f"/api/training-runs?{query}")
        assert names(response) == [] and response.get_json()["next_page_token"] is None, query
    assert names(world.call("vic@example.com", "GET", "/api/training-runs?team=recs&page_size=2")) == \
        ["recs-shared-name-1", "recs-shared-name-2"]


def test_a_page_token_issued_to_one_person_is_refused_to_another(world):
    token = world.call("alice@example.com", "GET", "/api/training-runs?page_size=1").get_json()["next_page_token"]
    assert token
    stolen = world.call("mallory@example.com", "GET", f"/api/training-runs?page_size=1&page_token={token}")
    assert stolen.status_code == 400 and stolen.get_json()["errors"][0]["field"] == "page_token"


def test_the_catalog_and_schedule_lists_search_only_the_callers_teams(world):
    found = world.call("mallory@example.com", "GET", "/api/experiments?search=quick test").get_json()["items"]
    assert [e["name"] for e in found] == ["ads quick test"]
    assert world.call("mallory@example.com", "GET", "/api/datasets?team=recs").get_json()["items"] == []
    assert world.call("mallory@example.com", "GET", "/api/training/schedules?team=recs").get_json()["schedules"] == []


def test_a_pickers_search_never_reaches_another_teams_entries(world):
    """The dashboard's pickers search the server (dashboard/src/picker.js): by a name both teams use, by what an
    experiment was made from, by another team's experiment number, or by an id, only the caller's come back."""
    def found(who, path, key="items"):
        response = world.call(who, "GET", path)
        assert response.status_code == 200, response.get_json()
        return response.get_json()[key]

    mine = found("mallory@example.com", "/api/datasets?page_size=100")
    shared_name = mine[0]["name"]  # both teams' datasets are made from the same body
    assert [d["team"] for d in found("mallory@example.com", f"/api/datasets?search={shared_name}")] == ["ads"]
    by_dataset = found("mallory@example.com", f"/api/experiments?model_type=retrieval&search={shared_name}")
    assert [e["name"] for e in by_dataset] == ["ads quick test"]
    recs_number = world.repo.get_catalog("experiments", world.recs_exp)["number"]
    assert found("mallory@example.com", f"/api/experiments?search=%23{recs_number}") == []
    assert found("mallory@example.com", f"/api/experiments?search={world.recs_exp}") == []
    assert [e["id"] for e in found("alice@example.com", f"/api/experiments?search=exp %23{recs_number}")] == \
        [world.recs_exp]
    for team in ("recs", "ads"):
        world.repo.create_schedule({"id": f"sch-{team}", "name": "nightly retrain", "status": "active", "team": team,
                                    "created_at": world.repo.get_catalog("experiments", world.recs_exp)["created_at"]})
    assert [s["id"] for s in found("mallory@example.com", "/api/training/schedules?search=nightly&status=active,paused",
                                   "schedules")] == ["sch-ads"]
    assert found("eve@example.com", "/api/training/schedules?search=nightly", "schedules") == []
