"""Every run, schedule and catalog entry belongs to a team (shared/domain/teams.py): the team named in
the create request, or the caller's only team with the role; a schedule's runs, a one-time scheduled
run and a retry keep it; a deployment without teams is run by its platform admins alone."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shared.contract.messages import ScheduleTrigger
from shared.domain import schedules, teams
from shared.errors import FieldError, Forbidden
from shared.services import catalog_entries, intake, scheduling
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.services.ports import Effects
from shared.adapters.artifact_store import ArtifactStore
from shared.http.app import Dependencies, create_app
from tests.builders import dataset_body, local_settings, run_body, seed_catalog
from tests.fakes import FakePublisher
from tests.unit.test_schedules import NoJobs

UTC = timezone.utc
AUTH = {"Authorization": "Bearer test-token"}
AT = datetime(2026, 5, 1, tzinfo=UTC)
# The seeded dataset reads a local file, which only a team that may read anything may use (tests/security).
DECLARED = teams.parse({
    "recs": {"members": {"alice@example.com": "admin", "bob@example.com": "trainer"}, "model_names": ["*"],
             "buckets": ["*"]},
    "ads": {"members": {"bob@example.com": "viewer", "carol@example.com": "trainer"}, "model_names": ["*"],
            "buckets": ["*"]},
})


def as_(email: str, admins=()) -> tuple:
    return teams.caller(email, DECLARED, admins), DECLARED


@pytest.fixture
def ids(repo):
    return seed_catalog(repo, member=as_("alice@example.com"))


def test_a_catalog_entry_belongs_to_the_callers_only_team(ids, repo):
    assert repo.get_catalog("experiments", ids["experiment"])["team"] == "recs"
    assert repo.get_catalog("datasets", ids["dataset"])["created_by"] == "alice@example.com"


def test_a_run_belongs_to_the_team_it_names_or_the_callers_only_trainer_team(ids, repo):
    run = intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()),
                            run_body(ids["experiment"]), *as_("bob@example.com"))
    assert run["team"] == "recs"  # bob is trainer on recs, only viewer on ads
    named = intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()),
                              run_body(ids["experiment"], name="named-run", team="recs"),
                              *as_("alice@example.com"))
    assert named["team"] == "recs"


def test_naming_a_team_where_the_caller_is_not_trainer_is_refused(ids, repo):
    with pytest.raises(Forbidden, match="bob@example.com is viewer on team 'ads'; creating a run needs trainer"):
        intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()),
                          run_body(ids["experiment"], team="ads"), *as_("bob@example.com"))
    with pytest.raises(FieldError) as unknown:
        intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()),
                          run_body(ids["experiment"], team="nope"), *as_("bob@example.com"))
    assert unknown.value.errors[0]["field"] == "team"
    with pytest.raises(Forbidden, match="mallory@example.com has no team on which they are trainer"):
        catalog_entries.create(repo, "datasets", dataset_body(), *as_("mallory@example.com"))


def test_a_platform_admin_on_several_teams_names_one(repo):
    with pytest.raises(FieldError) as caught:
        catalog_entries.create(repo, "datasets", dataset_body(), *as_("ops@example.com", admins=["ops@example.com"]))
    assert caught.value.errors == [{"field": "team", "message": "name the team this belongs to: one of ads, recs"}]
    made = catalog_entries.create(repo, "datasets", dataset_body(team="ads"),
                                  *as_("ops@example.com", admins=["ops@example.com"]))
    assert made["team"] == "ads"


def test_without_declared_teams_only_platform_admins_make_resources_and_those_belong_to_no_team(repo):
    admin = teams.caller("ops@example.com", (), admins=["ops@example.com"])
    assert catalog_entries.create(repo, "datasets", dataset_body(), admin, ())["team"] is None
    with pytest.raises(Forbidden):
        catalog_entries.create(repo, "datasets", dataset_body(), teams.caller("ana@example.com", ()), ())


def test_a_schedule_and_every_run_it_makes_belong_to_its_team(ids, repo):
    body = {"name": "nightly", "schedule_type": "daily", "time_of_day": "02:30", "timezone": "UTC",
            "max_concurrent_runs": 2, "run_template": {"name": "nightly-recs", "base_experiment_id": ids["experiment"]}}
    schedule = scheduling.create_schedule(repo, body, *as_("bob@example.com"), NoJobs(), at=AT)
    assert schedule["team"] == "recs" and "team" not in schedule["run_template"]
    slot = schedules.next_slot(schedule, AT)
    outcome = scheduling.on_trigger(repo, Effects(FakePublisher(), LocalTickerJobs()), ScheduleTrigger(schedule_id=schedule["id"]), slot, at=slot)
    assert outcome == "active"
    assert repo.get_run(schedules.slot_run_id(schedule["id"], slot))["team"] == "recs"
    manual = scheduling.trigger_schedule(repo, Effects(FakePublisher(), LocalTickerJobs()), schedule["id"], as_("bob@example.com")[0], at=slot)
    assert manual["training_run"]["team"] == "recs"


def test_a_schedules_template_may_not_name_another_team(ids, repo):
    body = {"name": "nightly", "schedule_type": "daily", "time_of_day": "02:30", "team": "recs",
            "run_template": {"name": "nightly-recs", "base_experiment_id": ids["experiment"], "team": "ads"}}
    with pytest.raises(FieldError) as caught:
        scheduling.create_schedule(repo, body, *as_("alice@example.com", admins=["alice@example.com"]), NoJobs(), at=AT)
    assert caught.value.errors[0]["field"] == "run_template.team"


def test_a_one_time_scheduled_run_and_its_schedule_belong_to_the_runs_team(ids, repo):
    run = intake.create_run(repo, Effects(FakePublisher(), NoJobs()),
                            run_body(ids["experiment"], scheduled_at="2026-05-02T00:00:00Z"),
                            *as_("bob@example.com"), at=AT)
    assert run["status"] == "scheduled" and run["team"] == "recs"
    assert repo.get_schedule(run["schedule_id"])["team"] == "recs"


def test_the_api_shows_the_team_and_a_retry_keeps_it(repo):
    client = create_app(Dependencies(repo=repo, publisher=FakePublisher(), store=ArtifactStore(),
                                     settings=local_settings())).test_client()
    ids = seed_catalog(repo)
    made = client.post("/api/training-runs", json=run_body(ids["experiment"]), headers=AUTH).get_json()
    run_id = made["training_run"]["id"]
    assert made["training_run"]["team"] == teams.DEMO_TEAM  # the local stack's team: nothing to configure
    repo.mutate_run(run_id, lambda d: {**d, "status": "failed"})
    retried = client.post(f"/api/training-runs/{run_id}/retry", json={}, headers=AUTH).get_json()
    assert retried["training_run"]["attempt"] == 2 and retried["training_run"]["team"] == teams.DEMO_TEAM
    listed = client.get("/api/training-runs", headers=AUTH).get_json()["training_runs"]
    assert [r["team"] for r in listed] == [teams.DEMO_TEAM]


def test_the_openapi_document_names_the_team_fields_and_the_403_of_every_team_route():
    from shared.http.openapi import TEAM_ROUTES, document

    doc = document()
    for schema in ("CreateRunRequest", "ScheduleRequest", "Dataset", "FeatureConfig", "ModelConfig", "Experiment"):
        assert "team" in doc["components"]["schemas"][schema]["properties"], schema
    team_routes = {p: ops for p, ops in doc["paths"].items() if p.startswith(TEAM_ROUTES)}
    assert len(team_routes) > 20
    for path, operations in team_routes.items():
        for method, operation in operations.items():
            assert "403" in operation["responses"], (method, path)
    assert "403" not in doc["paths"]["/health"]["get"]["responses"]
