"""A rollback tells the run's notification targets: which endpoint, what breached (the figure and the limit)
or who asked, and what traffic now serves; once per rollback, however often its commands come (the canary
loop on the in-memory fakes, delivery through the run-commands consumer's notify)."""
from __future__ import annotations

from shared.adapters.notify_targets import TopicSender
from shared.contract.messages import NOTIFY, RunCommand
from shared.domain import notifications
from shared.domain.canary import Observation
from shared.services import commands
from shared.services.actions import notify
from tests.fakes import FakePublisher
from tests.unit.test_actions import post, published_commands, world  # noqa: F401 - the fixture
from tests.unit.test_canary import OLD, reconcile_pass, staged, start_canary  # noqa: F401 - the fixture
from tests.unit.test_notifications import Webhooks

TARGETS = {"webhooks": [{"url": "https://hooks.example.com/services/T/B/x"}]}
ENDPOINT = "projects/p/locations/l/endpoints/123"


def watched_with_targets(w, **notifications_config):
    run = start_canary(w)
    return w.repo.mutate_run(run["id"], lambda d: {**d, "notifications": {**TARGETS, **notifications_config}})


def carry_out(w, kind: str) -> list[str]:
    """Run the queued commands of `kind` as the run-commands consumer would; the others stay queued."""
    mine = [p for p in published_commands(w) if p["command"] == kind]
    w.publisher.messages[:] = [m for m in w.publisher.messages if m[1].get("command") != kind]
    return [commands.handle_command(RunCommand.model_validate(p), w.repo, w.backend, w.store, w.serving,
                                    effects=w.deps.effects, declared=w.deps.settings.teams) for p in mine]


def deliver(w, command: dict, hooks: Webhooks) -> str:
    sender = notify.Notifier(webhooks=hooks, topics=TopicSender(FakePublisher()), secrets=None)
    return notify.deliver(w.repo, sender, command["run_id"], command["attempt"], command["event"],
                          command.get("schedule_id"), command.get("deployment_id"))


def test_an_automatic_rollback_says_what_breached_and_what_serves_now_once(staged):
    run = watched_with_targets(staged)
    staged.serving.metrics.seen = Observation(120, 30, 95.0)
    reconcile_pass(staged)
    assert carry_out(staged, "canary_check") == ["rolled_back"]
    (command,) = [p for p in published_commands(staged) if p["command"] == NOTIFY]
    assert command == {"command": NOTIFY, "run_id": run["id"], "attempt": 1, "event": "rolled_back",
                       "deployment_id": run["deployment"]["id"]}
    hooks = Webhooks()
    assert deliver(staged, command, hooks) == "notified"
    assert deliver(staged, command, hooks) == "notified" and len(hooks.received) == 1  # a redelivery: sent once
    payload = hooks.received[0][1]
    text = payload["text"]
    assert ENDPOINT in text and "automatically" in text
    assert "error rate 25.0% (30 of 120 requests) exceeds the limit of 5.0%" in text
    assert f"Traffic now: {OLD} 100 %, dm-new 0 %" in text
    facts = payload["trainyard"]["rollback"]
    assert facts["endpoint"] == ENDPOINT and facts["automatic"] is True and facts["traffic"] == {OLD: 100, "dm-new": 0}
    assert facts["breach"]["seen"]["error_rate"] == 0.25 and facts["breach"]["limits"]["max_error_rate"] == 0.05
    assert payload["trainyard"]["event"] == "rolled_back"
    # a repeated rollback command (or canary check) rolls nothing back again and queues no second notification
    staged.publisher.messages.append(("run-commands", {"command": "rollback", "run_id": run["id"],
                                                       "deployment_id": run["deployment"]["id"]}, {}))
    assert carry_out(staged, "rollback") == ["skipped"]
    assert len([p for p in published_commands(staged) if p["command"] == NOTIFY]) == 1


def test_a_rollback_by_hand_says_who(staged):
    run = watched_with_targets(staged)
    assert post(staged, f"/api/training-runs/{run['id']}/rollback", {"reason": "bad recs in QA"}).status_code == 202
    assert carry_out(staged, "rollback") == ["rolled_back"]
    (command,) = [p for p in published_commands(staged) if p["command"] == NOTIFY]
    hooks = Webhooks()
    deliver(staged, command, hooks)
    text = hooks.received[0][1]["text"]
    assert "by dev@example.com: bad recs in QA" in text and f"Traffic now: {OLD} 100 %" in text
    assert hooks.received[0][1]["trainyard"]["rollback"]["breach"] is None


def test_targets_that_did_not_ask_for_rollbacks_are_not_told(staged):
    run = watched_with_targets(staged, events=["failed"])
    post(staged, f"/api/training-runs/{run['id']}/rollback")
    assert carry_out(staged, "rollback") == ["rolled_back"]
    assert not [p for p in published_commands(staged) if p["command"] == NOTIFY]


def test_each_rollback_has_its_own_ledger_entry():
    assert notifications.ledger_key(1, "rolled_back", "webhook-0", "d-1") != \
        notifications.ledger_key(1, "rolled_back", "webhook-0", "d-2")
    assert notifications.ledger_key(2, "failed", "pubsub") == "2:failed:pubsub"  # the others' keys as they were
