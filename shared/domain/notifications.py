"""Notifications: who a run (or a schedule) tells when it ends, and what it says.

A run's or schedule's `notifications` names its targets — webhooks (Slack-compatible JSON, optionally
signed with a named secret; stored sealed, `SealedWebhook`, and shown by host only,
webhook_addresses.public_targets) and/or a
Pub/Sub topic — and the events that reach them. `events_for(before,
after)` is the pure "what to notify when a run changed" rule: called with the run document before and
after a change (shared/services/lifecycle.after_change can call it as it is), it names the events that
change produced. `message` builds what is sent; `signature` signs a webhook body.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any, Literal, Optional, Union
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.domain import deployments, runs

COMPLETED, FAILED, CANCELLED, NOT_BLESSED = runs.COMPLETED, runs.FAILED, runs.CANCELLED, runs.NOT_BLESSED
SCHEDULE_AUTO_PAUSED = "schedule_auto_paused"
ROLLED_BACK = "rolled_back"  # the run's model taken out of traffic, by a canary's breach or by hand
RUN_EVENTS = (COMPLETED, FAILED, CANCELLED, NOT_BLESSED)
EVENTS = RUN_EVENTS + (SCHEDULE_AUTO_PAUSED, ROLLED_BACK)
Event = Literal["completed", "failed", "cancelled", "not_blessed", "schedule_auto_paused", "rolled_back"]
SIGNATURE_HEADER, TIMESTAMP_HEADER = "X-Trainyard-Signature", "X-Trainyard-Timestamp"
_TOPIC = re.compile(r"^(projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/)?[A-Za-z][A-Za-z0-9._~%+-]{2,254}$")
SECRET_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")  # a Secret Manager secret id


class WebhookTarget(BaseModel):
    """A webhook as a request names it. Where it may point (https, public addresses) is checked against
    the deployment's policy by shared/services/notification_targets.py; the URL is then sealed away."""
    model_config = ConfigDict(extra="forbid")
    url: str = Field(..., max_length=2048, description="https://, on a public address; Slack incoming webhooks "
                                                       "work as they are. A secret: stored in Secret Manager, shown "
                                                       "as its host only")
    secret: Optional[str] = Field(None, description="name of the signing secret, bound to the URL prefixes it may "
                                                    "sign for (TRAINYARD_NOTIFY_SIGNING_SECRETS); never the secret "
                                                    "itself")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an https:// URL")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not SECRET_NAME.match(value):
            raise ValueError("must be a secret's name (letters, digits, '_' and '-'), not its value")
        return value


class SealedWebhook(BaseModel):
    """A webhook as it is stored: its URL is in the secret store under `url_ref`; `host` is what is shown."""
    model_config = ConfigDict(extra="forbid")
    url_ref: str = Field(..., pattern=SECRET_NAME.pattern)
    host: str
    secret: Optional[str] = Field(None, pattern=SECRET_NAME.pattern)


class NotificationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    webhooks: list[WebhookTarget] = Field(default_factory=list, max_length=5)
    pubsub_topic: Optional[str] = Field(None, description="a topic name or projects/P/topics/T of this project, "
                                                          "not one of Trainyard's own")
    events: list[Event] = Field(default_factory=lambda: list(EVENTS),
                                description="which events notify (default: every terminal state, not blessed, "
                                            "a schedule's auto-pause and a rollback of the run's deployment)")

    @field_validator("pubsub_topic")
    @classmethod
    def _topic(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not _TOPIC.match(value):
            raise ValueError("must be a Pub/Sub topic name or projects/PROJECT/topics/TOPIC")
        return value

    def targets(self) -> list[str]:
        """Stable names of the targets (the delivery ledger's keys)."""
        return [f"webhook-{i}" for i in range(len(self.webhooks))] + (["pubsub"] if self.pubsub_topic else [])


class StoredNotifications(NotificationConfig):
    """What a run or schedule document holds: sealed webhooks, or plain URLs stored before they were
    sealed (still delivered, never shown)."""
    webhooks: list[Union[SealedWebhook, WebhookTarget]] = Field(default_factory=list, max_length=5)


def topic_problem(topic: str, project: str) -> Optional[str]:
    """Why a run may not publish to this topic: Trainyard's own (their consumers would take the message for
    one of theirs) or another project's (the notifier's identity is not anyone's to lend)."""
    from shared.contract import topics

    name = topic
    if topic.startswith("projects/"):
        owner, name = topic.split("/")[1], topic.split("/")[3]
        if owner != project:
            return f"must be a topic of this project ({project}), not of {owner}"
    own = set(topics.ALL) | {topics.dead_letter(t) for t in topics.ALL}
    if name in own or name.startswith("trainyard-"):
        return f"{name} is one of Trainyard's own topics; name a topic of your own"
    return None


def signing_problem(url: str, secret: str, bindings: dict) -> Optional[str]:
    """Why this signing secret may not sign for this URL: each secret is bound to the URL prefixes its
    owners declared (TRAINYARD_NOTIFY_SIGNING_SECRETS), so nobody signs their own receiver's messages with
    another team's secret and then reads it off them."""
    prefixes = bindings.get(secret)
    if not prefixes:
        return f"signing secret {secret!r} is not declared (TRAINYARD_NOTIFY_SIGNING_SECRETS)"
    if not any(_under(url, prefix) for prefix in prefixes):
        return f"signing secret {secret!r} may sign only for URLs under {', '.join(prefixes)}"
    return None


def _under(url: str, prefix: str) -> bool:
    """The same scheme and host (and port, when the prefix names one), and a path that starts with the
    prefix's: compared by parts, so https://hooks.example.com.evil.io is not under https://hooks.example.com/."""
    try:
        have, want = urlsplit(url), urlsplit(prefix)
        ports = (have.port, want.port)
    except ValueError:
        return False
    return (have.scheme == want.scheme and (have.hostname or "") == (want.hostname or "")
            and (ports[1] is None or ports[0] == ports[1])
            and (have.path or "/").startswith(want.path or "/") and not have.username and not have.password)


def config_of(doc: Optional[dict]) -> Optional[StoredNotifications]:
    raw = (doc or {}).get("notifications")
    if not raw:
        return None
    config = StoredNotifications.model_validate(raw)
    return config if config.targets() else None


def events_for(before: Optional[dict], after: Optional[dict]) -> list[str]:
    """The run events a change produced: the run reached a terminal state (completed, failed, cancelled,
    not_blessed) it was not in before, in this attempt, and its notifications ask for that event."""
    if not after or after.get("status") not in RUN_EVENTS:
        return []
    if before and before.get("status") == after["status"] and before.get("attempt") == after.get("attempt"):
        return []
    config = config_of(after)
    return [after["status"]] if config and after["status"] in config.events else []


def ledger_key(attempt: int, event: str, target: str, deployment_id: Optional[str] = None) -> str:
    """One delivery per (attempt, event, target); a rollback's per deployment (each is rolled back once)."""
    return f"{attempt}:{event}{'@' + deployment_id if deployment_id else ''}:{target}"


def rollback_of(run: dict) -> Optional[dict]:
    """The facts of the run's rolled-back deployment a notification gives: which endpoint, by whom or what,
    why (a breach: the figures seen and the limits held to), and the split that now serves."""
    deployment = run.get("deployment") or {}
    rollback = deployment.get("rollback") or {}
    if deployment.get("status") != deployments.ROLLED_BACK:
        return None
    watched = deployment.get("canary") or {}
    breach = None
    if rollback.get("automatic"):
        breach = {"seen": {k: v for k, v in (watched.get("last_check") or {}).items() if k != "at"},
                  "limits": {k: watched.get(k) for k in ("max_error_rate", "max_p95_latency_ms", "min_requests")}}
    return {"deployment_id": deployment.get("id"), "endpoint": deployment.get("endpoint_resource_name"),
            "deployed_model_id": deployment.get("deployed_model_id"), "automatic": bool(rollback.get("automatic")),
            "by": rollback.get("requested_by"), "reason": rollback.get("reason"), "breach": breach,
            "traffic": deployment.get("traffic") or {}, "at": rollback.get("done_at")}


def _split(traffic: dict) -> str:
    return ", ".join(f"{model} {share} %" for model, share in sorted(traffic.items(), key=lambda kv: -kv[1])) or "none"


def _gate(run: dict) -> Optional[dict]:
    gate = run.get("evaluation_results") or {}
    if not gate.get("threshold_metric"):
        return None
    return {"metric": gate["threshold_metric"], "value": gate.get("actual_value"),
            "threshold": gate.get("threshold_value"), "passed": bool(gate.get("blessed")),
            "lift_percent": gate.get("lift_percent"), "lift_over_ease_percent": gate.get("lift_over_ease_percent"),
            "champion_value": gate.get("champion_value"), "champion_version": gate.get("champion_version"),
            "champion_required_value": gate.get("champion_required_value"),
            "champion_error": gate.get("champion_error"), "reason": gate.get("reason")}


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


HEADLINES = {COMPLETED: "✅ completed", FAILED: "❌ failed", CANCELLED: "⏹ cancelled",
             NOT_BLESSED: "⚠️ not blessed", SCHEDULE_AUTO_PAUSED: "⏸ schedule auto-paused",
             ROLLED_BACK: "↩️ deployment rolled back"}


def message(run: dict, event: str, link: Optional[str], schedule: Optional[dict] = None) -> dict:
    """Slack-compatible JSON (`text` + `blocks`) with the same facts, structured, under `trainyard`."""
    name = f"{run.get('name')} #{run.get('run_number')}"
    gate = _gate(run)
    cost = run.get("estimated_cost") or {}
    facts = [f"*{name}* {HEADLINES.get(event, event)}" + (f" (attempt {run.get('attempt')})"
                                                          if (run.get("attempt") or 1) > 1 else "")]
    if event == SCHEDULE_AUTO_PAUSED and schedule:
        facts.append(f"Schedule *{schedule.get('name')}* ({schedule.get('id')}): {schedule.get('paused_reason')}")
    rollback = rollback_of(run) if event == ROLLED_BACK else None
    if rollback:
        how = "automatically (canary watch)" if rollback["automatic"] else f"by {rollback['by']}"
        facts.append(f"Endpoint {rollback['endpoint']}: model {rollback['deployed_model_id']} rolled back {how}: "
                     f"{rollback['reason']}")
        facts.append(f"Traffic now: {_split(rollback['traffic'])}")
    if run.get("error_message"):
        facts.append(f"Failed at {run.get('error_stage')}: {str(run['error_message'])[:300]}")
    if gate:
        facts.append(f"Gate: {gate['metric']} {_num(gate['value'])} vs threshold {_num(gate['threshold'])}"
                     f" ({'passed' if gate['passed'] else 'below'})" + "".join(f"; {w}" for w in runs.gate_lifts(run["evaluation_results"])))
        if gate["reason"]:  # the verdict in words: which gate held it back (the champion, the threshold, a lift)
            facts.append(f"Verdict: {gate['reason']}")
    if run.get("duration_seconds") is not None:
        facts.append(f"Duration: {runs.format_duration(run['duration_seconds'])}")
    if cost.get("total") is not None:
        facts.append(f"Estimated cost: {'≤' if cost.get('upper_bound') else '≈'} {cost['total']:.2f} "
                     f"{cost.get('currency', 'USD')}")
    if link:
        facts.append(f"<{link}|Open the run>")
    text = "\n".join(facts)
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        "trainyard": {
            "event": event, "run_id": run.get("id"), "attempt": run.get("attempt"), "name": run.get("name"),
            "run_number": run.get("run_number"), "status": run.get("status"), "schedule_id": run.get("schedule_id"),
            "gate": gate, "duration_seconds": run.get("duration_seconds"),
            "estimated_cost": {k: cost.get(k) for k in ("total", "currency", "upper_bound")} if cost else None,
            "error_stage": run.get("error_stage") or None, "error_message": run.get("error_message") or None,
            "link": link, **({"rollback": rollback} if rollback else {}),
        },
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`v1=` + hex HMAC-SHA256 of `{timestamp}.{body}` with the secret: a receiver recomputes it and
    rejects a mismatch (and an old timestamp, against replays)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()
