"""Notifications: who a run (or a schedule) tells when it ends, and what it says.

A run's or schedule's `notifications` names its targets — webhooks (Slack-compatible JSON, optionally
signed with a named secret) and/or a Pub/Sub topic — and the events that reach them. `events_for(before,
after)` is the pure "what to notify when a run changed" rule: called with the run document before and
after a change (shared/services/lifecycle.after_change can call it as it is), it names the events that
change produced. `message` builds what is sent; `signature` signs a webhook body.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.domain import runs

COMPLETED, FAILED, CANCELLED, NOT_BLESSED = runs.COMPLETED, runs.FAILED, runs.CANCELLED, runs.NOT_BLESSED
SCHEDULE_AUTO_PAUSED = "schedule_auto_paused"
RUN_EVENTS = (COMPLETED, FAILED, CANCELLED, NOT_BLESSED)
EVENTS = RUN_EVENTS + (SCHEDULE_AUTO_PAUSED,)
Event = Literal["completed", "failed", "cancelled", "not_blessed", "schedule_auto_paused"]
SIGNATURE_HEADER, TIMESTAMP_HEADER = "X-Trainyard-Signature", "X-Trainyard-Timestamp"
_TOPIC = re.compile(r"^(projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/)?[A-Za-z][A-Za-z0-9._~%+-]{2,254}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,255}$")  # a Secret Manager secret id


class WebhookTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(..., max_length=2048, description="https:// (http:// for a local receiver); Slack incoming "
                                                       "webhooks work as they are")
    secret: Optional[str] = Field(None, description="name of the signing secret: a Secret Manager secret id in the "
                                                    "cloud, a key of TRAINYARD_NOTIFY_SECRETS locally (never the "
                                                    "secret itself)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s):// URL")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not _SECRET.match(value):
            raise ValueError("must be a secret's name (letters, digits, '_' and '-'), not its value")
        return value


class NotificationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    webhooks: list[WebhookTarget] = Field(default_factory=list, max_length=5)
    pubsub_topic: Optional[str] = Field(None, description="a topic name or projects/P/topics/T for integrations")
    events: list[Event] = Field(default_factory=lambda: list(EVENTS),
                                description="which events notify (default: every terminal state, not blessed "
                                            "and a schedule's auto-pause)")

    @field_validator("pubsub_topic")
    @classmethod
    def _topic(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not _TOPIC.match(value):
            raise ValueError("must be a Pub/Sub topic name or projects/PROJECT/topics/TOPIC")
        return value

    def targets(self) -> list[str]:
        """Stable names of the targets (the delivery ledger's keys)."""
        return [f"webhook-{i}" for i in range(len(self.webhooks))] + (["pubsub"] if self.pubsub_topic else [])


def config_of(doc: Optional[dict]) -> Optional[NotificationConfig]:
    raw = (doc or {}).get("notifications")
    if not raw:
        return None
    config = NotificationConfig.model_validate(raw)
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


def ledger_key(attempt: int, event: str, target: str) -> str:
    return f"{attempt}:{event}:{target}"


def _gate(run: dict) -> Optional[dict]:
    gate = run.get("evaluation_results") or {}
    if not gate.get("threshold_metric"):
        return None
    return {"metric": gate["threshold_metric"], "value": gate.get("actual_value"),
            "threshold": gate.get("threshold_value"), "passed": bool(gate.get("blessed"))}


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


HEADLINES = {COMPLETED: "✅ completed", FAILED: "❌ failed", CANCELLED: "⏹ cancelled",
             NOT_BLESSED: "⚠️ not blessed", SCHEDULE_AUTO_PAUSED: "⏸ schedule auto-paused"}


def message(run: dict, event: str, link: Optional[str], schedule: Optional[dict] = None) -> dict:
    """Slack-compatible JSON (`text` + `blocks`) with the same facts, structured, under `trainyard`."""
    name = f"{run.get('name')} #{run.get('run_number')}"
    gate = _gate(run)
    cost = run.get("estimated_cost") or {}
    facts = [f"*{name}* {HEADLINES.get(event, event)}" + (f" (attempt {run.get('attempt')})"
                                                          if (run.get("attempt") or 1) > 1 else "")]
    if event == SCHEDULE_AUTO_PAUSED and schedule:
        facts.append(f"Schedule *{schedule.get('name')}* ({schedule.get('id')}): {schedule.get('paused_reason')}")
    if run.get("error_message"):
        facts.append(f"Failed at {run.get('error_stage')}: {str(run['error_message'])[:300]}")
    if gate:
        facts.append(f"Gate: {gate['metric']} {_num(gate['value'])} vs threshold {_num(gate['threshold'])}"
                     f" ({'passed' if gate['passed'] else 'below'})")
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
            "link": link,
        },
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`v1=` + hex HMAC-SHA256 of `{timestamp}.{body}` with the secret: a receiver recomputes it and
    rejects a mismatch (and an old timestamp, against replays)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()
