"""Pub/Sub: publishing commands and reading the push envelope every consumer receives.

Eventarc (cloud) and the emulator's push subscription (local, via functions-framework's conversion)
both hand a consumer a CloudEvent whose data is {"message": {data, attributes, messageId,
publishTime}, "subscription": ...}; `parse_push` reads that one shape.
"""
from __future__ import annotations

import base64
import concurrent.futures
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional, Protocol

from shared import log
from shared.adapters.lazy_client import LazyClient
from shared.errors import TransientError


@dataclass(frozen=True)
class PushMessage:
    message_id: str
    data: bytes
    attributes: dict = field(default_factory=dict)
    publish_time: Optional[str] = None

    def json(self) -> Any:
        return json.loads(self.data.decode("utf-8"))

    @property
    def published_at(self) -> Optional[datetime]:
        """When Pub/Sub accepted the message (None when the envelope has no readable time)."""
        if not self.publish_time:
            return None
        try:
            return datetime.fromisoformat(str(self.publish_time).replace("Z", "+00:00"))
        except ValueError:
            return None


class MalformedMessage(ValueError):
    """Not a message we can read: logged and acknowledged (never crash-looped)."""


def parse_push(event_data: Any) -> PushMessage:
    if isinstance(event_data, (bytes, str)):
        try:
            event_data = json.loads(event_data)
        except ValueError as exc:
            raise MalformedMessage(f"event body is not JSON: {exc}") from exc
    if not isinstance(event_data, dict) or not isinstance(event_data.get("message"), dict):
        raise MalformedMessage("event has no Pub/Sub message")
    message = event_data["message"]
    try:
        data = base64.b64decode(message.get("data") or "", validate=True)
    except (ValueError, TypeError) as exc:
        raise MalformedMessage(f"message data is not base64: {exc}") from exc
    return PushMessage(
        message_id=str(message.get("messageId") or message.get("message_id") or ""),
        data=data,
        attributes=message.get("attributes") or {},
        publish_time=message.get("publishTime") or message.get("publish_time"),
    )


class Publisher(Protocol):
    def publish(self, topic: str, payload: dict, **attributes: str) -> str:
        ...


class PubSubPublisher:
    """google-cloud-pubsub publisher; honours PUBSUB_EMULATOR_HOST. Created once, lazily."""

    def __init__(self, project: str, timeout_s: float = 10.0):
        self.project = project
        self.timeout_s = timeout_s
        self._client = LazyClient(self._make_client)

    @staticmethod
    def _make_client():
        from google.cloud import pubsub_v1

        # Publish at once rather than batching for 10 ms: commands are single messages.
        return pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_messages=1))

    @property
    def client(self):
        return self._client.get()

    def publish(self, topic: str, payload: dict, **attributes: str) -> str:
        from google.api_core import exceptions

        path = topic if topic.startswith("projects/") else self.client.topic_path(self.project, topic)
        data = json.dumps(payload, default=str).encode("utf-8")
        try:
            message_id = self.client.publish(path, data, **attributes).result(timeout=self.timeout_s)
        except (exceptions.GoogleAPICallError, TimeoutError, concurrent.futures.TimeoutError) as exc:
            raise TransientError(f"publish to {topic} failed: {exc}") from exc
        # Which process publishes where is an IAM grant in the cloud (the rehearsal checks it from this line).
        log.info("published", topic=path.rsplit("/", 1)[-1], published_message_id=message_id)
        return message_id
