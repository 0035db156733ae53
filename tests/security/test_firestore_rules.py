"""The dashboard's Firestore listeners obey the API's read rule (docs/security.md, "The dashboard's
Firestore listeners"): terraform/firestore.rules on the official Firestore emulator.

Each person signs in as the page does: GET /api/me through the HTTP app (the real FirestoreRepository
against the emulator) writes their access document; then their browser asks Firestore directly with
their ID token, as the web SDK does. Before team rules, any organisation user read every run,
schedule and catalog entry of every team (security review: "Firestore rules let any org user read
the whole documents")."""
from __future__ import annotations

import os
import shutil
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.adapters.repository import FirestoreRepository
from shared.domain import access, teams
from shared.domain.runs import now
from shared.http.app import Dependencies, create_app
from shared.settings import get_settings
from tests.fakes import FakePublisher
from tests.rules_emulator import PROJECT, call, documents_url, emulator, token

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not (shutil.which("gcloud") and shutil.which("java")),
                                 reason="the rules tests need the Google Cloud CLI Firestore emulator and Java 17")]

TEAMS = teams.parse({
    "recs": {"members": {"alice@example.com": "viewer", "dana@example.com": "admin"}},
    "ads": {"members": {"mallory@example.com": "trainer", "dana@example.com": "viewer"}},
})
ADMIN = "root@example.com"  # a platform admin: admin on every team, still nothing without a team


def bearer(email: str, verified: bool = True) -> str:
    return token(email=email, email_verified=verified)


ALICE, MALLORY, DANA, ROOT = (bearer(e) for e in ("alice@example.com", "mallory@example.com",
                                                   "dana@example.com", ADMIN))
NOBODY = bearer("nina@example.com")  # an organisation user on no team; she never gets an access document
EXPIRED = bearer("eve@example.com")  # was on recs; her access document has expired

RECS_DOCS = ["training_runs/r-recs", "training_runs/r-recs/history/a001-e00001", "training_schedules/s-recs",
             "experiments/e-recs", "datasets/d-recs", "feature_configs/f-recs", "model_configs/m-recs"]
ADS_DOCS = [path.replace("recs", "ads") for path in RECS_DOCS]
LISTENED = ["training_runs", "training_schedules", "experiments", "datasets", "feature_configs", "model_configs"]


@pytest.fixture(scope="module")
def firestore(tmp_path_factory):
    with emulator(tmp_path_factory.mktemp("rules"), "example.com") as host:
        previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
        os.environ["FIRESTORE_EMULATOR_HOST"] = host  # the official client talks to the emulator as "owner"
        try:
            yield host, FirestoreRepository(PROJECT)
        finally:
            if previous is None:
                os.environ.pop("FIRESTORE_EMULATOR_HOST")
            else:
                os.environ["FIRESTORE_EMULATOR_HOST"] = previous


def sign_in(repo, email: str) -> dict:
    """What the page does at sign-in: GET /api/me, which writes the caller's access document."""
    settings = replace(get_settings(), auth_mode="local", dev_token="t", dev_identity=email, teams=TEAMS,
                       admins=frozenset({ADMIN}))
    app = create_app(Dependencies(repo=repo, publisher=FakePublisher(), store=None, settings=settings))
    response = app.test_client().get("/api/me", headers={"Authorization": "Bearer t"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["me"]


@pytest.fixture(scope="module")
def docs(firestore):
    host, repo = firestore
    for path in RECS_DOCS + ADS_DOCS + ["training_runs/r-none", "training_runs/r-none/history/a001-e00001",
                                        "experiments/e-none", "counters/runs"]:
        team = "recs" if "recs" in path else "ads" if "ads" in path else None
        fields = {"name": path, "attempt": 1, "created_at": now(), **({"team": team} if team else {})}
        if "/history/" in path:
            fields.pop("team", None)  # epochs carry no team: their run's team decides
        repo.db.document(path).set(fields)
    for email in ("alice@example.com", "mallory@example.com", "dana@example.com", ADMIN):
        sign_in(repo, email)
    who = teams.caller("eve@example.com", TEAMS + (teams.Team("recs", {"user:eve@example.com": "viewer"}),))
    stale = access.document(who, ["recs"], now() - access.TTL - timedelta(minutes=1))
    repo.put_access(access.key(who.email), stale)
    return documents_url(host)


def get(docs_url, path, who):
    return call("GET", f"{docs_url}/{path}", who)


def query(docs_url, collection, who, teams_in=None, parent="", extra=()):
    filters = list(extra)
    if teams_in is not None:
        filters.append({"fieldFilter": {"field": {"fieldPath": "team"}, "op": "IN",
                                        "value": {"arrayValue": {"values": [{"stringValue": t} for t in teams_in]}}}})
    structured = {"from": [{"collectionId": collection}], "limit": 50}
    if filters:
        structured["where"] = (filters[0] if len(filters) == 1
                               else {"compositeFilter": {"op": "AND", "filters": filters}})
    return call("POST", f"{docs_url}{'/' + parent if parent else ''}:runQuery", who, {"structuredQuery": structured})


def names(response) -> set[str]:
    return {row["document"]["name"].rsplit("/documents/", 1)[1] for row in response.json() if "document" in row}


# ----------------------------------------------------------------------------- what a member reads


def test_me_says_who_the_caller_is_and_which_teams_the_page_may_read(firestore):
    me = sign_in(firestore[1], "dana@example.com")
    assert me["email"] == "dana@example.com" and me["roles"] == {"ads": "viewer", "recs": "admin"}
    assert me["teams"] == ["ads", "recs"] and not me["platform_admin"]
    stored = firestore[1].get_access("dana@example.com")
    assert stored["teams"] == ["ads", "recs"] and stored["expires_at"] > now()


@pytest.mark.parametrize("path", RECS_DOCS)
def test_a_member_reads_her_teams_documents(docs, path):
    assert get(docs, path, ALICE).status_code == 200


@pytest.mark.parametrize("collection", LISTENED)
def test_a_member_lists_her_teams_documents_with_the_team_constraint(docs, collection):
    response = query(docs, collection, ALICE, ["recs"])
    assert response.status_code == 200, response.text
    assert names(response) == {p for p in RECS_DOCS if p.startswith(collection + "/") and p.count("/") == 1}


def test_a_member_of_two_teams_lists_both_in_one_query(docs):
    response = query(docs, "training_runs", DANA, ["recs", "ads"])
    assert response.status_code == 200 and names(response) == {"training_runs/r-recs", "training_runs/r-ads"}


def test_a_member_lists_her_runs_epochs(docs):
    response = query(docs, "history", ALICE, parent="training_runs/r-recs")
    assert response.status_code == 200 and names(response) == {"training_runs/r-recs/history/a001-e00001"}


# ----------------------------------------------------------------------------- what others cannot


@pytest.mark.parametrize("who", [MALLORY, NOBODY, EXPIRED], ids=["other-team", "no-access-document", "expired"])
@pytest.mark.parametrize("path", RECS_DOCS)
def test_nobody_else_gets_a_teams_documents(docs, who, path):
    assert get(docs, path, who).status_code == 403


@pytest.mark.parametrize("who", [MALLORY, NOBODY, EXPIRED], ids=["other-team", "no-access-document", "expired"])
@pytest.mark.parametrize("collection", LISTENED)
def test_nobody_else_lists_a_teams_documents(docs, who, collection):
    assert query(docs, collection, who, ["recs"]).status_code == 403


@pytest.mark.parametrize("who", [MALLORY, NOBODY, EXPIRED], ids=["other-team", "no-access-document", "expired"])
def test_nobody_else_lists_a_runs_epochs(docs, who):
    assert query(docs, "history", who, parent="training_runs/r-recs").status_code == 403


@pytest.mark.parametrize("collection", LISTENED)
def test_a_list_without_the_team_constraint_is_refused_even_to_a_member(docs, collection):
    # Rules are not filters: the query could return another team's documents, so all of it is refused.
    assert query(docs, collection, ALICE).status_code == 403
    other = {"fieldFilter": {"field": {"fieldPath": "name"}, "op": "EQUAL",
                             "value": {"stringValue": f"{collection}/r-recs"}}}
    assert query(docs, collection, ALICE, extra=[other]).status_code == 403


def test_a_list_naming_a_team_she_is_not_on_is_refused(docs):
    assert query(docs, "training_runs", ALICE, ["recs", "ads"]).status_code == 403
    assert query(docs, "training_runs", MALLORY, ["ads", "recs"]).status_code == 403


def test_the_other_team_reads_its_own(docs):
    assert get(docs, "training_runs/r-ads", MALLORY).status_code == 200
    assert query(docs, "training_runs", MALLORY, ["ads"]).status_code == 200


@pytest.mark.parametrize("who", [ALICE, ROOT], ids=["member", "platform-admin"])
def test_a_document_without_a_team_is_read_by_nobody_through_the_rules(docs, who):
    assert get(docs, "training_runs/r-none", who).status_code == 403
    assert get(docs, "training_runs/r-none/history/a001-e00001", who).status_code == 403
    assert get(docs, "experiments/e-none", who).status_code == 403


def test_a_platform_admin_reads_every_team(docs):
    assert get(docs, "training_runs/r-ads", ROOT).status_code == 200
    assert query(docs, "training_runs", ROOT, ["ads", "recs"]).status_code == 200


@pytest.mark.parametrize("bearer_token", [None, bearer("alice@example.com", verified=False),
                                          bearer("alice@example.com.evil.org"), bearer("alice@gmail.com")],
                         ids=["signed-out", "unverified", "lookalike-domain", "other-domain"])
def test_the_access_document_of_an_address_helps_only_its_verified_organisation_owner(docs, bearer_token):
    assert get(docs, "training_runs/r-recs", bearer_token).status_code == 403
    assert query(docs, "training_runs", bearer_token, ["recs"]).status_code == 403


# ----------------------------------------------------------------------------- nobody writes


def test_nobody_grants_herself_a_team_by_writing_her_access_document(docs):
    forged = {"fields": {"teams": {"arrayValue": {"values": [{"stringValue": "recs"}]}},
                         "expires_at": {"timestampValue": "2999-01-01T00:00:00Z"}}}
    assert call("PATCH", f"{docs}/access/mallory@example.com", MALLORY, forged).status_code == 403
    assert call("PATCH", f"{docs}/access/nina@example.com", NOBODY, forged).status_code == 403
    assert get(docs, "training_runs/r-recs", MALLORY).status_code == 403
    # ...nor reads anyone's, her own included: the page learns its teams from GET /api/me.
    assert get(docs, "access/alice@example.com", MALLORY).status_code == 403
    assert get(docs, "access/alice@example.com", ALICE).status_code == 403


@pytest.mark.parametrize("path", RECS_DOCS + ["training_runs/new-one", "counters/runs"])
def test_nobody_writes_from_a_browser(docs, path):
    body = {"fields": {"status": {"stringValue": "completed"}, "team": {"stringValue": "recs"}}}
    assert call("PATCH", f"{docs}/{path}", DANA, body).status_code == 403
    assert call("DELETE", f"{docs}/{path}", DANA).status_code == 403


def test_counters_and_unlisted_collections_are_closed_even_to_members(docs):
    assert get(docs, "counters/runs", DANA).status_code == 403
