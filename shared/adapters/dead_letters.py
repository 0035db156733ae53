"""Dead-lettered messages: what Pub/Sub gave up delivering, kept by each topic's
`<topic>-dead-letter-hold` subscription (terraform/modules/pubsub_topic_with_dlq), listed and
replayed onto their topic once the cause is fixed.

- list: pulls up to N and hands them straight back (ack deadline 0), so nothing is consumed.
- replay: pulls up to N, republishes each — same data and attributes, plus
  `trainyard_replay_of` = the dead-lettered message's id — and only then acknowledges it. A replay
  interrupted between the two leaves the message held and may publish it twice: every consumer is
  idempotent (ARCHITECTURE.md), so a duplicate is harmless, and nothing is lost.

Through google-cloud-pubsub (PUBSUB_EMULATOR_HOST honoured), with the caller's credentials: an
operator's, as `trainyard admin dead-letters` runs it (roles/pubsub.subscriber on the hold
subscriptions and roles/pubsub.publisher on the topics).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from shared.contract import topics

REPLAY_ATTRIBUTE = "trainyard_replay_of"
PULL_TIMEOUT_S = 10.0


@dataclass
class DeadLetter:
    message_id: str
    publish_time: str
    data: str
    attributes: dict = field(default_factory=dict)
    replayed_as: Optional[str] = None


def hold_subscription(topic: str) -> str:
    if topic not in topics.ALL:
        raise ValueError(f"{topic!r} is not a Trainyard topic; one of {', '.join(topics.ALL)}")
    return f"{topics.dead_letter(topic)}-hold"


class DeadLetters:
    def __init__(self, project: str, subscriber=None, publisher=None):
        self.project = project
        self._subscriber = subscriber
        self._publisher = publisher

    @property
    def subscriber(self):
        if self._subscriber is None:
            from google.cloud import pubsub_v1

            self._subscriber = pubsub_v1.SubscriberClient()
        return self._subscriber

    @property
    def publisher(self):
        if self._publisher is None:
            from google.cloud import pubsub_v1

            self._publisher = pubsub_v1.PublisherClient()
        return self._publisher

    def _pull(self, topic: str, limit: int) -> tuple[str, list]:
        path = self.subscriber.subscription_path(self.project, hold_subscription(topic))
        received: list = []
        seen: set[str] = set()
        for _ in range(max(3, limit)):  # a pull may answer with fewer than there are
            if len(received) >= limit:
                break
            response = self.subscriber.pull(request={"subscription": path, "max_messages": limit - len(received)},
                                            timeout=PULL_TIMEOUT_S)
            fresh = [m for m in response.received_messages if m.message.message_id not in seen]
            if not response.received_messages:
                break
            seen.update(m.message.message_id for m in fresh)
            received.extend(fresh)
        return path, received

    @staticmethod
    def _letter(received) -> DeadLetter:
        message = received.message
        return DeadLetter(message_id=message.message_id, publish_time=message.publish_time.isoformat(),
                          data=bytes(message.data).decode("utf-8", errors="replace"),
                          attributes=dict(message.attributes))

    def list(self, topic: str, limit: int = 10) -> list[DeadLetter]:
        path, received = self._pull(topic, limit)
        if received:
            self.subscriber.modify_ack_deadline(request={"subscription": path, "ack_deadline_seconds": 0,
                                                         "ack_ids": [m.ack_id for m in received]})
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
                self.subscriber.acknowledge(request={"subscription": path, "ack_ids": [message.ack_id]})
                replayed.append(letter)
        finally:
            rest = [m.ack_id for m in received[len(replayed):]]
            if rest:  # not replayed (a publish failed): back to the hold at once
                self.subscriber.modify_ack_deadline(request={"subscription": path, "ack_deadline_seconds": 0,
                                                             "ack_ids": rest})
        return replayed
