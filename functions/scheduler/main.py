"""Consumes `schedule-trigger` (Cloud Scheduler or the local ticker): the slot's run, made once."""
from __future__ import annotations

from datetime import datetime

import functions_framework

from shared.composition import root
from shared.consumer import consume, event_data
from shared.messaging import MalformedMessage, parse_push


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

    return schedules.on_trigger(root.repo, root.publisher, payload, publish_time, jobs=root.schedule_jobs)


@functions_framework.cloud_event
def on_schedule_trigger(cloud_event):
    data = event_data(cloud_event)
    when = published_at(data)
    consume(data, lambda payload: handle_trigger(payload, when), "scheduler")
