"""Dead-letter list and replay through the admin-only API routes (shared/http/admin_routes.py) and the CLI,
over the real shared/adapters/dead_letters.py with in-memory Pub/Sub clients: who is an admin, what a list
leaves held, what a replay publishes and acknowledges, and the errors a person sees."""
from __future__ import annotations

import io
import json

import pytest

import trainyard_cli.__main__ as cli
from shared.contract import topics
from shared.adapters.artifact_store import ArtifactStore
from shared.adapters.dead_letters import REPLAY_ATTRIBUTE, DeadLetters
from shared.http.app import Dependencies, create_app
from shared.settings import Settings
from tests.builders import local_settings
from tests.fakes import FakePublisher, FakePubSub, InMemoryRepository
from tests.unit.test_cli import FlaskSession
from trainyard_cli.client import ApiClient

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOLD = "projects/p/subscriptions/run-submit-dead-letter-hold"
BASE = "/api/admin/dead-letters"


def make_app(identity: str, admins: str, pubsub: FakePubSub):
    settings = local_settings(identity, TOKEN,
                       admins=Settings.from_environ({"TRAINYARD_ADMINS": admins}).admins)
    return create_app(Dependencies(repo=InMemoryRepository(), publisher=FakePublisher(), store=ArtifactStore(),
                                   settings=settings, dead_letters=DeadLetters("p", pubsub, pubsub)))


@pytest.fixture
def pubsub():
    held = FakePubSub()
    for n in range(3):
        held.dead_letter(HOLD, json.dumps({"run_id": f"tr-{n}", "attempt": 1}).encode(), run_id=f"tr-{n}")
    return held


@pytest.fixture
def admin(pubsub):
    return make_app("Ops@Example.com", " someone@example.com, ops@example.com ,", pubsub).test_client()


def test_admins_are_a_case_insensitive_comma_list_and_nobody_by_default():
    assert Settings.from_environ({}).admins == frozenset()
    assert Settings.from_environ({"TRAINYARD_ADMINS": "A@x.com, b@X.com,,"}).admins == {"a@x.com", "b@x.com"}


def test_an_admin_lists_without_consuming(admin, pubsub):
    first = admin.get(f"{BASE}/run-submit?limit=2", headers=AUTH)
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["topic"] == "run-submit" and body["subscription"] == "run-submit-dead-letter-hold"
    assert [m["message_id"] for m in body["dead_letters"]] == ["1", "2"]
    assert json.loads(body["dead_letters"][0]["data"]) == {"run_id": "tr-0", "attempt": 1}
    assert body["dead_letters"][0]["attributes"] == {"run_id": "tr-0"} and body["dead_letters"][0]["replayed_as"] is None
    again = admin.get(f"{BASE}/run-submit", headers=AUTH).get_json()["dead_letters"]
    assert [m["message_id"] for m in again] == ["1", "2", "3"]  # nothing was consumed
    assert pubsub.published == [] and pubsub.out == {}


def test_an_admin_replays_onto_the_topic_then_acknowledges(admin, pubsub):
    response = admin.post(f"{BASE}/run-submit/replay?limit=2", headers=AUTH)
    assert response.status_code == 200, response.get_json()
    replayed = response.get_json()["dead_letters"]
    assert [m["message_id"] for m in replayed] == ["1", "2"] and all(m["replayed_as"] for m in replayed)
    assert [(topic, json.loads(data), attrs) for topic, data, attrs in pubsub.published] == [
        ("projects/p/topics/run-submit", {"run_id": f"tr-{n}", "attempt": 1},
         {"run_id": f"tr-{n}", REPLAY_ATTRIBUTE: str(n + 1)}) for n in range(2)]
    left = admin.get(f"{BASE}/run-submit", headers=AUTH).get_json()["dead_letters"]
    assert [m["message_id"] for m in left] == ["3"]  # the replayed ones were acknowledged


def test_a_replay_that_fails_midway_says_how_far_it_got_and_keeps_the_rest(pubsub):
    failing = FakePubSub(fail_publish_after=1)
    failing.held = pubsub.held
    client = make_app("ops@example.com", "ops@example.com", failing).test_client()
    response = client.post(f"{BASE}/run-submit/replay", headers=AUTH)
    assert response.status_code == 503
    assert "replayed 1 of 3 to run-submit" in response.get_json()["message"]
    left = client.get(f"{BASE}/run-submit", headers=AUTH).get_json()["dead_letters"]
    assert [m["message_id"] for m in left] == ["2", "3"]


@pytest.mark.parametrize("admins", ["", "ops@example.com", "developer@example.com.evil"])
def test_anyone_else_is_refused_403_before_pubsub_is_touched(pubsub, admins):
    client = make_app("developer@example.com", admins, pubsub).test_client()
    for response in (client.get(f"{BASE}/run-submit", headers=AUTH), client.post(f"{BASE}/run-submit/replay", headers=AUTH),
                     client.get(f"{BASE}/not-a-topic", headers=AUTH)):
        assert response.status_code == 403
        body = response.get_json()
        assert body["error"] == "forbidden" and "TRAINYARD_ADMINS" in body["message"]
        assert "developer@example.com is not an administrator" in body["message"]
    assert len(pubsub.held[HOLD]) == 3 and pubsub.published == []


def test_no_identity_is_401(admin):
    assert admin.get(f"{BASE}/run-submit").status_code == 401


def test_an_unknown_topic_is_404_and_a_bad_limit_400_naming_it(admin):
    missing = admin.post(f"{BASE}/run-submit-dead-letter/replay", headers=AUTH)
    assert missing.status_code == 404 and "not a Trainyard topic" in missing.get_json()["message"]
    for limit in ("0", "101", "ten", "-1"):
        bad = admin.get(f"{BASE}/run-submit?limit={limit}", headers=AUTH)
        assert bad.status_code == 400 and bad.get_json()["errors"][0]["field"] == "limit", limit


def run_cli(app, *argv) -> tuple[int, str]:
    out = io.StringIO()
    original = cli.ApiClient

    def client_factory(url=None, token=None, timeout_s=30):
        client = ApiClient.__new__(ApiClient)
        client.url, client.timeout_s, client.session = "http://test", timeout_s, FlaskSession(app)
        client.session.headers["Authorization"] = f"Bearer {TOKEN}"
        return client

    cli.ApiClient = client_factory
    try:
        return cli.run(list(argv), out=out), out.getvalue()
    finally:
        cli.ApiClient = original


def test_the_cli_calls_the_admin_routes(pubsub, capsys):
    app = make_app("ops@example.com", "ops@example.com", pubsub)
    code, out = run_cli(app, "admin", "dead-letters", "list", "run-submit", "--limit", "2")
    assert code == 0 and out.startswith("2 message(s) held from run-submit\n1  ") and '{"run_id": "tr-0"' in out
    code, out = run_cli(app, "--json", "admin", "dead-letters", "replay", "run-submit", "--limit", "1")
    assert code == 0 and [m["message_id"] for m in json.loads(out)] == ["1"] and len(pubsub.published) == 1
    code, out = run_cli(app, "admin", "dead-letters", "replay", "run-submit")
    assert code == 0 and out.startswith("2 message(s) replayed from run-submit\n") and " -> replayed-" in out
    refused = make_app("someone@example.com", "ops@example.com", pubsub)
    assert run_cli(refused, "admin", "dead-letters", "list", "run-submit")[0] == 1
    assert "HTTP 403: someone@example.com is not an administrator" in capsys.readouterr().err
    assert run_cli(app, "admin", "dead-letters", "list", "run-submit", "--limit", "0")[0] == 1
    assert "limit: must be a whole number from 1 to 100" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # argparse: not a topic
        run_cli(app, "admin", "dead-letters", "list", "not-a-topic")
    assert usage.value.code == 2


def test_the_cli_direct_path_is_the_same_logic_with_the_operators_credentials(pubsub, monkeypatch, capsys):
    import shared.adapters.dead_letters as dead_letters

    made = dead_letters.DeadLetters.__init__
    monkeypatch.setattr(dead_letters.DeadLetters, "__init__",
                        lambda self, project, subscriber=None, publisher=None: made(self, "p", pubsub, pubsub))
    out = io.StringIO()
    assert cli.run(["--json", "admin", "dead-letters", "replay", "run-submit", "--direct", "--limit", "2"], out=out) == 0
    assert [m["message_id"] for m in json.loads(out.getvalue())] == ["1", "2"] and len(pubsub.published) == 2
    assert cli.run(["admin", "dead-letters", "list", "run-submit", "--direct", "--limit", "500"], out=io.StringIO()) == 2
    assert "limit: must be a whole number from 1 to 100" in capsys.readouterr().err


def test_the_topics_are_every_topic_of_the_system():
    from shared.http.openapi import document

    params = document()["paths"][f"{BASE}/{{topic}}"]["get"]["parameters"]
    assert params[0]["schema"]["enum"] == list(topics.ALL)
