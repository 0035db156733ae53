"""The training-schedule domain: the schedule model, its slots (fire times), and the policies.

A schedule document is a plain dict (what Firestore stores). Every function here is pure: it takes
the document, an observation and the time (`at`, so tests control the clock) and returns the new
document, or None when nothing changes — which is what makes triggers and run events idempotent.

Slots. A schedule fires at wall-clock times in its IANA time zone, from a 5-field cron expression
(daily and weekly schedules are cron expressions too; a one-time schedule has one slot, `run_at`).
Across DST: a wall time that does not exist (spring forward) fires at the same offset after the
jump (02:30 → 03:30); a wall time that happens twice (fall back) fires once, at its first occurrence.
A slot's run has a deterministic id (`slot_run_id`), so any number of triggers make one run.

Bookkeeping that makes statistics exact: a slot's run is admitted into `active_runs` (or
`queued_runs`); when the run is terminal it is settled — removed and counted — once. A second
settlement finds it gone and changes nothing.
"""
from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Optional, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.domain import cost, data_triggers, runs
from shared.domain import webhook_addresses
from shared.domain.catalog import team_field
from shared.domain.notifications import NotificationConfig
from shared.errors import FieldError
from shared.validation import parse

ONCE, DAILY, WEEKLY, CRON = "once", "daily", "weekly", "cron"
DATA = "data"  # no clock: fires only on its data_trigger (shared/domain/data_triggers.py)
ACTIVE, PAUSED, COMPLETED, CANCELLED = "active", "paused", "completed", "cancelled"
STATUSES = (ACTIVE, PAUSED, COMPLETED, CANCELLED)
SKIP, QUEUE = "skip", "queue"
CATCH_UP_NONE, CATCH_UP_LATEST, CATCH_UP_ALL = "none", "latest", "all"

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# A trigger may be published a little before its slot (clock skew) and, with Cloud Scheduler's
# retries or a backlog, a while after it; outside that band it belongs to no slot. The early band
# stays well below Cloud Scheduler's shortest interval (a minute): at 60 s, a per-minute cron's
# trigger published at 10:05:03 was taken for the 10:06 slot.
EARLY_TOLERANCE = timedelta(seconds=10)
MISFIRE_GRACE = timedelta(minutes=30)
# Cloud Scheduler's minimum interval is a minute; these bound loops over slots.
_SLOT_SCAN_LIMIT = 100_000
SKIPPED_KEPT = 20
_DST_MARGIN = timedelta(hours=3)  # more than any zone's DST jump, so a local-time scan misses no slot

_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class ScheduleRequest(BaseModel):
    """The body of POST /api/training/schedules."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=100)
    description: str = Field("", max_length=2000)
    team: Optional[str] = team_field()
    schedule_type: Literal["once", "daily", "weekly", "cron", "data"]
    run_at: Optional[datetime] = Field(None, description="once: when (a time without offset is in `timezone`)")
    time_of_day: Optional[str] = Field(None, description="daily/weekly: HH:MM in `timezone`")
    # Union[int, str, None] written flat: typing caches unions by their arguments, and Optional[int | str]
    # is looked up as (int | str, None), which equals any library's earlier Optional[str | int] — whose
    # order would then be ours, and the OpenAPI document would depend on what was imported first.
    day_of_week: Union[int, str, None] = Field(None, description="weekly: 0=Monday … 6=Sunday, or the day's name")
    cron_expression: Optional[str] = Field(None, description="cron: 5 fields (minute hour day month weekday)")
    timezone: str = "UTC"
    start_at: Optional[datetime] = None
    end_at: Optional[datetime] = None
    # Tighter than before the security review (H4: 20 / 50 / 50): the team's budget is the real bound, these
    # keep one schedule from filling it in one go.
    max_concurrent_runs: int = Field(1, ge=1, le=10)
    concurrency_policy: Literal["skip", "queue"] = SKIP
    max_queued_runs: int = Field(5, ge=1, le=20)
    catch_up: Literal["none", "latest", "all"] = CATCH_UP_NONE
    catch_up_limit: int = Field(5, ge=1, le=10, description="catch_up=all: at most this many missed slots")
    auto_pause_after_failures: int = Field(3, ge=0, le=100, description="0: never auto-pause (only for slots a day "
                                                                        "or more apart: shared/domain/spend.py)")
    notifications: Optional[NotificationConfig] = Field(None, description="told when the schedule auto-pauses (its "
                                                                          "runs' own come from run_template)")
    run_template: dict[str, Any]
    data_trigger: Optional[data_triggers.DataTriggerRequest] = Field(
        None, description="also (or, with schedule_type=data, only) fire when new data lands")

    @field_validator("time_of_day")
    @classmethod
    def _time_of_day(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not _TIME_OF_DAY.match(value):
            raise ValueError("must be HH:MM (24-hour), e.g. 02:00")
        return value

    @field_validator("day_of_week")
    @classmethod
    def _day_of_week(cls, value):
        if value is None:
            return None
        if isinstance(value, str):
            if value.strip().lower() in DAY_NAMES:
                return DAY_NAMES.index(value.strip().lower())
            if value.strip().isdigit():
                value = int(value)
            else:
                raise ValueError(f"must be 0 (Monday) to 6 (Sunday) or one of {', '.join(DAY_NAMES)}")
        if not 0 <= value <= 6:
            raise ValueError("must be 0 (Monday) to 6 (Sunday)")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("cron_expression")
    @classmethod
    def _cron(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        value = " ".join(value.split())
        if len(value.split(" ")) != 5 or not croniter.is_valid(value):
            raise ValueError("is not a valid 5-field cron expression (minute hour day-of-month month day-of-week)")
        return value


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin") from None


def parse_request(body: Any, at: datetime) -> ScheduleRequest:
    """Validate the shape and the rules between fields; every error names its field (HTTP 400)."""
    request = parse(ScheduleRequest, body)
    tz = zone(request.timezone)
    update = {k: _in_zone(getattr(request, k), tz) for k in ("run_at", "start_at", "end_at")}
    request = request.model_copy(update=update)
    errors = []
    if request.schedule_type == ONCE:
        if request.run_at is None:
            errors.append(("run_at", "is required for a one-time schedule"))
        elif request.run_at <= at:
            errors.append(("run_at", "is in the past; a one-time schedule needs a future time"))
    if request.schedule_type in (DAILY, WEEKLY) and request.time_of_day is None:
        errors.append(("time_of_day", f"is required for a {request.schedule_type} schedule (HH:MM)"))
    if request.schedule_type == WEEKLY and request.day_of_week is None:
        errors.append(("day_of_week", "is required for a weekly schedule (0=Monday … 6=Sunday)"))
    if request.schedule_type == CRON and not request.cron_expression:
        errors.append(("cron_expression", "is required for a cron schedule"))
    if request.schedule_type == DATA and request.data_trigger is None:
        errors.append(("data_trigger", "is required for a data schedule (what new data starts a run)"))
    if request.schedule_type == ONCE and request.data_trigger is not None:
        errors.append(("data_trigger", "a one-time schedule makes one run; use a data schedule to fire on data"))
    if request.start_at and request.end_at and request.end_at <= request.start_at:
        errors.append(("end_at", "must be after start_at"))
    if request.end_at and request.end_at <= at:
        errors.append(("end_at", "is in the past"))
    if errors:
        raise FieldError([{"field": f, "message": m} for f, m in errors])
    if request.data_trigger is not None:
        data_triggers.check(request.data_trigger)
    return request


def _in_zone(value: Optional[datetime], tz: ZoneInfo) -> Optional[datetime]:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(timezone.utc)


def has_clock(schedule: dict) -> bool:
    """Whether the schedule has slots (and so a Cloud Scheduler job); a data schedule has neither."""
    return schedule["schedule_type"] != DATA


def cron_for(schedule: dict) -> Optional[str]:
    """The unix-cron expression Cloud Scheduler runs (weekday 0 = Sunday), in the schedule's zone."""
    kind = schedule["schedule_type"]
    if kind == DATA:
        return None
    if kind == CRON:
        return schedule["cron_expression"]
    if kind == ONCE:  # Cloud Scheduler has no one-shot jobs: this fires yearly; later firings are ignored
        local = schedule["run_at"].astimezone(zone(schedule["timezone"]))
        return f"{local.minute} {local.hour} {local.day} {local.month} *"
    hour, minute = (int(p) for p in schedule["time_of_day"].split(":"))
    if kind == DAILY:
        return f"{minute} {hour} * * *"
    return f"{minute} {hour} * * {(schedule['day_of_week'] + 1) % 7}"


# --------------------------------------------------------------------------- slots


def _localize(naive: datetime, tz: ZoneInfo) -> datetime:
    # fold=0: an ambiguous wall time is its first occurrence; a missing one lands after the jump.
    return naive.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)


def _local(at: datetime, tz: ZoneInfo) -> datetime:
    return at.astimezone(tz).replace(tzinfo=None)


def _in_window(schedule: dict, slot: datetime) -> bool:
    start, end = schedule.get("start_at"), schedule.get("end_at")
    return (start is None or slot >= start) and (end is None or slot <= end)


def next_slot(schedule: dict, after: datetime) -> Optional[datetime]:
    """The first slot strictly after `after` (and inside the window); None when there is none."""
    if not has_clock(schedule):
        return None
    if schedule["schedule_type"] == ONCE:
        slot = schedule["run_at"]
        return slot if slot > after and _in_window(schedule, slot) else None
    tz = zone(schedule["timezone"])
    start = schedule.get("start_at")
    floor = max(after, start - timedelta(microseconds=1)) if start else after
    it = croniter(cron_for(schedule), _local(floor, tz) - _DST_MARGIN)
    for _ in range(_SLOT_SCAN_LIMIT):
        slot = _localize(it.get_next(datetime), tz)
        if schedule.get("end_at") and slot > schedule["end_at"]:
            return None
        if slot > floor and _in_window(schedule, slot):
            return slot
    return None


def slots_up_to(schedule: dict, until: datetime, after: Optional[datetime] = None, limit: int = 1) -> list[datetime]:
    """The latest `limit` slots in (after, until], oldest first."""
    if not has_clock(schedule):
        return []
    if schedule["schedule_type"] == ONCE:
        slot = schedule["run_at"]
        ok = slot <= until and (after is None or slot > after) and _in_window(schedule, slot)
        return [slot] if ok and limit else []
    tz = zone(schedule["timezone"])
    it = croniter(cron_for(schedule), _local(until, tz) + _DST_MARGIN)
    found: list[datetime] = []
    for _ in range(_SLOT_SCAN_LIMIT):
        if len(found) >= limit:
            break
        naive = it.get_prev(datetime)
        slot = _localize(naive, tz)
        if (after is not None and naive + _DST_MARGIN < _local(after, tz)) or (
                schedule.get("start_at") and slot < schedule["start_at"] - _DST_MARGIN):
            break
        if slot > until or slot in found or (after is not None and slot <= after) or not _in_window(schedule, slot):
            continue
        found.append(slot)
    return sorted(found)


def slot_for_trigger(schedule: dict, published_at: datetime) -> Optional[datetime]:
    """The slot a trigger published at `published_at` belongs to: the latest one at or before it
    (allowing a little skew), unless that is older than the misfire grace."""
    latest = slots_up_to(schedule, published_at + EARLY_TOLERANCE)
    if not latest or published_at - latest[-1] > MISFIRE_GRACE:
        return None
    return latest[-1]


def is_slot(schedule: dict, slot: datetime) -> bool:
    return slot in slots_up_to(schedule, slot)


def slot_run_id(schedule_id: str, slot: datetime) -> str:
    """The run id for a slot: deterministic, lowercase, short enough for a Vertex job id and label."""
    return f"{schedule_id}-{slot.astimezone(timezone.utc):%Y%m%d-%H%M%S}"


def manual_run_id(schedule_id: str, at: datetime) -> str:
    return f"{schedule_id}-m{at.astimezone(timezone.utc):%Y%m%d-%H%M%S}"


# --------------------------------------------------------------------------- the document


def new_schedule(request: ScheduleRequest, template: dict, schedule_id: str, identity: str,
                 at: datetime, team: Optional[str]) -> dict:
    """`team` owns the schedule and every run it makes (resolved and checked by the service)."""
    doc = {
        "id": schedule_id,
        "name": request.name,
        "description": request.description,
        "team": team,
        "schedule_type": request.schedule_type,
        "run_at": request.run_at,
        "time_of_day": request.time_of_day,
        "day_of_week": request.day_of_week,
        "day_of_week_name": DAY_NAMES[request.day_of_week] if request.day_of_week is not None else None,
        "cron_expression": request.cron_expression,
        "timezone": request.timezone,
        "start_at": request.start_at,
        "end_at": request.end_at,
        "run_template": template,
        "status": ACTIVE,
        "max_concurrent_runs": request.max_concurrent_runs,
        "concurrency_policy": request.concurrency_policy,
        "max_queued_runs": request.max_queued_runs,
        "catch_up": request.catch_up,
        "catch_up_limit": request.catch_up_limit,
        "auto_pause_after_failures": request.auto_pause_after_failures,
        "notifications": request.notifications.model_dump(mode="json") if request.notifications else None,
        "active_runs": {},
        "queued_runs": [],
        "skipped_slots": [],
        "skipped_count": 0,
        "total_runs": 0,
        "successful_runs": 0,
        "failed_runs": 0,
        "cancelled_runs": 0,
        "success_rate": None,
        "estimated_cost": None,  # {total, runs, currency}: the finished runs' estimates, summed
        "consecutive_failures": 0,
        "last_run_id": None,
        "last_run_at": None,
        "last_run_status": None,
        "last_triggered_slot": None,
        "data_trigger": data_triggers.check(request.data_trigger) if request.data_trigger else None,
        "last_data_trigger": None,  # the newest data event: its source, location, version, times, outcome
        "last_data_run": None,  # {run_id, key, occurred_at, fired_at}: the debounce's reference
        "data_events_seen": [],  # the latest events' keys (dedupe)
        "data_triggers_received": 0,
        "paused_at": None,
        "paused_reason": None,
        "cancelled_at": None,
        "completed_at": None,
        "last_error": None,
        "cloud_scheduler_job_name": None,
        "created_at": at,
        "created_by": identity,
    }
    doc["cron_expression"] = cron_for(doc)
    doc["next_run_at"] = next_slot(doc, at)
    return doc


def _refresh_next(doc: dict, at: datetime) -> None:
    """next_run_at follows the clock; a schedule with no slot left completes."""
    if doc["status"] != ACTIVE:
        doc["next_run_at"] = None
        return
    doc["next_run_at"] = next_slot(doc, at)
    if not has_clock(doc) and (doc.get("end_at") is None or doc["end_at"] > at):
        return  # a data schedule has no next slot and is not done for it
    if doc["next_run_at"] is None and doc["status"] == ACTIVE and not doc["queued_runs"]:
        doc["status"] = COMPLETED
        doc["completed_at"] = doc.get("completed_at") or at


def refresh_next(schedule: dict, at: datetime) -> Optional[dict]:
    doc = copy.deepcopy(schedule)
    _refresh_next(doc, at)
    unchanged = (doc["next_run_at"], doc["status"]) == (schedule.get("next_run_at"), schedule["status"])
    return None if unchanged else doc


def admit(schedule: dict, run_id: str, slot: datetime, at: datetime, manual: bool = False) -> Optional[dict]:
    """Decide a slot: its run becomes active, queued, or the slot is skipped (concurrency policy).
    None when the slot was already decided or the schedule does not take triggers now."""
    if decision(schedule, run_id) is not None:
        return None
    if schedule["status"] not in ((ACTIVE, PAUSED) if manual else (ACTIVE,)):
        return None
    if not manual and not _in_window(schedule, slot):
        return None
    doc = copy.deepcopy(schedule)
    doc["last_triggered_slot"] = slot
    if len(doc["active_runs"]) < doc["max_concurrent_runs"]:
        doc["active_runs"][run_id] = slot
    elif doc["concurrency_policy"] == QUEUE and len(doc["queued_runs"]) < doc["max_queued_runs"]:
        doc["queued_runs"].append({"run_id": run_id, "slot": slot})
    else:
        reason = (f"{len(doc['active_runs'])} run(s) still active (max_concurrent_runs="
                  f"{doc['max_concurrent_runs']}, policy={doc['concurrency_policy']})")
        _record_skip(doc, run_id, slot, reason, at)
        _refresh_next(doc, at)
        return doc
    doc["total_runs"] += 1
    doc["last_run_id"], doc["last_run_at"], doc["last_run_status"] = run_id, slot, runs.SCHEDULED
    if doc["schedule_type"] == ONCE:  # its one run exists: the schedule is done
        doc["status"] = COMPLETED
        doc["completed_at"] = at
    _refresh_next(doc, at)
    return doc


def _record_skip(doc: dict, run_id: str, slot: datetime, reason: str, at: datetime) -> None:
    doc["skipped_count"] += 1
    doc["skipped_slots"] = (doc["skipped_slots"] + [{"run_id": run_id, "slot": slot, "reason": reason,
                                                     "at": at}])[-SKIPPED_KEPT:]


def decision(schedule: dict, run_id: str) -> Optional[str]:
    """What became of this run id's slot: active, queued, skipped, or None (not decided / settled)."""
    if run_id in schedule["active_runs"]:
        return "active"
    if any(q["run_id"] == run_id for q in schedule["queued_runs"]):
        return "queued"
    if any(s.get("run_id") == run_id for s in schedule["skipped_slots"]):
        return "skipped"
    return None


def drop(schedule: dict, run_id: str, reason: str, at: datetime) -> Optional[dict]:
    """A slot whose run could not be created (e.g. its dataset was deleted): recorded as skipped."""
    if run_id not in schedule["active_runs"] and decision(schedule, run_id) != "queued":
        return None
    doc = copy.deepcopy(schedule)
    slot = doc["active_runs"].pop(run_id, None)
    for entry in [q for q in doc["queued_runs"] if q["run_id"] == run_id]:
        slot = entry["slot"]
        doc["queued_runs"].remove(entry)
    doc["total_runs"] = max(0, doc["total_runs"] - 1)
    doc["last_error"] = reason
    _record_skip(doc, run_id, slot, reason, at)
    if doc["status"] == ACTIVE:
        promote(doc)
    _refresh_next(doc, at)
    return doc


def promote(doc: dict) -> list[str]:
    """Move queued runs into free places, oldest first (in place). Returns the promoted run ids."""
    promoted = []
    while doc["queued_runs"] and len(doc["active_runs"]) < doc["max_concurrent_runs"]:
        entry = doc["queued_runs"].pop(0)
        doc["active_runs"][entry["run_id"]] = entry["slot"]
        promoted.append(entry["run_id"])
    return promoted


def settle(schedule: dict, run: dict, at: datetime) -> Optional[dict]:
    """Count a terminal run once: remove it from the active/queued runs, update the statistics,
    promote a queued run, and auto-pause after N consecutive failures."""
    if not runs.is_terminal(run["status"]) or decision(schedule, run["id"]) not in ("active", "queued"):
        return None
    doc = copy.deepcopy(schedule)
    doc["active_runs"].pop(run["id"], None)
    doc["queued_runs"] = [q for q in doc["queued_runs"] if q["run_id"] != run["id"]]
    status = run["status"]
    if status in (runs.COMPLETED, runs.NOT_BLESSED):  # the pipeline succeeded; blessing is the model's verdict
        doc["successful_runs"] += 1
        doc["consecutive_failures"] = 0
    elif status == runs.FAILED:
        doc["failed_runs"] += 1
        doc["consecutive_failures"] += 1
    else:
        doc["cancelled_runs"] += 1
    doc["estimated_cost"] = cost.add(doc.get("estimated_cost"), run.get("estimated_cost"))  # summed per schedule
    finished = doc["successful_runs"] + doc["failed_runs"]
    doc["success_rate"] = round(100.0 * doc["successful_runs"] / finished, 1) if finished else None
    if doc["last_run_id"] == run["id"]:
        doc["last_run_status"] = status
    limit = doc["auto_pause_after_failures"]
    if status == runs.FAILED and limit and doc["consecutive_failures"] >= limit and doc["status"] == ACTIVE:
        doc["status"] = PAUSED
        doc["paused_at"] = at
        doc["paused_reason"] = (f"auto-paused after {doc['consecutive_failures']} consecutive failed runs "
                                f"(last: {run['id']} failed at {run.get('error_stage') or 'an unknown stage'}: "
                                f"{run.get('error_message') or 'no message'})")
    if doc["status"] == ACTIVE:  # a paused schedule starts nothing, queued runs included
        promote(doc)
    _refresh_next(doc, at)
    return doc


def mark_last_run_status(schedule: dict, run_id: str, status: str) -> Optional[dict]:
    if schedule["last_run_id"] != run_id or schedule["last_run_status"] == status:
        return None
    return {**copy.deepcopy(schedule), "last_run_status": status}


# --------------------------------------------------------------------------- lifecycle


def pause(schedule: dict, at: datetime, reason: str) -> Optional[dict]:
    if schedule["status"] == PAUSED:
        return None
    if schedule["status"] != ACTIVE:
        raise ValueError(f"schedule {schedule['id']} is {schedule['status']}; only an active schedule can be paused")
    doc = copy.deepcopy(schedule)
    doc.update(status=PAUSED, paused_at=at, paused_reason=reason, next_run_at=None)
    return doc


def resume(schedule: dict, at: datetime) -> tuple[Optional[dict], list[datetime]]:
    """paused → active. Returns the new document and the missed slots to fire now (catch-up policy)."""
    if schedule["status"] == ACTIVE:
        return None, []
    if schedule["status"] != PAUSED:
        raise ValueError(f"schedule {schedule['id']} is {schedule['status']}; only a paused schedule can be resumed")
    doc = copy.deepcopy(schedule)
    paused_at = doc.get("paused_at") or at
    limit = {CATCH_UP_NONE: 0, CATCH_UP_LATEST: 1, CATCH_UP_ALL: doc["catch_up_limit"]}[doc["catch_up"]]
    missed = slots_up_to(doc, at, after=paused_at, limit=limit) if limit else []
    if doc["last_triggered_slot"]:
        missed = [s for s in missed if s > doc["last_triggered_slot"]]
    doc.update(status=ACTIVE, paused_at=None, paused_reason=None, consecutive_failures=0)
    doc["resumed_at"] = at
    promote(doc)  # runs queued while paused take the free places first
    _refresh_next(doc, at)
    if missed and doc["status"] == COMPLETED:  # the missed slots still fire; admit() needs it active
        doc["status"], doc["completed_at"] = ACTIVE, None
    return doc, missed


def cancel(schedule: dict, at: datetime) -> Optional[dict]:
    if schedule["status"] == CANCELLED:
        return None
    doc = copy.deepcopy(schedule)
    doc.update(status=CANCELLED, cancelled_at=at, next_run_at=None)
    return doc


def public_view(schedule: dict) -> dict:
    view = dict(schedule)
    view["notifications"] = webhook_addresses.public_targets(schedule.get("notifications"))
    template = schedule.get("run_template") or {}
    if template.get("notifications"):
        view["run_template"] = {**template, "notifications": webhook_addresses.public_targets(template["notifications"])}
    view.pop("data_events_seen", None)
    view["active_run_ids"] = sorted(schedule.get("active_runs", {}))
    view["queued_run_ids"] = [q["run_id"] for q in schedule.get("queued_runs", [])]
    view.pop("active_runs", None)
    return view


def run_template_from(run_doc: dict, description: str = "") -> dict:
    """The frozen template: the resolved run (inherited values and defaults filled in), so a later
    change to the base experiment does not change what the schedule trains."""
    base = run_doc.get("base_experiment") or {}
    return {
        "name": run_doc["name"],
        "description": run_doc.get("description") or description,
        "base_experiment_id": base.get("id"),
        "model_type": run_doc["model_type"],
        "dataset_id": run_doc["dataset_id"],
        "feature_config_id": run_doc["feature_config_id"],
        "model_config_id": run_doc["model_config_id"],
        "training_params": run_doc["training_params"],
        "gpu_config": run_doc["gpu_config"],
        "evaluator_config": run_doc["evaluator_config"],
        "deployment_config": run_doc["deployment_config"],
        **({"batch_prediction_config": run_doc["batch_prediction_config"]} if run_doc.get("batch_prediction_config") else {}),
        **({"notifications": run_doc["notifications"]} if run_doc.get("notifications") else {}),
    }

