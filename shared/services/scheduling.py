"""Schedule services: create, list, get (with run history), pause, resume (catch-up), cancel,
trigger, the schedule-trigger consumer, and run-now for scheduled runs. What a finished run does to
its schedule is shared/services/lifecycle.py.

The schedule document is the source of truth; the Cloud Scheduler job (or the local ticker) only
mirrors it, so a trigger for a paused, cancelled or completed schedule is ignored here.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Iterable, Optional

from shared.domain import runs, schedules, teams
from shared.domain.teams import Caller
from shared import log
from shared.contract.messages import ScheduleTrigger
from shared.errors import Conflict, FieldError, NotFound
from shared.validation import whole_number
from shared.adapters.messaging import Publisher
from shared.adapters.repository import Repository
from shared.services import lifecycle, run_builder

HISTORY_LIMIT = 20


def new_schedule_id() -> str:
    return "ts-" + uuid.uuid4().hex[:12]


def _jobs(jobs):
    if jobs is None:  # every caller hands in the adapter the composition root built
        raise TypeError("the schedules' job adapter (shared/composition.py schedule_jobs) was not given")
    return jobs


def _mutate(repo: Repository, schedule_id: str, mutate) -> Optional[dict]:
    return repo.mutate_schedule(schedule_id, mutate)


# --------------------------------------------------------------------------- create and read


def freeze_template(repo: Repository, template: Any, identity: str, at: datetime, team: Optional[str]) -> dict:
    """Validate a run template exactly as POST /api/training-runs would, and resolve it (inherited
    values and defaults written out) so later catalog edits do not change what the schedule trains.
    Its runs belong to the schedule's `team`: a template naming another is refused."""
    if not isinstance(template, dict):
        raise FieldError.one("run_template", "must be a JSON object (the body of POST /api/training-runs)")
    if template.get("scheduled_at") is not None:
        raise FieldError.one("run_template.scheduled_at", "is not part of a template; the schedule decides when")
    if template.get("team") not in (None, "", team):
        raise FieldError.one("run_template.team", f"the schedule's runs belong to its team {team!r}; "
                                                  f"name the team in the schedule's own `team`")
    body = {k: v for k, v in template.items() if k not in ("scheduled_at", "team")}
    try:
        _, doc = run_builder.build_run(repo, body, identity, at, team)
    except FieldError as exc:
        raise FieldError([{**e, "field": f"run_template.{e['field']}" if e["field"] != "body" else "run_template"}
                          for e in exc.errors]) from None
    return schedules.run_template_from(doc)


def create_schedule(repo: Repository, body: Any, who: Caller, declared: Iterable[teams.Team], jobs=None,
                    at: Optional[datetime] = None) -> dict:
    """A schedule owned by the team the body names (or the caller's only team where they are trainer)."""
    at = at or runs.now()
    request = schedules.parse_request(body, at)
    team = teams.team_for_new(who, request.team, declared, teams.TRAINER, "creating a schedule")
    template = freeze_template(repo, request.run_template, who.email, at, team)
    doc = schedules.new_schedule(request, template, new_schedule_id(), who.email, at, team)
    return _store_with_job(repo, _jobs(jobs), doc)


def _store_with_job(repo: Repository, jobs, doc: dict) -> dict:
    # The job first: if Cloud Scheduler refuses, nothing is stored and the caller gets the error.
    doc["cloud_scheduler_job_name"] = jobs.job_name(doc["id"])
    if doc["status"] == schedules.ACTIVE:
        jobs.create(doc)
    try:
        stored = repo.create_schedule(doc)
    except Exception:
        jobs.delete(doc)
        raise
    log.info("schedule created", schedule_id=doc["id"], schedule_type=doc["schedule_type"],
             next_run_at=doc["next_run_at"], job=doc["cloud_scheduler_job_name"])
    return stored


def schedule_run(repo: Repository, request, run_doc: dict, identity: str, at: datetime, jobs=None) -> dict:
    """POST /api/training-runs with a future scheduled_at: a one-time schedule plus its run, stored
    now in status `scheduled`; the run is queued for submission when its slot fires (or run-now)."""
    scheduled_at = run_doc["scheduled_at"]
    schedule_request = schedules.ScheduleRequest(name=request.name, description=request.description,
                                                 schedule_type=schedules.ONCE, run_at=scheduled_at,
                                                 timezone="UTC", run_template={})
    doc = schedules.new_schedule(schedule_request, schedules.run_template_from(run_doc), new_schedule_id(),
                                 identity, at, run_doc["team"])
    _store_with_job(repo, _jobs(jobs), doc)
    run_doc = {**run_doc, "status": runs.SCHEDULED, "schedule_id": doc["id"], "scheduled_at": scheduled_at}
    stored, _ = repo.create_run(run_doc, counter_key=run_builder.run_counter(),
                                run_id=schedules.slot_run_id(doc["id"], scheduled_at))
    return stored


def list_schedules(repo: Repository, args: dict) -> dict:
    status = args.get("status") or None
    if status and status not in schedules.STATUSES:
        raise FieldError.one("status", f"must be one of {', '.join(schedules.STATUSES)}")
    limit = whole_number(args, "limit", 50, 1, 200)
    return {"schedules": [schedules.public_view(s) for s in repo.list_schedules(status, limit)]}


def get_schedule(repo: Repository, schedule_id: str) -> dict:
    schedule = _require(repo, schedule_id)  # a pure read: every run change settles its schedule (lifecycle)
    history = repo.list_runs({"schedule_id": schedule_id}, HISTORY_LIMIT)
    return {"schedule": schedules.public_view(schedule), "runs": [runs.public_view(r) for r in history]}


def _require(repo: Repository, schedule_id: str) -> dict:
    schedule = repo.get_schedule(schedule_id)
    if schedule is None:
        raise NotFound(f"training schedule {schedule_id}")
    return schedule


# --------------------------------------------------------------------------- firing a slot


def fire_slot(repo: Repository, publisher: Publisher, schedule_id: str, run_id: str, slot: datetime,
              at: datetime, manual: bool = False, strict: bool = True) -> dict:
    """Decide one slot (active / queued / skipped, per the concurrency policy), make its run with
    the deterministic `run_id`, and queue an active one for submission. Idempotent: a repeated call
    finds the decision and the run already made and only re-queues a still-pending run."""
    settle_tracked(repo, _require(repo, schedule_id), at, publisher)
    updated = _mutate(repo, schedule_id, lambda s: schedules.admit(s, run_id, slot, at, manual))
    schedule = updated or _require(repo, schedule_id)
    outcome = schedules.decision(schedule, run_id)
    if outcome is None:
        log.info("slot ignored", schedule_id=schedule_id, run_id=run_id, status=schedule["status"])
        return {"outcome": "ignored", "run": repo.get_run(run_id), "schedule": schedule}
    if outcome == "skipped":
        if updated is not None:
            log.warning("slot skipped", schedule_id=schedule_id, run_id=run_id, slot=slot,
                        reason=schedule["skipped_slots"][-1]["reason"])
        return {"outcome": "skipped", "run": None, "schedule": schedule}
    try:
        run = _ensure_run(repo, schedule, run_id, slot, at, manual)
    except FieldError as exc:  # the template no longer resolves (e.g. its dataset was deleted)
        schedule = _mutate(repo, schedule_id, lambda s: schedules.drop(s, run_id, f"run not created: {exc}", at))
        log.error("slot dropped: its run could not be created", schedule_id=schedule_id, run_id=run_id, error=str(exc))
        return {"outcome": "dropped", "run": None, "schedule": schedule or _require(repo, schedule_id)}
    if outcome == "active":
        run = lifecycle.release(repo, publisher, run, strict)
    if updated is not None:
        log.info("slot fired", schedule_id=schedule_id, run_id=run_id, slot=slot, outcome=outcome, manual=manual)
    return {"outcome": outcome, "run": run, "schedule": schedule}


def _ensure_run(repo: Repository, schedule: dict, run_id: str, slot: datetime, at: datetime, manual: bool) -> dict:
    existing = repo.get_run(run_id)
    if existing is not None:
        return existing
    # The slot's run belongs to the schedule's team (a schedule made before teams: to none, like it).
    _, doc = run_builder.build_run(repo, schedule["run_template"], schedule["created_by"], at, schedule.get("team"))
    doc.update(status=runs.SCHEDULED, schedule_id=schedule["id"], scheduled_at=slot,
               triggered_by="manual" if manual else "schedule")
    stored, _ = repo.create_run(doc, counter_key=run_builder.run_counter(), run_id=run_id)
    return stored


# --------------------------------------------------------------------------- terminal runs


def settle_tracked(repo: Repository, schedule: dict, at: datetime, publisher: Optional[Publisher] = None) -> dict:
    """Before a slot fires: settle tracked runs that ended without their change reaching the schedule
    (a run moved before this code existed, or a hook that crashed midway). Idempotent, like the hook."""
    tracked = list(schedule["active_runs"]) + [q["run_id"] for q in schedule["queued_runs"]]
    for run_id in tracked:
        run = repo.get_run(run_id)
        if run is not None and runs.is_terminal(run["status"]):
            schedule = _mutate(repo, schedule["id"], lambda s: schedules.settle(s, run, at)) or schedule
    if publisher is not None and tracked:
        lifecycle.release_active(repo, publisher, schedule)
    return schedule


# --------------------------------------------------------------------------- the trigger consumer


def on_trigger(repo: Repository, publisher: Publisher, trigger: ScheduleTrigger, published_at: Optional[datetime],
               at: Optional[datetime] = None, jobs=None) -> str:
    """A schedule-trigger message: work out its slot from the message (or its publish time) and
    fire it. Paused, cancelled and completed schedules ignore triggers. A one-time schedule's job is
    deleted once its slot fired (`jobs`): Cloud Scheduler has no one-shot jobs, so it would fire yearly."""
    schedule_id, slot = trigger.schedule_id, trigger.slot
    at = at or runs.now()
    schedule = repo.get_schedule(schedule_id)
    if schedule is None:
        log.warning("trigger for an unknown schedule", schedule_id=schedule_id)
        return "ignored"
    if schedule["status"] != schedules.ACTIVE:
        log.info("trigger ignored", schedule_id=schedule_id, status=schedule["status"])
        if jobs is not None and schedule["schedule_type"] == schedules.ONCE and schedule["status"] == schedules.COMPLETED:
            jobs.delete(schedule)  # a yearly repeat of a spent one-time job: it goes now
        elif jobs is not None and schedule["status"] == schedules.PAUSED:
            jobs.pause(schedule)  # a paused schedule's job still fires (its pause failed): it stops now
        return "ignored"
    if slot is not None and not schedules.is_slot(schedule, slot):
        log.warning("trigger names a time that is not a slot of the schedule", schedule_id=schedule_id, slot=slot)
        slot = None
    slot = slot or schedules.slot_for_trigger(schedule, published_at or at)
    if slot is None:
        settle_tracked(repo, schedule, at, publisher)  # still a chance to start a promoted run
        _mutate(repo, schedule_id, lambda s: schedules.refresh_next(s, at))
        log.info("trigger matches no slot", schedule_id=schedule_id, published_at=published_at)
        return "no-slot"
    result = fire_slot(repo, publisher, schedule_id, schedules.slot_run_id(schedule_id, slot), slot, at)
    refreshed = _mutate(repo, schedule_id, lambda s: schedules.refresh_next(s, at)) or _require(repo, schedule_id)
    if jobs is not None and refreshed["schedule_type"] == schedules.ONCE and refreshed["status"] == schedules.COMPLETED:
        jobs.delete(refreshed)
        log.info("one-time schedule's job deleted", schedule_id=schedule_id)
    return result["outcome"]


# --------------------------------------------------------------------------- commands


def pause_schedule(repo: Repository, schedule_id: str, identity: str, jobs=None, at: Optional[datetime] = None) -> dict:
    at = at or runs.now()
    _require(repo, schedule_id)
    try:
        updated = _mutate(repo, schedule_id, lambda s: schedules.pause(s, at, f"paused by {identity}"))
    except ValueError as exc:
        raise Conflict(str(exc)) from None
    schedule = updated or _require(repo, schedule_id)
    _jobs(jobs).pause(schedule)
    return schedule


def resume_schedule(repo: Repository, publisher: Publisher, schedule_id: str, jobs=None,
                    at: Optional[datetime] = None) -> dict:
    """paused → active; the missed slots the catch-up policy asks for fire now, through the same
    concurrency policy as any slot."""
    at = at or runs.now()
    _require(repo, schedule_id)
    missed: list[datetime] = []

    def resume(s):
        nonlocal missed
        new, missed = schedules.resume(s, at)
        return new

    try:
        updated = _mutate(repo, schedule_id, resume)
    except ValueError as exc:
        raise Conflict(str(exc)) from None
    schedule = updated or _require(repo, schedule_id)
    lifecycle.release_active(repo, publisher, schedule, strict=False)
    caught_up = []
    for slot in missed if updated is not None else []:
        result = fire_slot(repo, publisher, schedule_id, schedules.slot_run_id(schedule_id, slot), slot, at,
                           strict=False)
        caught_up.append({"slot": slot, "outcome": result["outcome"],
                          "run_id": result["run"]["id"] if result["run"] else None})
    # The job last: the missed slots are only known on the call that moved the document, so they
    # fire before anything else can fail; a failed job resume is retried by resuming again (the
    # document is active already, the job resume is idempotent).
    _jobs(jobs).resume(schedule)
    schedule = _mutate(repo, schedule_id, lambda s: schedules.refresh_next(s, at)) or _require(repo, schedule_id)
    return {"schedule": schedules.public_view(schedule), "caught_up": caught_up}


def cancel_schedule(repo: Repository, schedule_id: str, identity: str, jobs=None,
                    at: Optional[datetime] = None) -> dict:
    """Stop the schedule for good, delete its job, and cancel its runs that have not started
    (queued ones, and a one-time schedule's scheduled run). Runs already submitted go on."""
    at = at or runs.now()
    _require(repo, schedule_id)
    schedule = _mutate(repo, schedule_id, lambda s: schedules.cancel(s, at)) or _require(repo, schedule_id)
    _jobs(jobs).delete(schedule)
    # By schedule only: (schedule_id, created_at) has an index in terraform/firestore.tf; with status it would not.
    waiting = [r for r in repo.list_runs({"schedule_id": schedule_id}, 500) if r["status"] == runs.SCHEDULED]
    for run in waiting:
        lifecycle.move_run(repo, run["id"], lambda d: runs.cancel_waiting(
            d, identity, at, "cancelled before it started: its schedule was cancelled"), at=at)
    return {"schedule": schedules.public_view(_require(repo, schedule_id)),
            "cancelled_runs": [r["id"] for r in waiting]}


def trigger_schedule(repo: Repository, publisher: Publisher, schedule_id: str, at: Optional[datetime] = None) -> dict:
    """Run now, outside the schedule's slots (an active or paused schedule); the concurrency
    policy still applies."""
    at = at or runs.now()
    schedule = _require(repo, schedule_id)
    if schedule["status"] not in (schedules.ACTIVE, schedules.PAUSED):
        raise Conflict(f"schedule {schedule_id} is {schedule['status']}; only active or paused schedules can be "
                       f"triggered")
    result = fire_slot(repo, publisher, schedule_id, schedules.manual_run_id(schedule_id, at), at, at,
                       manual=True, strict=False)
    return {"outcome": result["outcome"], "training_run": runs.public_view(result["run"]) if result["run"] else None,
            "schedule": schedules.public_view(result["schedule"])}


def run_now(repo: Repository, publisher: Publisher, run_id: str, jobs=None, at: Optional[datetime] = None) -> dict:
    """POST /api/training-runs/{id}/run-now: a scheduled run starts now and its one-time schedule
    is consumed (a later trigger for it is ignored)."""
    at = at or runs.now()
    run = repo.get_run(run_id)
    if run is None:
        raise NotFound(f"training run {run_id}")
    schedule = repo.get_schedule(run["schedule_id"]) if run.get("schedule_id") else None
    if run["status"] != runs.SCHEDULED or schedule is None:
        raise Conflict(f"run {run_id} is {run['status']}; only a run waiting for its scheduled time can run now")
    if schedule["schedule_type"] != schedules.ONCE:
        raise Conflict(f"run {run_id} is queued by the recurring schedule {schedule['id']}; it starts when a "
                       f"place is free (POST /api/training/schedules/{schedule['id']}/trigger runs one now)")
    result = fire_slot(repo, publisher, schedule["id"], run_id, run["scheduled_at"], at, manual=True, strict=False)
    _jobs(jobs).delete(schedule)
    return result["run"] or repo.get_run(run_id)
