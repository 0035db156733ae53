"""Consumes `schedule-trigger` (Cloud Scheduler or the local ticker): the slot's run, made once."""
from __future__ import annotations

import os
import sys
from datetime import datetime

_here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _here if os.path.isdir(os.path.join(_here, "shared")) else os.path.dirname(os.path.dirname(_here)))

import functions_framework  # noqa: E402

from shared.consumer import consume, event_data  # noqa: E402
from shared.messaging import MalformedMessage, parse_push  # noqa: E402
from shared.settings import get_settings  # noqa: E402

_deps = None


def deps():
    global _deps
    if _deps is None:
        from shared.messaging import PubSubPublisher
        from shared.repository import FirestoreRepository

        settings = get_settings()
        _deps = dict(repo=FirestoreRepository(settings.project), publisher=PubSubPublisher(settings.project))
    return _deps


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
    from shared.services import schedules

    d = deps()
    return schedules.on_trigger(d["repo"], d["publisher"], payload, publish_time)


@functions_framework.cloud_event
def on_schedule_trigger(cloud_event):
    data = event_data(cloud_event)
    when = published_at(data)
    consume(data, lambda payload: handle_trigger(payload, when), "scheduler")
