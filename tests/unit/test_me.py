"""GET /api/me: who the caller is, their role per team, and the access document it writes for the
dashboard's Firestore listeners (shared/domain/access.py; the rules: tests/security/test_firestore_rules.py)."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from shared.adapters.artifact_store import ArtifactStore
from shared.domain import access, teams
from shared.domain.runs import now
from shared.http.app import Dependencies, create_app
from shared.settings import get_settings
from tests.fakes import FakePublisher

TEAMS = {"recs": {"members": {"alice@example.com": "trainer", "group:ml@example.com": "deployer"}},
         "ads": {"members": {"bob@example.com": "admin", "alice@example.com": "viewer"}}}


def me(repo, email, declared=TEAMS, admins=(), groups=()):
    settings = replace(get_settings(), auth_mode="local", dev_token="t", dev_identity=email,
                       teams=teams.parse(declared), admins=frozenset(admins))
    app = create_app(Dependencies(repo=repo, publisher=FakePublisher(), store=ArtifactStore(), settings=settings,
                                  groups_of=lambda _: groups))
    return app.test_client().get("/api/me", headers={"Authorization": "Bearer t"})


def test_a_member_learns_her_role_per_team_and_her_access_document_is_written(repo):
    before = now()
    body = me(repo, "Alice@Example.com").get_json()["me"]
    assert body["email"] == "alice@example.com" and body["platform_admin"] is False
    assert body["roles"] == {"ads": "viewer", "recs": "trainer"} and body["teams"] == ["ads", "recs"]
    stored = repo.get_access("alice@example.com")
    assert stored["teams"] == ["ads", "recs"] and stored["email"] == "alice@example.com"
    assert before + access.TTL <= stored["expires_at"] <= now() + access.TTL
    assert body["access_expires_at"].startswith(stored["expires_at"].isoformat()[:19])


def test_a_group_role_counts(repo):
    body = me(repo, "carol@example.com", groups=("ml@example.com",)).get_json()["me"]
    assert body["roles"] == {"recs": "deployer"} and body["groups"] == ["ml@example.com"]
    assert repo.get_access("carol@example.com")["teams"] == ["recs"]


def test_a_platform_admin_may_view_every_declared_team(repo):
    body = me(repo, "root@example.com", admins=("root@example.com",)).get_json()["me"]
    assert body["platform_admin"] is True and body["roles"] == {"ads": "admin", "recs": "admin"}
    assert repo.get_access("root@example.com")["teams"] == ["ads", "recs"]


def test_a_person_on_no_team_gets_an_empty_grant_not_an_error(repo):
    response = me(repo, "nina@example.com")
    assert response.status_code == 200
    assert response.get_json()["me"]["roles"] == {} and response.get_json()["me"]["teams"] == []
    assert repo.get_access("nina@example.com")["teams"] == []


def test_a_member_removed_from_a_team_loses_it_at_the_next_call(repo):
    me(repo, "alice@example.com")
    smaller = {"recs": TEAMS["recs"], "ads": {"members": {"bob@example.com": "admin"}}}
    assert me(repo, "alice@example.com", declared=smaller).get_json()["me"]["teams"] == ["recs"]
    assert repo.get_access("alice@example.com")["teams"] == ["recs"]  # replaced, not merged


def test_the_grant_expires_an_hour_after_it_was_written():
    who = teams.caller("alice@example.com", teams.parse(TEAMS))
    at = now()
    doc = access.document(who, ["ads", "recs"], at)
    assert doc["expires_at"] - at == timedelta(hours=1) == access.TTL


def test_me_needs_a_signed_in_caller(repo):
    settings = replace(get_settings(), auth_mode="local", dev_token="t", dev_identity="alice@example.com")
    app = create_app(Dependencies(repo=repo, publisher=FakePublisher(), store=ArtifactStore(), settings=settings))
    assert app.test_client().get("/api/me").status_code == 401
    assert app.test_client().get("/api/me", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert repo.access == {}
