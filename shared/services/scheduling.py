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

from shared.domain import data_triggers, runs, schedules, spend, teams, triggers
from shared.domain.teams import Caller
from shared import log
from shared.contract.messages import ScheduleTrigger
from shared.errors import Conflict, FieldError, NotFound
from shared.adapters.repository import Repository
from shared.adapters.scheduler_jobs import SchedulerJobs
from shared.services import access, catalog_entries, lifecycle, notification_targets, ports, run_builder, spending

HISTORY_LIMIT = 20
ACTIVE_SCAN = 1000  # active schedules read to count a team's (a deployment has far fewer)


def new_schedule_id() -> str:
    return "ts-" + uuid.uuid4().hex[:12]


def _mutate(repo: Repository, schedule_id: str, mutate) -> Optional[dict]:
    return repo.mutate_schedule(schedule_id, mutate)


# --------------------------------------------------------------------------- create and read


def freeze_template(repo: Repository, template: Any, identity: str, at: datetime, team: Optional[str],
                    check=None) -> dict:
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
    if check is not None:  # what the caller may put in it (shared/services/access.check_new_run)
        check(doc)
    return schedules.run_template_from(doc)


def create_schedule(repo: Repository, body: Any, who: Caller, declared: Iterable[teams.Team], jobs: SchedulerJobs,
                    at: Optional[datetime] = None, targets=None, admins=frozenset(), settings=None) -> dict:
    """A schedule owned by the team the body names (or the caller's only team where they are trainer), within
    the team's spend limits (check_spend_limits); its dataset must be one the team may read (`admins`:
    TRAINYARD_ADMINS, who may write free SQL). `targets` checks and seals the notification targets, the runs'
    and the schedule's own (shared/services/notification_targets.py)."""
    at = at or runs.now()
    request = schedules.parse_request(body, at)
    team = teams.team_for_new(who, request.team, declared, teams.TRAINER, "creating a schedule")
    _check_data_trigger_access(request, teams.by_name(declared, team))
    template = freeze_template(repo, request.run_template, who.email, at, team,
                               lambda doc: access.check_new_run(repo, who, declared, doc, "run_template."))
    catalog_entries.require_usable_dataset(repo, template["dataset_id"], team, declared, admins,
                                           field="run_template.dataset_id")
    doc = schedules.new_schedule(request, template, new_schedule_id(), who.email, at, team)
    check_spend_limits(repo, doc, teams.by_name(declared, team), settings, at)
    notification_targets.check(targets, (template.get("notifications"), "run_template.notifications"),
                               (doc["notifications"], "notifications"))
    return _store_with_job(repo, jobs, _sealed(targets, doc))


def _sealed(targets, doc: dict) -> dict:
    """The schedule with its targets' URLs in the secret store: the runs' (`…-<id>-run-<n>`, which every
    run it makes refers to) and its own (`…-<id>-<n>`)."""
    owner = ("schedule", doc["id"])
    template = doc["run_template"]
    if template.get("notifications"):
        template = {**template, "notifications": notification_targets.seal(targets, template["notifications"], owner,
                                                                            "run-")}
    return {**doc, "run_template": template,
            "notifications": notification_targets.seal(targets, doc["notifications"], owner)}


def check_spend_limits(repo: Repository, doc: dict, team: Optional[teams.Team], settings, at: datetime) -> None:
    """The spend guard on a new schedule of a team (shared/domain/spend.schedule_problems): its minimum
    interval (400 naming cron_expression), auto_pause_after_failures=0 only for daily or rarer slots, its
    cap on active schedules (409), and at least one slot's run must fit this month's budget (409 over_budget;
    each slot is admitted again when it fires)."""
    if team is None:  # a deployment without teams: its platform admins alone make schedules
        return
    _check_data_interval(doc, team.schedules.min_interval_minutes)
    active = sum(1 for s in repo.list_schedules(schedules.ACTIVE, ACTIVE_SCAN) if s.get("team") == team.name)
    spend.schedule_problems(doc, team.schedules, active)
    if team.budget != teams.Budget():
        settings = spending.settings_or_default(settings)
        run_cost = spending.quote(repo, settings, team, doc["run_template"])
        month = spend.month_of(at)
        spend.check_month(repo.get_ledger(team.name, month), team.name, month, team.budget, run_cost)


def _check_data_trigger_access(request: schedules.ScheduleRequest, team: Optional[teams.Team]) -> None:
    trigger = request.data_trigger
    problem = trigger and team and data_triggers.access_problem(data_triggers.check(trigger), team)
    if problem:
        raise problem


def _check_data_interval(doc: dict, team_minimum: int) -> None:
    """A data trigger's runs are as close as its min_interval_minutes: the team's minimum interval bounds it
    like a clock's slots, and never auto-pausing needs a day between runs (shared/domain/spend.py)."""
    trigger = doc.get("data_trigger")
    if not trigger:
        return
    gap = trigger["min_interval_minutes"]
    if gap < team_minimum:
        raise FieldError.one("data_trigger.min_interval_minutes", f"{gap} is below the team's minimum interval of "
                                                                  f"{team_minimum} minutes")
    if doc["auto_pause_after_failures"] == 0 and gap < spend.NEVER_PAUSE_MIN_GAP:
        raise FieldError.one("auto_pause_after_failures", f"0 (never pause) is only for schedules whose runs are a "
                                                          f"day or more apart; the data trigger allows one every "
                                                          f"{gap} minutes")


def _store_with_job(repo: Repository, jobs: SchedulerJobs, doc: dict) -> dict:
    # The job first: if Cloud Scheduler refuses, nothing is stored and the caller gets the error.
    # A data schedule has no slots and so no job.
    clock = schedules.has_clock(doc)
    doc["cloud_scheduler_job_name"] = jobs.job_name(doc["id"]) if clock else None
    if doc["status"] == schedules.ACTIVE and clock:
        jobs.create(doc)
    try:
        stored = repo.create_schedule(doc)
    except Exception:
        if clock:
            jobs.delete(doc)
        raise
    log.info("schedule created", schedule_id=doc["id"], schedule_type=doc["schedule_type"],
             next_run_at=doc["next_run_at"], job=doc["cloud_scheduler_job_name"])
    return stored


def schedule_run(repo: Repository, request, run_doc: dict, identity: str, at: datetime, jobs: SchedulerJobs,
                 targets=None) -> dict:
    """POST /api/training-runs with a future scheduled_at: a one-time schedule plus its run, stored
    now in status `scheduled`; the run is queued for submission when its slot fires (or run-now)."""
    scheduled_at = run_doc["scheduled_at"]
    schedule_request = schedules.ScheduleRequest(name=request.name, description=request.description,
                                                 schedule_type=schedules.ONCE, run_at=scheduled_at,
                                                 timezone="UTC", run_template={})
    doc = schedules.new_schedule(schedule_request, schedules.run_template_from(run_doc), new_schedule_id(),
                                 identity, at, run_doc["team"])
    notification_targets.check(targets, (run_doc["notifications"], "notifications"))
    doc = _store_with_job(repo, jobs, _sealed(targets, doc))
    run_doc = {**run_doc, "status": runs.SCHEDULED, "schedule_id": doc["id"], "scheduled_at": scheduled_at,
               "notifications": doc["run_template"].get("notifications")}
    stored, _ = repo.create_run(run_doc, counter_key=run_builder.run_counter(),
                                run_id=schedules.slot_run_id(doc["id"], scheduled_at))
    return stored


def get_schedule(repo: Repository, schedule_id: str, who: Caller) -> dict:
    # a pure read: every run change settles its schedule (lifecycle)
    schedule = access.schedule(repo, who, schedule_id, teams.VIEWER, "reading a schedule")
    history = repo.list_runs({"schedule_id": schedule_id}, HISTORY_LIMIT)
    return {"schedule": schedules.public_view(schedule), "runs": [runs.public_view(r) for r in history]}


def _require(repo: Repository, schedule_id: str) -> dict:
    schedule = repo.get_schedule(schedule_id)
    if schedule is None:
        raise NotFound(f"training schedule {schedule_id}")
    return schedule


# --------------------------------------------------------------------------- firing a slot


def fire_slot(repo: Repository, effects: ports.Effects, schedule_id: str, run_id: str, slot: datetime,
              at: datetime, manual: bool = False, strict: bool = True, settings=None,
              trigger: Optional[dict] = None, by: Optional[str] = None) -> dict:
    """Decide one slot (active / queued / skipped, per the concurrency policy), make its run with
    the deterministic `run_id`, and queue an active one for submission. Idempotent: a repeated call
    finds the decision and the run already made and only re-queues a still-pending run. `trigger`: the
    data event that fired it (shared/domain/data_triggers.py), recorded on the run; `by`: who ran it now."""
    settle_tracked(repo, _require(repo, schedule_id), at, effects)
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
        run = _ensure_run(repo, effects, schedule, run_id, slot, at, manual, settings, trigger, by)
    except (FieldError, spending.OverBudget) as exc:  # the template no longer resolves (e.g. its dataset was
        # deleted), or the team's month is spent: no run; why is on the schedule (skipped_slots, last_error)
        reason = f"over budget: {exc}" if isinstance(exc, spending.OverBudget) else f"run not created: {exc}"
        schedule = _mutate(repo, schedule_id, lambda s: schedules.drop(s, run_id, reason, at))
        waiting = repo.get_run(run_id)  # a one-time schedule's run, made when it was scheduled
        if waiting is not None and waiting["status"] == runs.SCHEDULED:
            lifecycle.move_run(repo, run_id, lambda d: runs.cancel_waiting(d, "spend guard", at, reason), effects, at)
        log.error("slot dropped: its run could not be created", schedule_id=schedule_id, run_id=run_id, error=str(exc))
        return {"outcome": "dropped", "run": None, "schedule": schedule or _require(repo, schedule_id)}
    if outcome == "active":
        run = lifecycle.release(repo, effects, run, strict)
    if updated is not None:
        log.info("slot fired", schedule_id=schedule_id, run_id=run_id, slot=slot, outcome=outcome, manual=manual)
    return {"outcome": outcome, "run": run, "schedule": schedule}


def _ensure_run(repo: Repository, effects: ports.Effects, schedule: dict, run_id: str, slot: datetime, at: datetime, manual: bool,
                settings=None, trigger: Optional[dict] = None, by: Optional[str] = None) -> dict:
    """The slot's run, admitted by the spend guard (reserved on its team's ledger; above the team's per-run cap
    it waits for approval instead of its turn); OverBudget when the team's month is spent."""
    existing = repo.get_run(run_id)
    if existing is not None:
        if existing["status"] == runs.SCHEDULED and not existing.get("spend") and not existing.get("approval"):
            admitted = spending.admit(repo, existing, run_id, settings, at)  # a one-time schedule's run
            if admitted is not existing:
                changes = {k: admitted[k] for k in ("status", "spend", "approval") if k in admitted}
                existing = lifecycle.move_run(repo, run_id, lambda d: {**d, **changes} if d["status"] == runs.SCHEDULED
                                              else None, effects, at) or repo.get_run(run_id)
        return existing
    # The template's targets were checked and sealed with the schedule: its runs refer to the same secrets.
    # The slot's run belongs to the schedule's team (a schedule made before teams: to none, like it).
    template = {k: v for k, v in schedule["run_template"].items() if k != "notifications"}
    _, doc = run_builder.build_run(repo, template, schedule["created_by"], at, schedule.get("team"))
    doc.update(status=runs.SCHEDULED, schedule_id=schedule["id"], scheduled_at=slot,
               triggered_by="data" if trigger else "manual" if manual else "schedule",
               trigger=triggers.scheduled(schedule["id"], slot, at, by if manual else None, trigger),
               notifications=schedule["run_template"].get("notifications"))
    if trigger:
        doc["data_trigger"] = trigger
    doc = spending.admit(repo, doc, run_id, settings, at)
    if doc["status"] == runs.PENDING:  # admitted: it still waits for its place (scheduled) like any slot's run
        doc["status"] = runs.SCHEDULED
    try:
        stored, _ = repo.create_run(doc, counter_key=run_builder.run_counter(), run_id=run_id)
    except Exception:
        spending.release(repo, doc, at)
        raise
    return stored


# --------------------------------------------------------------------------- terminal runs


def settle_tracked(repo: Repository, schedule: dict, at: datetime, effects: ports.Effects) -> dict:
    """Before a slot fires: settle tracked runs that ended without their change reaching the schedule
    (a run moved before this code existed, or a hook that crashed midway). Idempotent, like the hook."""
    tracked = list(schedule["active_runs"]) + [q["run_id"] for q in schedule["queued_runs"]]
    for run_id in tracked:
        run = repo.get_run(run_id)
        if run is not None and runs.is_terminal(run["status"]):
            schedule = _mutate(repo, schedule["id"], lambda s: schedules.settle(s, run, at)) or schedule
    if tracked:
        lifecycle.release_active(repo, effects, schedule)
    return schedule


# --------------------------------------------------------------------------- the trigger consumer


def on_trigger(repo: Repository, effects: ports.Effects, trigger: ScheduleTrigger, published_at: Optional[datetime],
               at: Optional[datetime] = None, settings=None) -> str:
    """A schedule-trigger message: work out its slot from the message (or its publish time) and
    fire it. Paused, cancelled and completed schedules ignore triggers. A one-time schedule's job is
    deleted once its slot fired: Cloud Scheduler has no one-shot jobs, so it would fire yearly."""
    schedule_id, slot = trigger.schedule_id, trigger.slot
    at = at or runs.now()
    schedule = repo.get_schedule(schedule_id)
    if schedule is None:
        log.warning("trigger for an unknown schedule", schedule_id=schedule_id)
        return "ignored"
    if schedule["status"] != schedules.ACTIVE:
        log.info("trigger ignored", schedule_id=schedule_id, status=schedule["status"])
        if schedule["schedule_type"] == schedules.ONCE and schedule["status"] == schedules.COMPLETED:
            effects.scheduler_jobs.delete(schedule)  # a yearly repeat of a spent one-time job: it goes now
        elif schedule["status"] == schedules.PAUSED:
            effects.scheduler_jobs.pause(schedule)  # a paused schedule's job still fires (its pause failed): it stops now
        return "ignored"
    if slot is not None and not schedules.is_slot(schedule, slot):
        log.warning("trigger names a time that is not a slot of the schedule", schedule_id=schedule_id, slot=slot)
        slot = None
    slot = slot or schedules.slot_for_trigger(schedule, published_at or at)
    if slot is None:
        settle_tracked(repo, schedule, at, effects)  # still a chance to start a promoted run
        _mutate(repo, schedule_id, lambda s: schedules.refresh_next(s, at))
        log.info("trigger matches no slot", schedule_id=schedule_id, published_at=published_at)
        return "no-slot"
    result = fire_slot(repo, effects, schedule_id, schedules.slot_run_id(schedule_id, slot), slot, at,
                       settings=settings)
    refreshed = _mutate(repo, schedule_id, lambda s: schedules.refresh_next(s, at)) or _require(repo, schedule_id)
    if refreshed["schedule_type"] == schedules.ONCE and refreshed["status"] == schedules.COMPLETED:
        effects.scheduler_jobs.delete(refreshed)
        log.info("one-time schedule's job deleted", schedule_id=schedule_id)
    return result["outcome"]


# --------------------------------------------------------------------------- commands


def pause_schedule(repo: Repository, schedule_id: str, who: Caller, jobs: SchedulerJobs, at: Optional[datetime] = None) -> dict:
    at = at or runs.now()
    access.schedule(repo, who, schedule_id, teams.TRAINER, "pausing a schedule")
    try:
        updated = _mutate(repo, schedule_id, lambda s: schedules.pause(s, at, f"paused by {who.email}"))
    except ValueError as exc:
        raise Conflict(str(exc)) from None
    schedule = updated or _require(repo, schedule_id)
    if schedules.has_clock(schedule):
        jobs.pause(schedule)
    return schedule


def resume_schedule(repo: Repository, effects: ports.Effects, schedule_id: str, who: Caller,
                    at: Optional[datetime] = None, settings=None) -> dict:
    """paused → active; the missed slots the catch-up policy asks for fire now, through the same
    concurrency policy as any slot."""
    at = at or runs.now()
    access.schedule(repo, who, schedule_id, teams.TRAINER, "resuming a schedule")
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
    lifecycle.release_active(repo, effects, schedule, strict=False)
    caught_up = []
    for slot in missed if updated is not None else []:
        result = fire_slot(repo, effects, schedule_id, schedules.slot_run_id(schedule_id, slot), slot, at,
                           strict=False, settings=settings)
        caught_up.append({"slot": slot, "outcome": result["outcome"],
                          "run_id": result["run"]["id"] if result["run"] else None})
    # The job last: the missed slots are only known on the call that moved the document, so they
    # fire before anything else can fail; a failed job resume is retried by resuming again (the
    # document is active already, the job resume is idempotent).
    if schedules.has_clock(schedule):
        effects.scheduler_jobs.resume(schedule)
    schedule = _mutate(repo, schedule_id, lambda s: schedules.refresh_next(s, at)) or _require(repo, schedule_id)
    return {"schedule": schedules.public_view(schedule), "caught_up": caught_up}


def cancel_schedule(repo: Repository, effects: ports.Effects, schedule_id: str, who: Caller,
                    at: Optional[datetime] = None) -> dict:
    """Stop the schedule for good, delete its job, and cancel its runs that have not started
    (queued ones, and a one-time schedule's scheduled run). Runs already submitted go on."""
    at = at or runs.now()
    access.schedule(repo, who, schedule_id, teams.TRAINER, "cancelling a schedule")
    identity = who.email
    schedule = _mutate(repo, schedule_id, lambda s: schedules.cancel(s, at)) or _require(repo, schedule_id)
    if schedules.has_clock(schedule):
        effects.scheduler_jobs.delete(schedule)
    # By schedule only: (schedule_id, created_at) has an index in terraform/firestore.tf; with status it would not.
    waiting = [r for r in repo.list_runs({"schedule_id": schedule_id}, 500) if r["status"] == runs.SCHEDULED]
    for run in waiting:
        lifecycle.move_run(repo, run["id"], lambda d: runs.cancel_waiting(
            d, identity, at, "cancelled before it started: its schedule was cancelled"), effects, at)
    return {"schedule": schedules.public_view(_require(repo, schedule_id)),
            "cancelled_runs": [r["id"] for r in waiting]}


def trigger_schedule(repo: Repository, effects: ports.Effects, schedule_id: str, who: Caller,
                     at: Optional[datetime] = None, settings=None) -> dict:
    """Run now, outside the schedule's slots (an active or paused schedule); the concurrency
    policy still applies."""
    at = at or runs.now()
    schedule = access.schedule(repo, who, schedule_id, teams.TRAINER, "triggering a schedule")
    if schedule["status"] not in (schedules.ACTIVE, schedules.PAUSED):
        raise Conflict(f"schedule {schedule_id} is {schedule['status']}; only active or paused schedules can be "
                       f"triggered")
    result = fire_slot(repo, effects, schedule_id, schedules.manual_run_id(schedule_id, at), at, at,
                       manual=True, strict=False, settings=settings, by=who.email)
    return {"outcome": result["outcome"], "training_run": runs.public_view(result["run"]) if result["run"] else None,
            "schedule": schedules.public_view(result["schedule"])}


def run_now(repo: Repository, effects: ports.Effects, run_id: str, who: Caller,
            at: Optional[datetime] = None, settings=None) -> dict:
    """POST /api/training-runs/{id}/run-now: a scheduled run starts now and its one-time schedule
    is consumed (a later trigger for it is ignored)."""
    at = at or runs.now()
    run = access.run(repo, who, run_id, teams.TRAINER, "starting a scheduled run now")
    schedule = repo.get_schedule(run["schedule_id"]) if run.get("schedule_id") else None
    if run["status"] != runs.SCHEDULED or schedule is None:
        raise Conflict(f"run {run_id} is {run['status']}; only a run waiting for its scheduled time can run now")
    if schedule["schedule_type"] != schedules.ONCE:
        raise Conflict(f"run {run_id} is queued by the recurring schedule {schedule['id']}; it starts when a "
                       f"place is free (POST /api/training/schedules/{schedule['id']}/trigger runs one now)")
    result = fire_slot(repo, effects, schedule["id"], run_id, run["scheduled_at"], at, manual=True, strict=False,
                       settings=settings)
    effects.scheduler_jobs.delete(schedule)
    return result["run"] or repo.get_run(run_id)
