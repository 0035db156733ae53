"""Notify a run's (or its schedule's) targets: `queue` (after a run changed: one `notify` command per event on
run-commands — from shared/services/lifecycle.after_change with (before, after)), `queue_schedule_paused`
(a schedule auto-paused), `queue_rollback` (its deployment rolled back: one per deployment), and `deliver` (`execute`, the run-commands consumer: send to every target,
retried with backoff, at most once per (run, attempt, event, target)).

At most once: a target is claimed in the run's `notifications_sent` ledger ("sending", shared/domain/claims.py) before it is
sent and marked "sent" after; a claimed target is never sent again (a crash mid-send loses that one
message rather than sending it twice). A failed send is marked "failed" and released: `deliver`
raises TransientError, Pub/Sub redelivers the command with its backoff, and only the targets not yet
sent are tried again. Nothing here ever fails the run: queueing errors are logged, delivery runs on
its own consumer.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from shared.domain import notifications, runs
from shared import log
from shared.contract import topics
from shared.contract.messages import NOTIFY, RunCommand
from shared.errors import NotFound, TransientError
from shared.adapters.notify_targets import DeliveryError, DeliveryRefused
from shared.domain.webhook_addresses import host_of
from shared.services import run_writes
from shared.services.actions import Consumer



@dataclass
class Notifier:
    """What delivery uses (built by shared/composition.py)."""

    webhooks: object  # .send(url, payload, secret)
    topics: object  # .send(topic, payload)
    secrets: object  # .get(name) -> str: signing secrets
    urls: object = None  # .get(url_ref) -> str: sealed webhook URLs (shared/services/notification_targets.py)
    signing_bindings: dict = field(default_factory=dict)  # secret name -> URL prefixes it may sign for
    project: str = ""  # a run's topic must be of this project and not Trainyard's own (checked again here)
    link_base: str = ""  # the dashboard's URL; a run's link is {link_base}#run={id}
    tries: int = 3  # per target and delivery, before the command is handed back to Pub/Sub
    backoff_s: float = 1.0  # doubled after each try
    sleep: Callable[[float], None] = time.sleep


def _publish(publisher, payload: dict) -> bool:
    try:
        publisher.publish(topics.RUN_COMMANDS, payload, run_id=payload["run_id"], command=NOTIFY)
        return True
    except Exception as exc:  # noqa: BLE001 — a notification never fails the run's own event
        log.error("notification not queued", run_id=payload["run_id"], event=payload["event"], error=str(exc))
        return False


def queue(publisher, before: Optional[dict], after: Optional[dict]) -> list[str]:
    """After a run changed: queue one `notify` command per event the change produced."""
    try:
        events = notifications.events_for(before, after)
    except ValueError as exc:  # a stored config that no longer validates: say so, never fail the run
        log.warning("run notifications not read", run_id=(after or {}).get("id"), error=str(exc))
        return []
    for event in events:
        _publish(publisher, {"command": NOTIFY, "run_id": after["id"], "attempt": after.get("attempt", 1),
                             "event": event})
    return events


def _queue_event(publisher, owner: dict, run: dict, event: str, **about) -> bool:
    """Queue `event` of `run` when `owner`'s (the run's or its schedule's) targets asked for it."""
    try:
        config = notifications.config_of(owner)
    except ValueError:
        return False
    if not config or event not in config.events:
        return False
    return _publish(publisher, {"command": NOTIFY, "run_id": run["id"], "attempt": run.get("attempt", 1),
                                "event": event, **about})


def queue_schedule_paused(publisher, schedule: dict, run: dict) -> bool:
    """A schedule auto-paused after `run` failed: tell the schedule's targets."""
    return _queue_event(publisher, schedule, run, notifications.SCHEDULE_AUTO_PAUSED, schedule_id=schedule["id"])


def queue_rollback(publisher, run: dict) -> bool:
    """The run's deployment was rolled back (actions/rollback.py, once per rollback): tell the run's targets
    which endpoint, why (a breach's figure and limit, or who asked) and what traffic now serves."""
    return _queue_event(publisher, run, run, notifications.ROLLED_BACK, deployment_id=run["deployment"]["id"])


def _claim(repo, run_id: str, key: str) -> bool:
    return run_writes.write(repo, run_id, lambda doc: runs.claim_notification(doc, key, runs.now())) is not None


def _record(repo, run_id: str, key: str, sent: bool, error: Optional[str] = None) -> None:
    run_writes.write(repo, run_id, lambda doc: runs.record_notification(doc, key, sent, runs.now(), error))


def _send(notifier: Notifier, config, target: str, payload: dict) -> None:
    if target == "pubsub":
        problem = notifications.topic_problem(config.pubsub_topic, notifier.project) if notifier.project else None
        if problem:  # a run stored before its topic was checked
            raise DeliveryRefused(f"topic {config.pubsub_topic}: refused: {problem}")
        send = lambda: notifier.topics.send(config.pubsub_topic, payload)  # noqa: E731
    else:
        hook = config.webhooks[int(target.split("-")[1])]
        url = notifier.urls.get(hook.url_ref) if isinstance(hook, notifications.SealedWebhook) else hook.url
        if hook.secret:  # checked when the target was made; checked again, as the bindings may have changed
            problem = notifications.signing_problem(url, hook.secret, notifier.signing_bindings)
            if problem:
                raise DeliveryRefused(f"{host_of(url)}: refused: {problem}")
        secret = notifier.secrets.get(hook.secret) if hook.secret else None
        send = lambda: notifier.webhooks.send(url, payload, secret)  # noqa: E731
    wait = notifier.backoff_s
    for attempt in range(1, notifier.tries + 1):
        try:
            return send()
        except DeliveryRefused:
            raise
        except DeliveryError:
            if attempt == notifier.tries:
                raise
            notifier.sleep(wait)
            wait *= 2


def deliver(repo, notifier: Notifier, run_id: str, attempt: int, event: str,
            schedule_id: Optional[str] = None, deployment_id: Optional[str] = None) -> str:
    run = repo.get_run(run_id)
    if run is None:
        return "skipped"
    schedule = repo.get_schedule(schedule_id) if schedule_id else None
    try:
        config = notifications.config_of(schedule if schedule_id else run)
    except ValueError as exc:
        log.warning("notifications not read", run_id=run_id, error=str(exc))
        return "skipped"
    if config is None or event not in config.events:
        return "skipped"
    link = f"{notifier.link_base.rstrip('/')}#run={run_id}" if notifier.link_base else None
    payload = notifications.message(run, event, link, schedule)
    failed = []
    for target in config.targets():
        key = notifications.ledger_key(attempt, event, target, deployment_id)
        if not _claim(repo, run_id, key):
            continue  # sent, or being sent by another delivery: at most once
        try:
            _send(notifier, config, target, payload)
        except (NotFound, DeliveryRefused) as exc:  # no such secret, or a refused target: retrying will not help
            _record(repo, run_id, key, False, str(exc))
            log.error("notification not sent", run_id=run_id, event=event, target=target, error=str(exc))
            continue
        except (DeliveryError, TransientError) as exc:
            _record(repo, run_id, key, False, str(exc))
            failed.append(f"{target}: {exc}")
            continue
        _record(repo, run_id, key, True)
        log.info("notification sent", run_id=run_id, attempt=attempt, event=event, target=target)
    if failed:  # Pub/Sub redelivers with backoff; the targets already sent are skipped then
        raise TransientError(f"notification {event} of {run_id} not delivered to " + "; ".join(failed))
    return "notified"


def execute(command: RunCommand, consumer: Consumer) -> str:
    return deliver(consumer.repo, consumer.notifier, command.run_id, command.attempt or 1, command.event or "",
                   command.schedule_id, command.deployment_id)
