"""Issue 23 item 9, the audit trail: every state-changing request is recorded — who, which role, what,
when, result — refusals included, never the secrets a body carries; only platform admins read it
(GET /api/admin/audit, `trainyard admin audit`). Each attack below is what someone would do to act
unseen, to read the trail, or to smuggle a secret into it, replayed through the HTTP app."""
from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import timedelta

import pytest

import trainyard_cli.__main__ as cli
from shared.adapters.artifact_store import ArtifactStore
from shared.domain import audit, teams
from shared.http.app import Dependencies, create_app
from shared.settings import Settings, get_settings
from tests.builders import demo_member, local_settings, run_body, seed_catalog
from tests.fakes import FakePublisher, InMemoryRepository
from tests.unit.test_cli import FlaskSession
from trainyard_cli.client import ApiClient

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
OPS, MALLORY = "ops@example.com", "mallory@example.com"
HOOK = "https://hooks.slack.com/services/T000/B000/very-secret-path"
# The local stack's teams: mallory is its developer, admin of its demo team (she may act; the trail must
# still show what she did); ops is a platform admin (TRAINYARD_ADMINS), the one who reads the trail.
TEAMS = teams.demo(MALLORY)


@pytest.fixture
def repo():
    return InMemoryRepository()


def client_as(repo, identity: str, admins: str = OPS):
    settings = local_settings(identity, TOKEN, teams=TEAMS,
                              admins=Settings.from_environ({"TRAINYARD_ADMINS": admins}).admins)
    return create_app(Dependencies(repo=repo, publisher=FakePublisher(), store=ArtifactStore(),
                                   settings=settings)).test_client()


@pytest.fixture
def mallory(repo):
    return client_as(repo, MALLORY)


@pytest.fixture
def ops(repo):
    return client_as(repo, OPS)


def records(repo) -> list[dict]:
    return sorted(repo.audit.values(), key=lambda d: (d["at"], d["id"]))


def create_run(client, repo, **overrides):
    experiment = seed_catalog(repo, member=demo_member(MALLORY, TEAMS))["experiment"]
    return client.post("/api/training-runs", data=json.dumps(run_body(experiment, **overrides)), headers=AUTH)


def test_a_cancel_and_a_delete_of_someone_elses_run_are_recorded_with_who_and_the_result(repo, mallory):
    """H3's mallory cancels then deletes a run: whatever the authorization decides, the trail shows she did."""
    created = create_run(mallory, repo).get_json()["training_run"]["id"]
    cancelled = mallory.post(f"/api/training-runs/{created}/cancel", headers=AUTH)
    deleted = mallory.delete(f"/api/training-runs/{created}", headers=AUTH)
    create, cancel, delete = records(repo)
    assert create["actor"] == MALLORY and create["action"] == "POST /api/training-runs" and create["created"] == created
    assert cancel["action"] == "POST /api/training-runs/<run_id>/cancel" and cancel["path_params"] == {"run_id": created}
    assert cancel["status"] == cancelled.status_code and delete["status"] == deleted.status_code
    assert delete["method"] == "DELETE" and delete["route"] == "/api/training-runs/<run_id>"
    assert all(r["at"].tzinfo and r["expire_at"] - r["at"] == timedelta(days=400) for r in (create, cancel, delete))


def test_a_forged_or_missing_identity_is_recorded_as_unauthenticated_with_the_reason(repo):
    anonymous = client_as(repo, MALLORY)
    assert anonymous.post("/api/training-runs/tr-1/cancel").status_code == 401
    assert anonymous.delete("/api/training-runs/tr-1", headers={"Authorization": "Bearer forged"}).status_code == 401
    none, forged = records(repo)
    assert none["actor"] == forged["actor"] == audit.UNAUTHENTICATED
    assert "Authorization: Bearer" in none["reason"] and "developer token" in forged["reason"]
    assert forged["outcome"] == "refused" and forged["error"] == "unauthenticated"


def test_refusals_are_recorded_400_404_409_and_403(repo, mallory):
    assert mallory.post("/api/training-runs", data="{", headers=AUTH).status_code == 400
    assert mallory.post("/api/training-runs/tr-nope/cancel", headers=AUTH).status_code == 404
    run_id = create_run(mallory, repo).get_json()["training_run"]["id"]
    assert mallory.delete(f"/api/training-runs/{run_id}", headers=AUTH).status_code == 409  # queued: not deletable
    assert mallory.post("/api/admin/dead-letters/run-submit/replay", headers=AUTH).status_code == 403
    bad, missing, _, conflict, forbidden = records(repo)
    assert (bad["status"], bad["fields"], bad["error"]) == (400, ["body"], "invalid_request")
    assert (missing["status"], missing["error"]) == (404, "not_found")
    assert (conflict["status"], conflict["outcome"]) == (409, "refused") and run_id in conflict["message"]
    assert forbidden["actor"] == MALLORY and forbidden["status"] == 403 and "TRAINYARD_ADMINS" in forbidden["message"]


def test_the_actor_is_the_verified_identity_never_a_claimed_one(repo, mallory):
    """Not in the review: a caller names someone else in a header or the body; the record keeps who was
    verified (an audit field the review found forgeable before C1: created_by, cancelled_by)."""
    claimed = {**AUTH, "X-Goog-Authenticated-User-Email": "accounts.google.com:alice@example.com",
               "X-Forwarded-User": "alice@example.com"}
    mallory.post("/api/training-runs/tr-1/cancel", data=json.dumps({"cancelled_by": "alice@example.com"}),
                 headers=claimed)
    experiment = seed_catalog(repo, member=demo_member(MALLORY, TEAMS))["experiment"]
    mallory.post("/api/training-runs", data=json.dumps(run_body(experiment, created_by="alice@example.com")),
                 headers=claimed)
    assert [r["actor"] for r in records(repo)] == [MALLORY, MALLORY]
    assert "alice" not in json.dumps(records(repo), default=str)


def test_reads_are_not_recorded(repo, mallory):
    mallory.get("/api/training-runs", headers=AUTH)
    mallory.get("/api/vocabulary", headers=AUTH)
    assert records(repo) == []


def test_a_webhook_url_or_token_in_the_body_never_reaches_the_trail(repo, mallory):
    """The body's secrets (a Slack URL is its own credential, M2) stay out: accepted or refused."""
    create_run(mallory, repo, notifications={"webhooks": [{"url": HOOK}]})
    create_run(mallory, repo, notifications={"webhooks": [{"url": HOOK + " not a url", "secret": "tok-123"}]})
    mallory.post(f"/api/training-runs?token={TOKEN}", data=json.dumps({"url": HOOK}), headers=AUTH)
    trail = json.dumps(records(repo), default=str)
    assert len(records(repo)) == 3 and HOOK not in trail and "very-secret-path" not in trail
    assert "tok-123" not in trail and TOKEN not in trail


def test_the_role_a_route_checked_is_recorded_when_there_is_one(repo):
    """Routes that check a role on a team leave flask.g.authorization; the record keeps it (null otherwise)."""
    app = create_app(Dependencies(repo=repo, publisher=FakePublisher(), store=ArtifactStore(),
                                  settings=replace(get_settings(), auth_mode="local", dev_token=TOKEN,
                                                   dev_identity=MALLORY)))

    @app.before_request
    def checked():  # what the authorization code sets when a route checks the caller's role
        from flask import g
        g.authorization = {"team": "search", "role": "trainer", "needed": "deployer", "extra": "dropped"}

    app.test_client().post("/api/training-runs/tr-1/cancel", headers=AUTH)
    (doc,) = records(repo)
    assert doc["authorization"] == {"team": "search", "role": "trainer", "needed": "deployer"}
    assert doc["team"] == "search"


def test_a_failed_audit_write_keeps_the_actions_answer_and_logs_the_record_loudly(repo, mallory, capsys):
    repo.fail_audit = RuntimeError("Firestore unavailable")
    response = create_run(mallory, repo)
    assert response.status_code == 201 and repo.runs  # the run exists and the caller is told so
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    lost = [e for e in lines if e["message"].startswith("AUDIT RECORD NOT STORED")]
    assert lost and lost[0]["severity"] == "ERROR" and lost[0]["audit_record"]["actor"] == MALLORY
    assert lost[0]["audit_record"]["created"] == response.get_json()["training_run"]["id"]


# ----------------------------------------------------------------------------- reading the trail


def test_only_platform_admins_read_the_trail(repo, mallory, ops):
    create_run(mallory, repo)
    refused = mallory.get("/api/admin/audit", headers=AUTH)
    assert refused.status_code == 403 and "TRAINYARD_ADMINS" in refused.get_json()["message"]
    assert client_as(repo, MALLORY).get("/api/admin/audit").status_code == 401
    answer = ops.get("/api/admin/audit", headers=AUTH).get_json()
    assert [r["actor"] for r in answer["records"]] == [MALLORY]
    assert "expire_at" not in answer["records"][0]


def test_filters_newest_first_and_a_cursor_through_every_page(repo, mallory, ops):
    for n in range(5):
        mallory.post(f"/api/training-runs/tr-{n}/cancel", headers=AUTH)
    ops.post("/api/training-runs/tr-x/cancel", headers=AUTH)
    seen, cursor = [], None
    while True:
        page = ops.get("/api/admin/audit", query_string={"actor": "Mallory@Example.com", "limit": 2,
                                                        **({"cursor": cursor} if cursor else {})}, headers=AUTH)
        assert page.status_code == 200, page.get_json()
        seen += page.get_json()["records"]
        cursor = page.get_json()["next_cursor"]
        if not cursor:
            break
    assert [r["path_params"]["run_id"] for r in seen] == [f"tr-{n}" for n in reversed(range(5))]
    action = ops.get("/api/admin/audit", query_string={"action": "post  /api/training-runs/<run_id>/cancel",
                                                      "result": "404"}, headers=AUTH).get_json()["records"]
    assert len(action) == 6 and {r["status"] for r in action} == {404}
    assert ops.get("/api/admin/audit", query_string={"result": "ok"}, headers=AUTH).get_json()["records"] == []
    first = min(records(repo), key=lambda d: d["at"])["at"]
    since = ops.get("/api/admin/audit", query_string={"since": (first + timedelta(microseconds=1)).isoformat(),
                                                     "until": "2999-01-01T00:00:00Z"}, headers=AUTH)
    assert len(since.get_json()["records"]) == 5


@pytest.mark.parametrize("args, field", [
    ({"limit": "0"}, "limit"), ({"limit": "many"}, "limit"), ({"result": "teapot"}, "result"),
    ({"result": "999"}, "result"), ({"since": "yesterday"}, "since"), ({"until": "12/06/2026"}, "until"),
    ({"since": "2026-12-06T10:00:00Z", "until": "2026-12-06T09:00:00Z"}, "until"),
    ({"action": "GET /api/training-runs"}, "action"), ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": "WyIyMDI2LTEyLTA2IiwgIi4uIl0="}, "cursor"),  # a forged cursor naming the id ".."
])
def test_a_bad_filter_is_a_400_naming_it(ops, args, field):
    response = ops.get("/api/admin/audit", query_string=args, headers=AUTH)
    assert response.status_code == 400
    assert [e["field"] for e in response.get_json()["errors"]] == [field]


def test_the_cli_shows_the_trail_as_a_table_and_as_json(repo, mallory, ops, monkeypatch):
    mallory.post("/api/training-runs/tr-9/cancel", headers=AUTH)

    def client_factory(url=None, token=None, timeout_s=30):
        client = ApiClient.__new__(ApiClient)
        client.url, client.timeout_s, client.session = "http://test", timeout_s, FlaskSession(ops.application)
        client.session.headers["Authorization"] = f"Bearer {TOKEN}"
        return client

    monkeypatch.setattr(cli, "ApiClient", client_factory)
    out = io.StringIO()
    assert cli.run(["admin", "audit", "--actor", MALLORY], out=out) == 0
    text = out.getvalue()
    assert MALLORY in text and "POST /api/training-runs/<run_id>/cancel" in text and "run_id=tr-9" in text
    assert "404" in text and "not_found" in text
    out = io.StringIO()
    assert cli.run(["admin", "audit", "--result", "refused", "--json"], out=out) == 0
    assert [r["path_params"] for r in json.loads(out.getvalue())["records"]] == [{"run_id": "tr-9"}]
    out = io.StringIO()
    assert cli.run(["admin", "audit", "--since", "never"], out=out) == 1  # the API's 400, on stderr


def test_the_trail_is_not_readable_by_the_dashboards_firestore_listeners():
    """The page reads Firestore directly under the rules: the audit collection is not among what they open."""
    from shared.adapters.repository import AUDIT
    from tests.unit.terraform_support.hcl import TF_ROOT

    rules = (TF_ROOT / "firestore.rules").read_text()
    assert AUDIT not in rules


def test_the_trail_expires_after_the_retention_and_every_filter_has_its_index():
    """Terraform: the TTL policy on the records' expire_at, the API's retention from the same variable, and
    a (filter, at desc) index for each filter GET /api/admin/audit sends to Firestore."""
    from shared.adapters.repository import AUDIT
    from tests.rehearsal import terraform_model
    from tests.unit.terraform_support import hcl
    from tests.unit.terraform_support.hcl import TF_ROOT

    root = hcl.load_dir(TF_ROOT)
    wanted = [(AUDIT, [(field, "ASCENDING"), ("at", "DESCENDING")]) for field in audit.FILTERS]
    assert hcl.check_indexes(root, wanted) == []
    plan = terraform_model.load(TF_ROOT, TF_ROOT / "examples/minimal/minimal.tfvars")
    ttl = plan.resource("google_firestore_field", "audit_ttl").args
    assert (ttl["collection"], ttl["field"]) == (AUDIT, "expire_at") and "ttl_config" in ttl
    plan.inputs["audit_retention_days"] = 90
    assert Settings.from_environ(plan.local("environment")["api"]).audit_retention_days == 90
    assert Settings.from_environ({}).audit_retention_days == 400
