"""Consumes `schedule-trigger` (Cloud Scheduler or the local ticker): the slot's run, made once."""
from __future__ import annotations

from datetime import datetime

import functions_framework

from shared.consumer import consume, event_data
from shared.messaging import MalformedMessage, parse_push
from shared.once import Once


def _build():
    from shared.messaging import PubSubPublisher
    from shared.repository import FirestoreRepository
    from shared.services import schedules
    from shared.settings import get_settings

    settings = get_settings()
    return dict(schedules=schedules, repo=FirestoreRepository(settings.project),
                publisher=PubSubPublisher(settings.project))


deps = Once(_build)


def published_at(data) -> datetime | None:
    """The message's publish time: which slot a Cloud Scheduler trigger belongs to (its body says
    only which schedule)."""
    try:
        stamp = parse_push(data).publish_time
    except MalformedMessage:
        return None  # consume() acknowledges it as malformed
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None


def handle_trigger(payload, publish_time: datetime | None) -> str:
    d = deps()
    return d["schedules"].on_trigger(d["repo"], d["publisher"], payload, publish_time)


@functions_framework.cloud_event
def on_schedule_trigger(cloud_event):
    data = event_data(cloud_event)
    when = published_at(data)
    consume(data, lambda payload: handle_trigger(payload, when), "scheduler")
