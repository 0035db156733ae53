"""The data-landed consumer's service: an event (a storage notification, a BigQuery audit entry forwarded by
the log sink, or the local watcher's notification) goes to every active schedule whose data_trigger it
matches; each decides in one transaction (shared/domain/data_triggers.decide: dedupe, debounce, at most
one queued run) and a fired decision makes its run through the same path as a clock slot
(scheduling.fire_slot), carrying the event.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from shared import log
from shared.adapters.repository import Repository
from shared.domain import data_triggers, runs, schedules
from shared.services import ports, scheduling

# Active schedules read per event. Firestore cannot index "a prefix of this object's name", so the
# matching is done here; a deployment has far fewer active schedules than this.
ACTIVE_SCAN = 1000


def on_data_event(repo: Repository, effects: ports.Effects, event: data_triggers.DataEvent,
                  at: Optional[datetime] = None, settings=None) -> dict[str, str]:
    """Each matching schedule → its outcome (fired, recorded, duplicate, ignored). Idempotent: a
    redelivered event is a duplicate, and if it had fired, its run is made now if a crash lost it."""
    at = at or runs.now()
    outcomes = {}
    for schedule in repo.list_schedules(schedules.ACTIVE, ACTIVE_SCAN):
        if data_triggers.matches(schedule.get("data_trigger"), event):
            outcomes[schedule["id"]] = _apply(repo, effects, schedule["id"], event, at, settings)
    if not outcomes:
        log.info("data event matches no schedule", source=event.source, location=event.location)
    return outcomes


def _apply(repo: Repository, effects: ports.Effects, schedule_id: str, event: data_triggers.DataEvent,
           at: datetime, settings) -> str:
    decided: dict = {}

    def mutate(schedule: dict) -> Optional[dict]:
        outcome, doc, run_id = data_triggers.decide(
            schedule, event, at, lambda s, rid, slot: schedules.admit(s, rid, slot, at))
        decided.update(outcome=outcome, run_id=run_id)
        return doc

    repo.mutate_schedule(schedule_id, mutate)
    outcome, run_id = decided.get("outcome", data_triggers.IGNORED), decided.get("run_id")
    log.info("data event", schedule_id=schedule_id, source=event.source, location=event.location,
             version=event.version, outcome=outcome, run_id=run_id)
    if run_id is not None:  # fired now, or a duplicate of the event that fired: fire_slot is idempotent
        scheduling.fire_slot(repo, effects, schedule_id, run_id, event.occurred_at, at, settings=settings,
                             trigger=event.record(at))
    return outcome
