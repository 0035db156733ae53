"""Dead-letter replay on the Pub/Sub emulator, through the admin-only API routes of the running API
(the stack's developer is its admin) and, with --direct, straight to Pub/Sub: `trainyard admin
dead-letters list` shows what a topic's `<topic>-dead-letter-hold` keeps without consuming it; `replay`
republishes it onto its topic (same data and attributes, marked trainyard_replay_of) and only then
acknowledges it."""
from __future__ import annotations

import io
import json
import uuid

import pytest

from shared.contract import topics
from trainyard_cli.__main__ import run as cli

pytestmark = pytest.mark.integration
TOPIC = topics.SCHEDULE_TRIGGER  # its consumer ignores a trigger for an unknown schedule: replay is harmless


API_URL: list[str] = []  # the stack's API, set by the fixture below


@pytest.fixture(autouse=True)
def api_url(local_stack):
    API_URL[:] = [local_stack.api]


def call(*argv) -> tuple[int, object]:
    """The CLI as an operator runs it: through the API's admin routes, or with --direct to Pub/Sub."""
    out = io.StringIO()
    code = cli(["--json", "--url", API_URL[0], "admin", "dead-letters", *argv], out=out)
    return code, (json.loads(out.getvalue()) if out.getvalue() else None)


@pytest.fixture
def watcher(local_stack):
    """A pull subscription on the topic itself: what a replay publishes there."""
    from google.cloud import pubsub_v1

    project = local_stack.stack.config.project
    subscriber, publisher = pubsub_v1.SubscriberClient(), pubsub_v1.PublisherClient()
    path = subscriber.subscription_path(project, f"watch-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(name=path, topic=publisher.topic_path(project, TOPIC))
    yield subscriber, path
    subscriber.delete_subscription(subscription=path)


def drain_hold(project: str) -> None:
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(project, f"{topics.dead_letter(TOPIC)}-hold")
    while True:
        response = subscriber.pull(request={"subscription": path, "max_messages": 100}, timeout=5)
        if not response.received_messages:
            return
        subscriber.acknowledge(request={"subscription": path, "ack_ids": [m.ack_id for m in response.received_messages]})


def test_list_keeps_and_replay_republishes_then_acknowledges(local_stack, watcher, monkeypatch):
    from google.cloud import pubsub_v1

    project = local_stack.stack.config.project
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", project)
    drain_hold(project)
    publisher = pubsub_v1.PublisherClient()
    dead = publisher.topic_path(project, topics.dead_letter(TOPIC))
    sent = {publisher.publish(dead, json.dumps({"schedule_id": f"ts-gone{i}"}).encode(), schedule_id=f"ts-gone{i}")
            .result(timeout=30) for i in range(3)}  # as Pub/Sub forwards what it gave up on

    code, held = call("list", TOPIC, "--limit", "10")
    assert code == 0 and {m["message_id"] for m in held} == sent
    code, again = call("list", TOPIC)
    assert code == 0 and {m["message_id"] for m in again} == sent  # listing consumed nothing

    code, replayed = call("replay", TOPIC, "--limit", "2")
    assert code == 0 and len(replayed) == 2 and all(m["replayed_as"] for m in replayed)
    code, rest = call("list", TOPIC)
    assert {m["message_id"] for m in rest} == sent - {m["message_id"] for m in replayed}

    subscriber, path = watcher
    got = subscriber.pull(request={"subscription": path, "max_messages": 10}, timeout=10).received_messages
    republished = {m.message.attributes["trainyard_replay_of"]: m.message for m in got}
    assert set(republished) == {m["message_id"] for m in replayed}
    for letter in replayed:
        message = republished[letter["message_id"]]
        assert json.loads(message.data) == json.loads(letter["data"])
        assert message.attributes["schedule_id"] == letter["attributes"]["schedule_id"]

    code, last = call("replay", TOPIC, "--direct")  # the operator's own credentials, the same logic
    assert code == 0 and len(last) == 1
    assert call("list", TOPIC) == (0, []) and call("list", TOPIC, "--direct") == (0, [])
    replayed_by_api = [json.loads(line) for line in local_stack.log_lines("api") if '"dead letters replayed"' in line]
    assert replayed_by_api and replayed_by_api[-1]["by"] == local_stack.stack.config.dev_identity


def test_the_admin_routes_answer_as_documented(local_stack):
    listed = local_stack.get(f"/api/admin/dead-letters/{TOPIC}", limit=5)
    assert listed.status_code == 200 and listed.json()["subscription"] == f"{TOPIC}-dead-letter-hold"
    assert local_stack.get("/api/admin/dead-letters/not-a-topic").status_code == 404
    bad = local_stack.get(f"/api/admin/dead-letters/{TOPIC}", limit=0)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "limit"


def test_an_unknown_topic_is_a_usage_error(local_stack, capsys):
    with pytest.raises(SystemExit) as usage:
        cli(["admin", "dead-letters", "list", "not-a-topic"])
    assert usage.value.code == 2 and "invalid choice: 'not-a-topic'" in capsys.readouterr().err
