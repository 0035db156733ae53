"""Consumes `schedule-trigger` (Cloud Scheduler or the local ticker): the slot's run, made once; and
`data-landed` (bucket notifications, the BigQuery audit sink, the local watcher): a data-triggered run,
debounced and made once per event."""
from __future__ import annotations

import functions_framework

from shared.composition import root
from shared.consumer import consume, event_data
from shared.contract.messages import DataLanded, ScheduleTrigger


def handle_trigger(trigger: ScheduleTrigger, message) -> str:
    from shared.services import scheduling

    # A Cloud Scheduler trigger names only its schedule: its publish time says which slot it is.
    return scheduling.on_trigger(root.repo, root.effects, trigger, message.published_at,
                                 settings=root.settings)  # the spend guard's teams, prices and per-epoch default


def handle_data(payload: DataLanded, message) -> str:
    from shared.domain import data_triggers, runs
    from shared.services.data_triggers import on_data_event

    event = data_triggers.from_message(message.attributes, payload.model_dump(),
                                       message.published_at or runs.now())
    if event is None:  # a delete, a metadata update, another audit entry: nothing landed
        return "not-new-data"
    outcomes = on_data_event(root.repo, root.effects, event, settings=root.settings)
    return ",".join(f"{k}={v}" for k, v in sorted(outcomes.items())) or "no-schedule"


@functions_framework.cloud_event
def on_schedule_trigger(cloud_event):
    consume(event_data(cloud_event), ScheduleTrigger, handle_trigger, "scheduler")


@functions_framework.cloud_event
def on_data_landed(cloud_event):
    consume(event_data(cloud_event), DataLanded, handle_data, "data_triggers")
