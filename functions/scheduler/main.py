"""Consumes `schedule-trigger` (Cloud Scheduler or the local ticker): the slot's run, made once."""
from __future__ import annotations

import functions_framework

from shared.composition import root
from shared.consumer import consume, event_data
from shared.contract.messages import ScheduleTrigger


def handle_trigger(trigger: ScheduleTrigger, message) -> str:
    from shared.services import scheduling

    # A Cloud Scheduler trigger names only its schedule: its publish time says which slot it is.
    return scheduling.on_trigger(root.repo, root.effects, trigger, message.published_at,
                                 settings=root.settings)  # the spend guard's teams, prices and per-epoch default


@functions_framework.cloud_event
def on_schedule_trigger(cloud_event):
    consume(event_data(cloud_event), ScheduleTrigger, handle_trigger, "scheduler")
