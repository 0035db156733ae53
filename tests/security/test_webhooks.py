"""Security review M1 (SSRF through webhooks) and M2 (webhook URLs readable by everyone), replayed as the
attacker would: targets posted through the HTTP app, notifications delivered by the run-commands
consumer's own code, and another user reading runs and schedules.

No test here sends a packet beyond loopback: every connection the sender opens goes through a guard that
refuses any other address (and the cases that must be refused are refused before connecting)."""
from __future__ import annotations

import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from shared.adapters.artifact_store import ArtifactStore
from shared.errors import TransientError
from shared.adapters.notify_targets import LocalSecrets, TopicSender, WebhookSender
from shared.domain import teams
from shared.http.app import Dependencies, create_app
from shared.services.actions import notify
from shared.settings import get_settings
from tests.builders import demo_member, run_body, seed_catalog
from tests.fakes import FakePublisher, InMemoryRepository
from tests.unit.test_schedules import NoJobs

TOKEN = "t"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
SLACK = "https://hooks.slack.com/services/T0ALICE/B0ALICE/alice-credential-xyz"
CREDENTIAL = "alice-credential-xyz"


@pytest.fixture
def loopback_only(monkeypatch):
    """Every connection urllib3 opens: recorded, and refused unless it is to loopback."""
    import urllib3.util.connection as connection

    opened, real = [], connection.create_connection

    def guarded(address, *args, **kwargs):
        opened.append(address[0])
        if address[0] not in ("127.0.0.1", "::1"):
            raise OSError(f"test guard: no connection to {address[0]}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(connection, "create_connection", guarded)
    return opened


def settings_with(settings, **fields):
    """These settings, where the tree declares them (so the attacks replay on a tree before the fix too)."""
    return replace(settings, **{k: v for k, v in fields.items() if hasattr(settings, k)})


# alice trains on team recs; mallory may read recs' runs and schedules (viewer) and trains on her own team,
# so she is a signed-in user who sees alice's work and can name alice's signing secret in runs of her own.
TEAMS = teams.parse({
    "recs": {"members": {"user:alice@example.com": "trainer", "user:mallory@example.com": "viewer"},
             "model_names": ["*"], "datasets": ["*"], "buckets": ["*"]},
    "lab": {"members": {"user:mallory@example.com": "trainer"},
            "model_names": ["*"], "datasets": ["*"], "buckets": ["*"]}})


@pytest.fixture
def platform(tmp_path):
    """One repository, seen by alice and by mallory (two signed-in users of the same deployment)."""
    repo, publisher = InMemoryRepository(), FakePublisher()
    base = settings_with(replace(get_settings(), auth_mode="local", dev_token=TOKEN, local_dir=str(tmp_path)),
                         notify_signing_secrets={"alice-hook": ("https://hooks.slack.com/services/T0ALICE/",)},
                         teams=TEAMS)

    def client(identity, **settings):
        deps = Dependencies(repo=repo, publisher=publisher, store=ArtifactStore(),
                            settings=settings_with(base, dev_identity=identity, **settings), scheduler_jobs=NoJobs())
        return create_app(deps).test_client()

    return {"repo": repo, "publisher": publisher, "ids": seed_catalog(repo, member=demo_member("alice@example.com", TEAMS)), "alice": client("alice@example.com"),
            "mallory": client("mallory@example.com"), "client": client, "settings": base}


def create(client, ids, notifications, path="/api/training-runs"):
    return client.post(path, data=json.dumps(run_body(ids["experiment"], notifications=notifications)),
                       headers=AUTH)


def errors(response) -> dict:
    return {e["field"]: e["message"] for e in response.get_json().get("errors", [])}


# ----------------------------------------------------------------------------- M1 at create time (P3)

@pytest.mark.parametrize("url", [
    "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token",
    "https://169.254.169.254/computeMetadata/v1/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://metadata/computeMetadata/v1/",
    "https://127.0.0.1/hook", "https://127.1.2.3:8443/hook", "https://localhost/hook",
    "https://10.0.0.5/hook", "https://172.16.0.1/hook", "https://192.168.1.10/hook", "https://100.64.0.1/hook",
    "https://[::1]/hook", "https://[fe80::1]/hook", "https://[fd00:ec2::254]/latest/meta-data/",
    "https://[::ffff:169.254.169.254]/", "https://0.0.0.0/hook", "https://224.0.0.1/hook",
    "https://db.internal/hook", "https://intranet/hook",
    "http://hooks.example.com/plain-http",
    "https://user:pass@hooks.example.com/x",
])
def test_a_webhook_at_an_internal_or_insecure_address_is_refused_at_create(platform, url):
    response = create(platform["alice"], platform["ids"], {"webhooks": [{"url": url}]})
    assert response.status_code == 400, response.get_json()
    assert "notifications.webhooks.0.url" in errors(response)
    assert platform["repo"].runs == {}  # nothing stored


def test_a_schedule_template_with_an_internal_webhook_is_refused(platform):
    body = {"name": "nightly", "schedule_type": "daily", "time_of_day": "03:00",
            "run_template": {"name": "nightly-recs", "base_experiment_id": platform["ids"]["experiment"],
                             "notifications": {"webhooks": [{"url": "https://169.254.169.254/"}]}},
            "notifications": {"pubsub_topic": "run-commands"}}
    response = platform["alice"].post("/api/training/schedules", data=json.dumps(body), headers=AUTH)
    assert response.status_code == 400
    assert {"run_template.notifications.webhooks.0.url", "notifications.pubsub_topic"} <= set(errors(response))


@pytest.mark.parametrize("topic", ["run-submit", "run-commands", "schedule-trigger", "run-submit-dead-letter",
                                   "projects/trainyard-local/topics/run-submit",
                                   "projects/someone-elses-project/topics/alerts"])
def test_trainyard_own_topics_and_other_projects_topics_are_refused(platform, topic):
    response = create(platform["alice"], platform["ids"], {"pubsub_topic": topic})
    assert response.status_code == 400 and "notifications.pubsub_topic" in errors(response)


def test_a_topic_of_our_own_project_is_accepted(platform):
    response = create(platform["alice"], platform["ids"], {"pubsub_topic": "ml-alerts"})
    assert response.status_code == 201, response.get_json()


# ----------------------------------------------------------------------------- M2: signing secrets bound

def test_a_signing_secret_cannot_sign_for_a_url_outside_its_prefixes(platform):
    """mallory names alice's team secret for her own receiver, to read signatures made with it."""
    stolen = {"webhooks": [{"url": "https://mallory.example.net/collect", "secret": "alice-hook"}]}
    response = create(platform["mallory"], platform["ids"], stolen)
    assert response.status_code == 400 and "notifications.webhooks.0.secret" in errors(response)
    # a prefix is matched from a host boundary: a look-alike host does not pass
    lookalike = {"webhooks": [{"url": "https://hooks.slack.com.mallory.net/services/T0ALICE/x",
                               "secret": "alice-hook"}]}
    assert create(platform["mallory"], platform["ids"], lookalike).status_code == 400
    other_workspace = {"webhooks": [{"url": "https://hooks.slack.com/services/T0MALLORY/B0/x", "secret": "alice-hook"}]}
    assert create(platform["mallory"], platform["ids"], other_workspace).status_code == 400
    undeclared = {"webhooks": [{"url": SLACK, "secret": "nobody-declared-this"}]}
    assert create(platform["alice"], platform["ids"], undeclared).status_code == 400
    assert create(platform["alice"], platform["ids"], {"webhooks": [{"url": SLACK, "secret": "alice-hook"}]}
                  ).status_code == 201


# ----------------------------------------------------------------------------- M2: the URL is a secret (P2)

def test_another_user_sees_only_the_host_of_a_webhook(platform):
    created = create(platform["alice"], platform["ids"], {"webhooks": [{"url": SLACK, "secret": "alice-hook"}]})
    assert created.status_code == 201
    run_id = created.get_json()["training_run"]["id"]
    assert CREDENTIAL not in created.get_data(as_text=True)
    for path in ("/api/training-runs", f"/api/training-runs/{run_id}"):
        seen = platform["mallory"].get(path, headers=AUTH)
        assert seen.status_code == 200 and CREDENTIAL not in seen.get_data(as_text=True)
    run = platform["mallory"].get(f"/api/training-runs/{run_id}", headers=AUTH).get_json()["training_run"]
    assert run["notifications"]["webhooks"] == [{"host": "hooks.slack.com", "secret": "alice-hook"}]
    # the document the dashboard's Firestore listeners read holds no URL either
    assert CREDENTIAL not in json.dumps(platform["repo"].get_run(run_id), default=str)


def test_another_user_sees_only_the_host_of_a_schedules_webhooks(platform):
    body = {"name": "nightly", "schedule_type": "daily", "time_of_day": "03:00",
            "run_template": {"name": "nightly-recs", "base_experiment_id": platform["ids"]["experiment"],
                             "notifications": {"webhooks": [{"url": SLACK}]}},
            "notifications": {"webhooks": [{"url": SLACK + "-paused"}]}}
    created = platform["alice"].post("/api/training/schedules", data=json.dumps(body), headers=AUTH)
    assert created.status_code == 201, created.get_json()
    sid = created.get_json()["schedule"]["id"]
    for path in ("/api/training/schedules", f"/api/training/schedules/{sid}"):
        seen = platform["mallory"].get(path, headers=AUTH)
        assert seen.status_code == 200 and CREDENTIAL not in seen.get_data(as_text=True)
    assert CREDENTIAL not in json.dumps(platform["repo"].get_schedule(sid), default=str)


def test_a_run_stored_with_a_plain_url_before_sealing_is_shown_by_host_only(platform):
    created = create(platform["alice"], platform["ids"], None)
    run_id = created.get_json()["training_run"]["id"]
    platform["repo"].mutate_run(run_id, lambda d: {**d, "notifications": {"webhooks": [{"url": SLACK}]}})
    seen = platform["mallory"].get(f"/api/training-runs/{run_id}", headers=AUTH)
    assert CREDENTIAL not in seen.get_data(as_text=True)
    assert seen.get_json()["training_run"]["notifications"]["webhooks"][0]["host"] == "hooks.slack.com"


# ----------------------------------------------------------------------------- M1 at send time

class Receiver(BaseHTTPRequestHandler):
    """A loopback receiver that answers what the test sets: a redirect to the metadata server, or an
    error with a body that must never be stored."""
    status, location, body, hits = 200, None, b"", []

    def do_POST(self):  # noqa: N802
        type(self).hits.append(self.path)
        self.send_response(type(self).status)
        if type(self).location:
            self.send_header("Location", type(self).location)
        self.send_header("Content-Length", str(len(type(self).body)))
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.status, Receiver.location, Receiver.body, Receiver.hits = 200, None, b"", []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def deliver_failed(platform, url, resolve=None, local_receivers=False):
    """alice's run with this webhook ends failed; the run-commands consumer's code delivers it."""
    alice = platform["client"]("alice@example.com", notify_local_receivers=local_receivers)
    created = create(alice, platform["ids"], {"webhooks": [{"url": url}], "events": ["failed"]})
    assert created.status_code == 201, created.get_json()
    run_id = created.get_json()["training_run"]["id"]
    platform["repo"].mutate_run(run_id, lambda d: {**d, "status": "failed"})
    from shared.composition import secret_store

    settings = settings_with(platform["settings"], notify_local_receivers=local_receivers)
    sender = WebhookSender(allow_loopback=local_receivers, **({"resolve": resolve} if resolve else {}))
    notifier = notify.Notifier(webhooks=sender, topics=TopicSender(FakePublisher()), secrets=LocalSecrets(""),
                               urls=secret_store(settings), tries=1, sleep=lambda s: None)
    try:
        notify.deliver(platform["repo"], notifier, run_id, 1, "failed")
    except TransientError:  # a failure worth retrying goes back to Pub/Sub; the ledger says what happened
        pass
    return platform["repo"].get_run(run_id)["notifications_sent"]["1:failed:webhook-0"]


def test_a_public_name_that_resolves_to_a_private_address_at_send_time_is_refused(platform, loopback_only):
    """DNS rebinding: hooks.example.com was public when the run was made; at send time it answers 10.0.0.5."""
    entry = deliver_failed(platform, "https://hooks.example.com/rebind", resolve=lambda host, port: ["10.0.0.5"])
    assert entry["status"] == "failed" and "refused" in entry["error"] and loopback_only == []
    entry = deliver_failed(platform, "https://hooks.example.com/rebind",
                           resolve=lambda host, port: ["93.184.216.34", "169.254.169.254"])
    assert entry["status"] == "failed" and loopback_only == []  # one bad address among good ones is enough


def test_a_redirect_to_the_metadata_server_is_not_followed(platform, receiver, loopback_only):
    Receiver.status, Receiver.location = 302, "http://169.254.169.254/computeMetadata/v1/instance/"
    entry = deliver_failed(platform, receiver + "/hook", local_receivers=True)
    assert entry["status"] == "failed" and "redirect" in entry["error"] and "302" in entry["error"]
    assert loopback_only == ["127.0.0.1"] and Receiver.hits == ["/hook"]


def test_a_receivers_answer_is_never_stored(platform, receiver, loopback_only):
    Receiver.status, Receiver.body = 500, b"internal: db password is hunter2"
    entry = deliver_failed(platform, receiver + "/hook", local_receivers=True)
    assert entry["status"] == "failed" and entry["error"].endswith("HTTP 500") and "hunter2" not in entry["error"]


def test_the_local_receivers_allowance_is_refused_in_the_cloud():
    from shared.settings import Settings

    with pytest.raises(ValueError, match="TRAINYARD_NOTIFY_LOCAL_RECEIVERS"):
        Settings.from_environ({"TRAINYARD_PIPELINE_BACKEND": "vertex", "TRAINYARD_NOTIFY_LOCAL_RECEIVERS": "true"})


def test_documents_stored_with_plain_urls_are_sealed_by_the_migration(platform):
    """Runs and schedules stored before URLs were secrets: the Firestore documents themselves (which the
    dashboard's listeners read) lose their URLs, and delivery still reaches them."""
    from shared.composition import notification_targets, secret_store
    from shared.services.notification_targets import seal_stored

    repo = platform["repo"]
    run_id = create(platform["alice"], platform["ids"], None).get_json()["training_run"]["id"]
    repo.mutate_run(run_id, lambda d: {**d, "notifications": {"webhooks": [{"url": SLACK}]}})
    body = {"name": "nightly", "schedule_type": "daily", "time_of_day": "03:00",
            "run_template": {"name": "nightly-recs", "base_experiment_id": platform["ids"]["experiment"]}}
    made = platform["alice"].post("/api/training/schedules", data=json.dumps(body), headers=AUTH)
    sid = made.get_json()["schedule"]["id"]
    repo.mutate_schedule(sid, lambda d: {**d, "notifications": {"webhooks": [{"url": SLACK}]},
                                         "run_template": {**d["run_template"],
                                                          "notifications": {"webhooks": [{"url": SLACK}]}}})
    targets = notification_targets(platform["settings"])
    assert seal_stored(repo, targets, page=1) == {"runs": 1, "schedules": 1}
    assert seal_stored(repo, targets) == {"runs": 0, "schedules": 0}  # repeatable
    for doc in (repo.get_run(run_id), repo.get_schedule(sid)):
        assert CREDENTIAL not in json.dumps(doc, default=str)
    ref = repo.get_run(run_id)["notifications"]["webhooks"][0]["url_ref"]
    assert secret_store(platform["settings"]).get(ref) == SLACK


def test_a_run_stored_with_an_internal_topic_before_the_check_is_not_published_to(platform):
    run_id = create(platform["alice"], platform["ids"], None).get_json()["training_run"]["id"]
    platform["repo"].mutate_run(run_id, lambda d: {**d, "status": "failed",
                                                   "notifications": {"pubsub_topic": "run-submit"}})
    topic = FakePublisher()
    notifier = notify.Notifier(webhooks=None, topics=TopicSender(topic), secrets=LocalSecrets(""),
                               project=platform["settings"].project, tries=1, sleep=lambda s: None)
    notify.deliver(platform["repo"], notifier, run_id, 1, "failed")
    entry = platform["repo"].get_run(run_id)["notifications_sent"]["1:failed:pubsub"]
    assert entry["status"] == "failed" and "refused" in entry["error"] and topic.messages == []
