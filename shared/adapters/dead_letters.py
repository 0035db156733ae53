"""Dead-lettered messages: what Pub/Sub gave up delivering, kept by each topic's
`<topic>-dead-letter-hold` subscription (terraform/modules/pubsub_topic_with_dlq), listed and
replayed onto their topic once the cause is fixed.

- list: pulls up to N and hands them straight back (ack deadline 0), so nothing is consumed.
- replay: pulls up to N, republishes each — same data and attributes, plus
  `trainyard_replay_of` = the dead-lettered message's id — and only then acknowledges it. A replay
  interrupted between the two leaves the message held and may publish it twice: every consumer is
  idempotent (ARCHITECTURE.md), so a duplicate is harmless, and nothing is lost.

Through google-cloud-pubsub (PUBSUB_EMULATOR_HOST honoured), with the credentials of whoever runs
it: the API's service account behind the admin routes (shared/http/admin_routes.py; terraform/
dead_letters.tf grants it roles/pubsub.subscriber on every hold subscription and iam.tf
roles/pubsub.publisher on every topic), or an operator's own with `trainyard admin dead-letters
--direct`. Pub/Sub's failures are TransientError (503 at the API), an unknown topic is NotFound and a
limit out of range a FieldError naming `limit`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from shared.adapters.lazy_client import LazyClient, cloud_client
from shared.contract import topics
from shared import log
from shared.errors import FieldError, NotFound, TransientError

REPLAY_ATTRIBUTE = "trainyard_replay_of"
# A pull on an empty subscription may be held open "for a bounded amount of time" and the client may
# cancel it when it no longer wishes to wait (PullRequest.return_immediately, google.pubsub.v1): 3 s
# bounds the admin page's wait on an empty hold (it was 10 s, and the fuzz spent 6 minutes on it).
PULL_TIMEOUT_S = 3.0
MAX_LIMIT = 100  # per call: a replay publishes them one by one inside the API's 60 s request


@dataclass
class DeadLetter:
    message_id: str
    publish_time: str
    data: str
    attributes: dict = field(default_factory=dict)
    replayed_as: Optional[str] = None


def hold_subscription(topic: str) -> str:
    if topic not in topics.ALL:
        raise NotFound(f"topic {topic!r} (not a Trainyard topic; one of {', '.join(topics.ALL)})")
    return f"{topics.dead_letter(topic)}-hold"


def checked_limit(limit) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise FieldError.one("limit", f"must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}")
    return limit


def _pubsub_errors():
    from google.api_core import exceptions

    return (exceptions.GoogleAPICallError, exceptions.RetryError, TimeoutError)


class DeadLetters:
    def __init__(self, project: str, subscriber=None, publisher=None):
        self.project = project
        self._subscriber = LazyClient(cloud_client("pubsub_v1", "SubscriberClient"), subscriber)
        self._publisher = LazyClient(cloud_client("pubsub_v1", "PublisherClient"), publisher)

    @property
    def subscriber(self):
        return self._subscriber.get()

    @property
    def publisher(self):
        return self._publisher.get()

    def _pull(self, topic: str, limit: int) -> tuple[str, list]:
        from google.api_core import exceptions

        path = self.subscriber.subscription_path(self.project, hold_subscription(topic))
        limit = checked_limit(limit)
        received: list = []
        seen: set[str] = set()
        try:
            for _ in range(max(3, limit)):  # a pull may answer with fewer than there are
                if len(received) >= limit:
                    break
                try:
                    response = self.subscriber.pull(request={"subscription": path,
                                                             "max_messages": limit - len(received)},
                                                    timeout=PULL_TIMEOUT_S)
                except exceptions.DeadlineExceeded:  # an empty subscription may hold a pull open until then
                    break
                fresh = [m for m in response.received_messages if m.message.message_id not in seen]
                if not response.received_messages:
                    break
                seen.update(m.message.message_id for m in fresh)
                received.extend(fresh)
        except _pubsub_errors() as exc:
            self._release(path, received)
            raise TransientError(f"Pub/Sub: pulling from {path.rsplit('/', 1)[-1]} failed: {exc}") from exc
        return path, received

    def _release(self, path: str, received: list) -> None:
        """Back to the hold at once (ack deadline 0), for the next look or replay."""
        if received:
            self.subscriber.modify_ack_deadline(request={"subscription": path, "ack_deadline_seconds": 0,
                                                         "ack_ids": [m.ack_id for m in received]})

    @staticmethod
    def _letter(received) -> DeadLetter:
        message = received.message
        return DeadLetter(message_id=message.message_id, publish_time=message.publish_time.isoformat(),
                          data=bytes(message.data).decode("utf-8", errors="replace"),
                          attributes=dict(message.attributes))

    def list(self, topic: str, limit: int = 10) -> list[DeadLetter]:
        path, received = self._pull(topic, limit)
        try:
            self._release(path, received)
        except _pubsub_errors() as exc:  # they come back by themselves when the 60 s ack deadline ends
            log.warning("dead letters not handed back at once", topic=topic, error=str(exc))
        return [self._letter(m) for m in received]

    def replay(self, topic: str, limit: int = 10) -> list[DeadLetter]:
        path, received = self._pull(topic, limit)
        topic_path = self.publisher.topic_path(self.project, topic)
        replayed: list[DeadLetter] = []
        try:
            for message in received:
                letter = self._letter(message)
                attributes = {**letter.attributes, REPLAY_ATTRIBUTE: letter.message_id}
                letter.replayed_as = self.publisher.publish(topic_path, bytes(message.message.data),
                                                            **attributes).result(timeout=30)
                # Which identity publishes where is an IAM grant (the rehearsal checks it from this line).
                log.info("published", topic=topic, published_message_id=letter.replayed_as,
                         replay_of=letter.message_id)
                self.subscriber.acknowledge(request={"subscription": path, "ack_ids": [message.ack_id]})
                replayed.append(letter)
        except _pubsub_errors() as exc:
            raise TransientError(f"Pub/Sub: replayed {len(replayed)} of {len(received)} to {topic}, then: {exc}; "
                                 f"the rest are back in the hold") from exc
        finally:
            try:  # not replayed (a publish failed): back to the hold at once
                self._release(path, received[len(replayed):])
            except _pubsub_errors() as exc:
                log.warning("dead letters not handed back at once", topic=topic, error=str(exc))
        return replayed
