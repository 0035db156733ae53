"""Notifications: the (before, after) trigger, the message, signing, and delivery — retried with backoff,
at most once per (run, attempt, event, target), never failing the run."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile

import pytest

from shared.domain import notifications
from shared.contract import topics
from shared.contract.messages import RunCommand
from shared.errors import TransientError
from shared.adapters.notify_targets import DeliveryError, LocalSecrets, TopicSender
from shared.services import progress
from shared.services.actions import notify
from shared.services.ports import Effects
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.services import intake
from shared.adapters.secret_store import LocalSecretFile
from shared.services.notification_targets import NotificationTargets, TargetPolicy
from tests.builders import demo_member, estimated_cost, run_body, seed_catalog
from tests.fakes import FakePublisher, InMemoryRepository
from tests.unit.scenario import job_timeline
from tests.unit.test_control_plane import do_submit, env  # noqa: F401 (fixture)

HOOK = {"webhooks": [{"url": "https://hooks.example.com/services/T/B/x", "secret": "team-hook"}],
        "pubsub_topic": "ml-alerts"}
BINDINGS = {"team-hook": ("https://hooks.example.com/services/",)}
# Module-level, so not a tmp_path: under the session's scratch, which tests/conftest.py removes at the end.
URLS = LocalSecretFile(os.path.join(tempfile.mkdtemp(prefix="trainyard-test-urls-"), "webhook-urls.json"))
TARGETS = NotificationTargets(TargetPolicy("trainyard-local", signing_secrets=BINDINGS), URLS)


class Webhooks:
    """A webhook receiver that refuses its first `fail` calls."""

    def __init__(self, fail: int = 0):
        self.fail, self.calls, self.received = fail, 0, []

    def send(self, url, payload, secret=None):
        self.calls += 1
        if self.calls <= self.fail:
            raise DeliveryError(f"hooks.example.com: HTTP 503 (call {self.calls})")
        self.received.append((url, payload, secret))


def notifier(webhooks, publisher=None, secrets='{"team-hook": "s3cret"}'):
    waits = []
    made = notify.Notifier(webhooks=webhooks, topics=TopicSender(publisher or FakePublisher()),
                           secrets=LocalSecrets(secrets), urls=URLS, signing_bindings=BINDINGS,
                           link_base="https://example.com/training", tries=3,
                           backoff_s=0.5, sleep=waits.append)
    return made, waits


def failed_run(repo, **extra):
    ids = seed_catalog(repo)
    run = intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()),
                            run_body(ids["experiment"], notifications=HOOK, **extra),
                            *demo_member("dev@example.com"), targets=TARGETS)
    return repo.mutate_run(run["id"], lambda d: {**d, "status": "failed", "error_stage": "Train",
                                                 "error_message": "CUDA out of memory", "duration_seconds": 5400,
                                                 "estimated_cost": estimated_cost(3.217)})


# ----------------------------------------------------------------------------- the trigger

def test_events_for_a_change():
    config = {"webhooks": [{"url": "https://h.example.com/x"}]}
    running = {"id": "r", "status": "running", "attempt": 1, "notifications": config}
    assert notifications.events_for(running, {**running, "status": "failed"}) == ["failed"]
    assert notifications.events_for(running, {**running, "status": "not_blessed"}) == ["not_blessed"]
    assert notifications.events_for({**running, "status": "failed"}, {**running, "status": "failed"}) == []
    retried = {**running, "status": "failed", "attempt": 2}
    assert notifications.events_for({**running, "status": "failed"}, retried) == ["failed"]  # a new attempt
    assert notifications.events_for(running, {**running, "status": "completed", "notifications": None}) == []
    only_failures = {**running, "notifications": {**config, "events": ["failed"]}}
    assert notifications.events_for(only_failures, {**only_failures, "status": "completed"}) == []
    assert notifications.events_for(running, {**running, "status": "running", "current_stage": "Train"}) == []
    assert notifications.events_for(None, {**running, "status": "cancelled"}) == ["cancelled"]


def test_bad_targets_are_refused_naming_the_field():
    from shared.errors import FieldError

    repo = InMemoryRepository()
    ids = seed_catalog(repo)
    for bad, field in (({"webhooks": [{"url": "ftp://x"}]}, "notifications.webhooks.0.url"),
                       ({"webhooks": [{"url": "https://x.example.com", "secret": "not a name!"}]},
                        "notifications.webhooks.0.secret"),
                       ({"pubsub_topic": "projects/x/subscriptions/y"}, "notifications.pubsub_topic"),
                       ({"events": ["exploded"]}, "notifications.events.0")):
        with pytest.raises(FieldError) as refused:
            intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()),
                              run_body(ids["experiment"], notifications=bad), *demo_member("d@x.com"),
                              targets=TARGETS)
        assert field in [e["field"] for e in refused.value.errors], refused.value.errors


# ----------------------------------------------------------------------------- message and signature

def test_the_message_says_what_an_on_call_engineer_needs():
    run = {"id": "tr-1", "name": "recs", "run_number": 7, "attempt": 2, "status": "not_blessed",
           "duration_seconds": 3725, "estimated_cost": {"total": 1.234, "currency": "USD", "upper_bound": False},
           "evaluation_results": {"threshold_metric": "recall_at_100", "actual_value": 0.28512345,
                                  "threshold_value": 0.3, "blessed": False}}
    message = notifications.message(run, "not_blessed", "https://example.com/training#run=tr-1")
    text = message["text"]
    assert "*recs #7* ⚠️ not blessed (attempt 2)" in text and "recall_at_100 0.2851 vs threshold 0.3 (below)" in text
    assert "Duration: 1h 2m" in text and "Estimated cost: ≈ 1.23 USD" in text
    assert "<https://example.com/training#run=tr-1|Open the run>" in text
    assert message["blocks"][0]["text"]["type"] == "mrkdwn"  # Slack's incoming-webhook shape
    assert message["trainyard"]["gate"] == {"metric": "recall_at_100", "value": 0.28512345, "threshold": 0.3,
                                            "passed": False, "lift_percent": None, "lift_over_ease_percent": None,
                                            "champion_value": None, "champion_version": None,
                                            "champion_required_value": None, "champion_error": None, "reason": None}


def test_the_message_gives_the_lift_over_most_popular_and_over_ease():
    gate = {"threshold_metric": "recall_at_100", "actual_value": 0.4, "threshold_value": 0.3, "blessed": True,
            "lift_percent": 33.56, "required_lift_percent": 15.0, "lift_over_ease_percent": -2.94,
            "required_lift_over_ease_percent": -10.0, "ease_value": 0.412}
    message = notifications.message({"name": "recs", "run_number": 8, "evaluation_results": gate}, "completed", None)
    assert ("recall_at_100 0.4 vs threshold 0.3 (passed); +33.6% over most-popular (required ≥ 15%); "
            "-2.9% over EASE (required ≥ -10%)") in message["text"]
    assert message["trainyard"]["gate"]["lift_percent"] == 33.56
    assert message["trainyard"]["gate"]["lift_over_ease_percent"] == -2.94
    skipped = {**gate, "lift_over_ease_percent": None, "ease_value": None,
               "ease_skipped_reason": "the catalog has more than 10,000 items (evaluator_config.ease_max_items)"}
    text = notifications.message({"name": "recs", "evaluation_results": skipped}, "completed", None)["text"]
    assert "EASE not scored, its lift not held: the catalog has more than 10,000 items" in text


LOST_TO_CHAMPION = {"threshold_metric": "recall_at_100", "actual_value": 0.41, "threshold_value": 0.3, "blessed": False,
                    "champion_value": 0.52, "champion_version": "3", "champion_source": "registry default",
                    "champion_tolerance": 0.01, "champion_required_value": 0.5148,
                    "reason": "not blessed: recall_at_100 0.41 < champion 0.52 × 0.99"}


def test_the_message_says_the_champion_held_the_run_back():
    message = notifications.message({"name": "recs", "run_number": 9, "evaluation_results": LOST_TO_CHAMPION},
                                    "not_blessed", None)
    assert "champion v3 (registry default) 0.52, required ≥ 0.5148 (× 0.99)" in message["text"]
    assert "Verdict: not blessed: recall_at_100 0.41 < champion 0.52 × 0.99" in message["text"]
    gate = message["trainyard"]["gate"]
    assert (gate["champion_value"], gate["champion_required_value"], gate["reason"]) == \
        (0.52, 0.5148, LOST_TO_CHAMPION["reason"])
    unscored = {**LOST_TO_CHAMPION, "blessed": True, "champion_value": None, "champion_required_value": None,
                "champion_error": "champion 3 (registry default) could not be loaded from /gone"}
    text = notifications.message({"name": "recs", "evaluation_results": unscored}, "completed", None)["text"]
    assert "champion not scored, the threshold alone decided: champion 3 (registry default) could not be loaded" in text


def test_the_signature_is_an_hmac_a_receiver_can_recompute():
    body = b'{"text": "x"}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert notifications.signature("s3cret", "1700000000", body) == "v1=" + expected


# ----------------------------------------------------------------------------- delivery

def test_a_receiver_that_fails_twice_gets_it_once_with_backoff():
    repo, topic = InMemoryRepository(), FakePublisher()
    run = failed_run(repo)
    hooks = Webhooks(fail=2)
    made, waits = notifier(hooks, topic)
    assert notify.deliver(repo, made, run["id"], 1, "failed") == "notified"
    assert hooks.calls == 3 and waits == [0.5, 1.0] and len(hooks.received) == 1
    url, payload, secret = hooks.received[0]
    assert secret == "s3cret" and payload["trainyard"]["error_message"] == "CUDA out of memory"
    assert "Estimated cost: ≈ 3.22 USD" in payload["text"] and "Duration: 1h 30m" in payload["text"]
    assert topic.messages[0][0] == "ml-alerts" and topic.messages[0][1]["event"] == "failed"
    ledger = repo.get_run(run["id"])["notifications_sent"]
    assert {k: v["status"] for k, v in ledger.items()} == {"1:failed:webhook-0": "sent", "1:failed:pubsub": "sent"}
    # A redelivered command (Pub/Sub is at least once) sends nothing again.
    assert notify.deliver(repo, made, run["id"], 1, "failed") == "notified"
    assert hooks.calls == 3 and len(topic.messages) == 1


def test_a_target_still_failing_is_handed_back_to_pub_sub_and_only_it_is_retried():
    repo, topic = InMemoryRepository(), FakePublisher()
    run = failed_run(repo)
    hooks = Webhooks(fail=5)
    made, _ = notifier(hooks, topic)
    with pytest.raises(TransientError, match="webhook-0: hooks.example.com: HTTP 503"):
        notify.deliver(repo, made, run["id"], 1, "failed")
    ledger = repo.get_run(run["id"])["notifications_sent"]
    assert ledger["1:failed:webhook-0"]["status"] == "failed" and ledger["1:failed:pubsub"]["status"] == "sent"
    assert notify.deliver(repo, made, run["id"], 1, "failed") == "notified"  # the redelivery: 4th-6th call
    assert len(hooks.received) == 1 and len(topic.messages) == 1
    assert repo.get_run(run["id"])["notifications_sent"]["1:failed:webhook-0"]["tries"] == 2


def test_a_target_being_sent_is_never_sent_twice():
    repo = InMemoryRepository()
    run = failed_run(repo)
    repo.mutate_run(run["id"], lambda d: {**d, "notifications_sent": {"1:failed:webhook-0": {"status": "sending"}}})
    hooks = Webhooks()
    made, _ = notifier(hooks)
    assert notify.deliver(repo, made, run["id"], 1, "failed") == "notified" and hooks.calls == 0


def test_a_missing_signing_secret_fails_that_target_without_retrying():
    repo = InMemoryRepository()
    run = failed_run(repo)
    made, _ = notifier(Webhooks(), secrets="{}")
    assert notify.deliver(repo, made, run["id"], 1, "failed") == "notified"
    entry = repo.get_run(run["id"])["notifications_sent"]["1:failed:webhook-0"]
    assert entry["status"] == "failed" and "team-hook" in entry["error"]


# ----------------------------------------------------------------------------- queued where the run ends

def test_a_run_that_fails_in_the_pipeline_queues_one_notify_command(env):  # noqa: F811
    repo, publisher = env["repo"], FakePublisher()
    repo.mutate_run(env["run"]["id"], lambda d: {**d, "notifications": HOOK})
    do_submit(env)
    for snap in job_timeline(f"{env['run']['id']}-a1", fail_at="Trainer") * 2:  # every event twice
        env["backend"].jobs[snap.job_id] = snap
        progress.apply_job(env["run"]["id"], snap, repo, env["store"], "", Effects(publisher, LocalTickerJobs()))
    commands = [m for m in publisher.messages if m[0] == topics.RUN_COMMANDS]
    assert [m[1] for m in commands] == [{"command": "notify", "run_id": env["run"]["id"], "attempt": 1,
                                         "event": "failed"}]


def test_a_queue_failure_never_fails_the_run():
    run = {"id": "r", "status": "failed", "attempt": 1, "notifications": HOOK}
    assert notify.queue(FakePublisher(fail=True), {**run, "status": "running"}, run) == ["failed"]


def test_a_schedule_auto_pause_notifies_the_schedule_targets():
    publisher = FakePublisher()
    schedule = {"id": "ts-1", "notifications": HOOK, "status": "paused"}
    assert notify.queue_schedule_paused(publisher, schedule, {"id": "tr-9", "attempt": 1}) is True
    assert publisher.messages[0][1] == {"command": "notify", "run_id": "tr-9", "attempt": 1,
                                        "event": "schedule_auto_paused", "schedule_id": "ts-1"}
    assert notify.queue_schedule_paused(publisher, {"id": "ts-2", "notifications": None}, {"id": "tr-9"}) is False


def test_the_run_commands_consumer_parses_a_notify_command():
    from shared.services import commands

    command = RunCommand.model_validate(json.loads(json.dumps({"command": "notify", "run_id": "tr-1", "attempt": 1,
                                                           "event": "failed"})))
    repo = InMemoryRepository()
    assert commands.handle_command(command, repo, None, None, None, notifier=notifier(Webhooks())[0],
                                   effects=Effects(FakePublisher(), LocalTickerJobs()), declared=()) == "skipped"


def test_a_run_cancelled_before_it_started_is_notified_from_the_api():
    from shared.services.actions import cancel

    repo, publisher = InMemoryRepository(), FakePublisher()
    ids = seed_catalog(repo)
    run = intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()),
                            run_body(ids["experiment"], notifications=HOOK), *demo_member("d@x.com"),
                            targets=TARGETS)
    cancel.request(repo, Effects(publisher, LocalTickerJobs()), run["id"], demo_member("d@x.com")[0])
    assert [m[1]["event"] for m in publisher.messages if m[1].get("command") == "notify"] == ["cancelled"]
    cancel.request(repo, Effects(publisher, LocalTickerJobs()), run["id"], demo_member("d@x.com")[0])  # a repeat changes nothing and tells no one again
    assert len([m for m in publisher.messages if m[1].get("command") == "notify"]) == 1


def test_runs_cancelled_with_their_schedule_are_notified():
    """Review claim (issue 24): cancelling a schedule cancelled its waiting runs without a publisher, so
    a run whose targets asked for "cancelled" was never told. Each such run is told once."""
    from datetime import datetime, timedelta, timezone

    from shared.services import scheduling

    repo, publisher = InMemoryRepository(), FakePublisher()
    effects = Effects(publisher, LocalTickerJobs())
    ids = seed_catalog(repo)
    who, declared = demo_member("d@x.com")
    at = datetime(2026, 5, 1, tzinfo=timezone.utc)
    template = run_body(ids["experiment"], notifications=HOOK)
    schedule = scheduling.create_schedule(repo, {"name": "nightly", "schedule_type": "daily", "time_of_day": "02:30",
                                                 "timezone": "UTC", "concurrency_policy": "queue",
                                                 "run_template": template}, who, declared, LocalTickerJobs(),
                                          at=at, targets=TARGETS)
    scheduling.trigger_schedule(repo, effects, schedule["id"], who, at=at)
    waiting = scheduling.trigger_schedule(repo, effects, schedule["id"], who, at=at + timedelta(seconds=1))
    assert waiting["outcome"] == "queued"
    result = scheduling.cancel_schedule(repo, effects, schedule["id"], who, at=at)
    assert result["cancelled_runs"] == [waiting["training_run"]["id"]]
    told = [m[1] for m in publisher.messages if m[1].get("command") == "notify"]
    assert told == [{"command": "notify", "run_id": waiting["training_run"]["id"], "attempt": 1, "event": "cancelled"}]
