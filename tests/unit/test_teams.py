"""Teams and roles (shared/domain/teams.py): the declaration, the caller's roles, and the checks."""
import json
from dataclasses import replace

import pytest

from shared.domain import teams
from shared.errors import FieldError, Forbidden
from shared.settings import Settings

DECLARED = {
    "recs": {"members": {"user:Alice@Example.com": "admin", "group:ml@example.com": "trainer",
                         "bob@example.com": "viewer",
                         "serviceAccount:ci@p.iam.gserviceaccount.com": "deployer"},
             "model_names": ["recs-*"], "datasets": ["p.recs"], "buckets": ["gs://recs-data/"],
             "budget": {"gpu_hours_per_month": 100, "max_gpus_per_run": 8}},
    "ads": {"members": {"bob@example.com": "deployer"}, "schedules": {"min_interval_minutes": 120}},
}


def test_a_declaration_parses_into_teams_with_canonical_members():
    recs, ads = teams.parse(DECLARED)
    assert recs.members == {"user:alice@example.com": "admin", "group:ml@example.com": "trainer",
                            "user:bob@example.com": "viewer",
                            "serviceAccount:ci@p.iam.gserviceaccount.com": "deployer"}
    assert recs.budget.gpu_hours_per_month == 100 and recs.budget.usd_per_month is None
    assert ads.schedules.min_interval_minutes == 120 and ads.schedules.max_active == 10


@pytest.mark.parametrize("declared, field", [
    ({"Recs": {"members": {}}}, "TRAINYARD_TEAMS.Recs"),
    ({"recs": {"members": {"alice@example.com": "owner"}}}, "TRAINYARD_TEAMS.recs.members.alice@example.com"),
    ({"recs": {"members": {"robot:x@example.com": "viewer"}}}, "TRAINYARD_TEAMS.recs.members"),
    ({"recs": {"members": {}, "datasets": "p.recs"}}, "TRAINYARD_TEAMS.recs.datasets"),
    ({"recs": {"members": {}, "budget": {"usd_per_month": -1}}}, "TRAINYARD_TEAMS.recs.budget.usd_per_month"),
    ({"recs": {"members": {}, "budget": {"dollars": 5}}}, "TRAINYARD_TEAMS.recs.budget.dollars"),
    ({"recs": {"members": {}, "owner": "x"}}, "TRAINYARD_TEAMS.recs"),
])
def test_a_bad_declaration_names_the_field(declared, field):
    with pytest.raises(FieldError) as caught:
        teams.parse(declared)
    assert field in [e["field"] for e in caught.value.errors]


def test_the_caller_holds_the_highest_role_any_of_their_principals_has():
    declared = teams.parse(DECLARED)
    bob = teams.caller("Bob@example.com", declared, groups=["ML@example.com"])
    assert bob.roles == {"recs": "trainer", "ads": "deployer"}  # viewer as a user, trainer through the group
    assert teams.caller("ci@p.iam.gserviceaccount.com", declared).roles == {"recs": "deployer"}
    assert teams.caller("mallory@example.com", declared).roles == {}
    admin = teams.caller("ops@example.com", declared, admins=["OPS@example.com"])
    assert admin.role_on("recs") == "admin" and admin.teams_where("admin", ["recs", "ads"]) == ["ads", "recs"]


def test_require_names_what_is_missing():
    declared = teams.parse(DECLARED)
    bob = teams.caller("bob@example.com", declared)
    assert teams.require(bob, "recs", "viewer", "reading a run") == "viewer"
    with pytest.raises(Forbidden, match=r"bob@example.com is viewer on team 'recs'; cancelling a run needs trainer"):
        teams.require(bob, "recs", "trainer", "cancelling a run")
    with pytest.raises(Forbidden, match="has no role on team 'recs'"):
        teams.require(teams.caller("mallory@example.com", declared), "recs", "viewer", "reading a run")


def test_a_new_resource_goes_to_the_team_named_or_the_callers_only_team():
    declared = teams.parse(DECLARED)
    alice = teams.caller("alice@example.com", declared)
    assert teams.team_for_new(alice, None, declared, "trainer", "creating a run") == "recs"
    bob = teams.caller("bob@example.com", declared, groups=["ml@example.com"])
    with pytest.raises(FieldError, match="one of ads, recs"):
        teams.team_for_new(bob, None, declared, "trainer", "creating a run")
    with pytest.raises(FieldError, match="'hr' is not a team"):
        teams.team_for_new(bob, "hr", declared, "trainer", "creating a run")
    with pytest.raises(Forbidden):
        teams.team_for_new(teams.caller("mallory@example.com", declared), None, declared, "trainer", "creating a run")


def test_patterns_are_exact_prefix_or_anything():
    assert teams.allows(["recs-*"], "recs-v2") and not teams.allows(["recs-*"], "ads-v2")
    assert teams.allows(["p.recs"], "p.recs") and not teams.allows(["p.recs"], "p.recs2")
    assert teams.allows(["*"], "anything") and not teams.allows([], "anything")


def test_settings_read_the_declaration_and_the_local_stack_gets_a_demo_team():
    env = {"TRAINYARD_TEAMS": json.dumps(DECLARED)}
    assert [t.name for t in Settings.from_environ(env).teams] == ["recs", "ads"]
    local = Settings.from_environ({"TRAINYARD_DEV_IDENTITY": "dev@example.com"})
    (demo,) = local.teams
    assert demo.name == "demo" and demo.members == {"user:dev@example.com": "admin"}
    assert Settings.from_environ({"TRAINYARD_PIPELINE_BACKEND": "vertex"}).teams == ()
    with pytest.raises(ValueError, match="TRAINYARD_TEAMS"):
        Settings.from_environ({"TRAINYARD_TEAMS": "{not json"})
    with pytest.raises(ValueError, match="owner"):
        Settings.from_environ({"TRAINYARD_TEAMS": json.dumps({"recs": {"members": {"a@b.co": "owner"}}})})
