"""Training when new data lands: the trigger a schedule declares, the event a notification carries, and
what an event does to its schedule (pure; shared/services/data_triggers.py applies it in a transaction).

Three sources, one event shape (`DataEvent`):
- `gcs`: a Cloud Storage bucket notification (payload format JSON_API_V1: the data is the object resource,
  the attributes eventType, bucketId, objectId, objectGeneration, eventTime —
  https://cloud.google.com/storage/docs/pubsub-notifications#attributes). Only OBJECT_FINALIZE counts:
  a new object or a new generation of one.
- `bigquery`: the BigQuery audit entry a log sink forwards, protoPayload.metadata.tableDataChange
  (BigQueryAuditMetadata: the table in protoPayload.resourceName, the job in tableDataChange.jobName,
  https://cloud.google.com/bigquery/docs/reference/auditlogs).
- `folder`: scripts/watcher.py publishes a storage notification of bucket `local` for a file that
  appeared or changed in a watched folder (the object's name is its absolute path without the first "/").

Debounce and dedupe. The event's key is its location and version (object generation, job id, the file's
mtime): a key already seen changes nothing. A run fires only when none of the schedule's data-triggered
runs is queued or running and the event is at least `min_interval_minutes` after the one that fired the
last run; otherwise the event is only recorded (the next run reads the data anyway). Events can arrive
out of order (Pub/Sub does not order them): one older than the last run's event is covered by that run.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.domain import data_access, teams
from shared.errors import FieldError

GCS, BIGQUERY, FOLDER = "gcs", "bigquery", "folder"
LOCAL_BUCKET = "local"  # the watcher's bucket: a folder trigger's events
OBJECT_FINALIZE = "OBJECT_FINALIZE"
SEEN_KEPT = 200  # keys remembered for dedupe; an older duplicate is older than the last run's event anyway
FIRED, DUPLICATE, RECORDED, IGNORED = "fired", "duplicate", "recorded", "ignored"

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")  # Cloud Storage's bucket naming rules, in short
_TABLE_RESOURCE = re.compile(r"^projects/([^/]+)/datasets/([^/]+)/tables/([^/@]+)")


class DataTriggerRequest(BaseModel):
    """A schedule's `data_trigger`: where new data lands, and the smallest gap between two runs it starts."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["gcs", "bigquery", "folder"]
    bucket: Optional[str] = Field(None, description="gcs: the bucket (its notification is terraform/data_triggers.tf)")
    prefix: str = Field("", max_length=1024, description="gcs: only objects whose name starts with this")
    table: Optional[str] = Field(None, description="bigquery: project.dataset.table")
    path: Optional[str] = Field(None, max_length=1024, description="folder: an absolute path the local watcher reads")
    min_interval_minutes: int = Field(60, ge=1, le=40320, description="a data-triggered run at most this often")

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not _BUCKET.match(value):
            raise ValueError("is not a Cloud Storage bucket name (3-222 of a-z 0-9 . _ -); no gs:// prefix")
        return value

    @field_validator("table")
    @classmethod
    def _table(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            data_access.table_ref(value)  # ValueError saying what is wrong
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value:
            data_access.file_uri(f"gs://bucket/{value}")  # no "..", no control characters
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        if not value.startswith("/"):
            raise ValueError("must be an absolute path")
        return data_access.file_uri(value).rstrip("/") or "/"


def check(request: DataTriggerRequest) -> dict:
    """The trigger as stored; the field each source needs (400 naming it)."""
    needs = {GCS: "bucket", BIGQUERY: "table", FOLDER: "path"}[request.source]
    if getattr(request, needs) is None:
        raise FieldError.one(f"data_trigger.{needs}", f"is required for a {request.source} trigger")
    extra = [f for f in ("bucket", "table", "path") if f != needs and getattr(request, f) is not None]
    if request.prefix and request.source != GCS:
        extra.append("prefix")
    if extra:
        raise FieldError.one(f"data_trigger.{extra[0]}", f"is not part of a {request.source} trigger")
    return request.model_dump()


def access_problem(trigger: dict, team: teams.Team) -> Optional[FieldError]:
    """Why `team` may not watch this (400 naming the field, as for a dataset's source: data_access.py); None
    when it may. A schedule's notifications tell when data lands: only where the team may read."""
    if trigger["source"] == GCS:
        uri = data_access.file_uri(f"gs://{trigger['bucket']}/{trigger['prefix']}")
        if data_access.under_buckets(team.buckets, uri):
            return None
        return FieldError.one("data_trigger.bucket", f"{uri} is not under a bucket team {team.name!r} may read")
    if trigger["source"] == BIGQUERY:
        dataset = data_access.table_ref(trigger["table"]).dataset_path
        if teams.allows(team.datasets, dataset):
            return None
        return FieldError.one("data_trigger.table", f"the dataset {dataset} is not one team {team.name!r} may read")
    if teams.ANYTHING in team.buckets:
        return None
    return FieldError.one("data_trigger.path", "a local folder is watched only by the local stack")


def describe(trigger: dict) -> str:
    if trigger["source"] == GCS:
        return f"gs://{trigger['bucket']}/{trigger['prefix']}"
    return trigger["table"] if trigger["source"] == BIGQUERY else trigger["path"]


# --------------------------------------------------------------------------- the event


@dataclass(frozen=True)
class DataEvent:
    source: str  # gcs | bigquery | folder
    location: str  # gs://bucket/object, project.dataset.table, or a file's absolute path
    version: str  # the object's generation, the job id, or the file's mtime in ns
    occurred_at: datetime

    @property
    def key(self) -> str:
        return f"{self.location}#{self.version}"

    def record(self, received_at: datetime) -> dict:
        """What a run and its schedule keep of the event."""
        return {"source": self.source, "location": self.location, "version": self.version,
                "occurred_at": self.occurred_at, "received_at": received_at}


def _time(value, fallback: datetime) -> datetime:
    if not value:
        return fallback
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def from_storage_notification(attributes: dict, payload: dict, published_at: datetime) -> Optional[DataEvent]:
    """None for anything but a finished object (deletes, metadata updates, archives; a folder placeholder)."""
    if attributes.get("eventType") != OBJECT_FINALIZE:
        return None
    bucket = attributes.get("bucketId") or payload.get("bucket")
    name = attributes.get("objectId") or payload.get("name")
    generation = attributes.get("objectGeneration") or payload.get("generation")
    if not bucket or not name or not generation:
        raise ValueError("a storage notification needs bucketId, objectId and objectGeneration")
    if name.endswith("/"):
        return None
    occurred = _time(payload.get("timeCreated") or payload.get("updated") or attributes.get("eventTime"),
                     published_at)
    if bucket == LOCAL_BUCKET:
        return DataEvent(FOLDER, "/" + name.lstrip("/"), str(generation), occurred)
    return DataEvent(GCS, f"gs://{bucket}/{name}", str(generation), occurred)


def from_audit_entry(entry: dict, published_at: datetime) -> Optional[DataEvent]:
    """A BigQuery tableDataChange audit entry; None for any other entry the sink lets through."""
    proto = entry.get("protoPayload") or {}
    change = (proto.get("metadata") or {}).get("tableDataChange")
    match = _TABLE_RESOURCE.match(proto.get("resourceName") or "")
    if change is None or not match:
        return None
    # A job's write is keyed by its job; a Write API or streaming append has none, its entry's insertId then.
    version = (change.get("jobName") or "").rsplit("/", 1)[-1] or entry.get("insertId")
    if not version:
        raise ValueError("a tableDataChange entry needs jobName or insertId")
    return DataEvent(BIGQUERY, ".".join(match.groups()), version, _time(entry.get("timestamp"), published_at))


def from_message(attributes: dict, payload: dict, published_at: datetime) -> Optional[DataEvent]:
    """The data-landed topic carries both: the sink's LogEntry, or a storage notification."""
    if "protoPayload" in payload:
        return from_audit_entry(payload, published_at)
    if "eventType" in attributes:
        return from_storage_notification(attributes, payload, published_at)
    raise ValueError("neither a storage notification (no eventType attribute) nor an audit log entry")


def matches(trigger: Optional[dict], event: DataEvent) -> bool:
    if not trigger or trigger["source"] != event.source:
        return False
    if event.source == GCS:
        return event.location.startswith(f"gs://{trigger['bucket']}/{trigger.get('prefix') or ''}")
    if event.source == FOLDER:
        return event.location.startswith(trigger["path"].rstrip("/") + "/")
    return event.location == trigger["table"]


# --------------------------------------------------------------------------- the schedule's decision


def run_id_for(schedule_id: str, event: DataEvent) -> str:
    """Deterministic per event (its time, to the second): a redelivered event finds the run it made. The
    shape is shared/contract/labels.RUN_ID_PATTERN's `d` alternative."""
    return f"{schedule_id}-d{event.occurred_at.astimezone(timezone.utc):%Y%m%d-%H%M%S}"


def decide(schedule: dict, event: DataEvent, at: datetime, admit) -> tuple[str, Optional[dict], Optional[str]]:
    """(outcome, the new document or None, the run id to make). `admit(doc, run_id, slot)` is the schedule's
    concurrency policy (shared/domain/schedules.admit). A duplicate of the event that fired the last run,
    while that run is still tracked, returns it again: a redelivery after a crash still makes the run."""
    last = schedule.get("last_data_run") or {}
    tracked = set(schedule.get("active_runs") or {}) | {q["run_id"] for q in schedule.get("queued_runs") or []}
    if event.key in (schedule.get("data_events_seen") or []):
        again = last.get("key") == event.key and last.get("run_id") in tracked
        return DUPLICATE, None, last["run_id"] if again else None
    changed = copy.deepcopy(schedule)
    changed["data_events_seen"] = (changed.get("data_events_seen") or [])[-(SEEN_KEPT - 1):] + [event.key]
    interval = timedelta(minutes=changed["data_trigger"]["min_interval_minutes"])
    run_id = None
    if changed["status"] != "active":
        outcome, why = IGNORED, f"the schedule is {changed['status']}"
    elif last.get("run_id") in tracked:
        outcome, why = RECORDED, f"run {last['run_id']} (data-triggered) is still queued or running"
    elif last and event.occurred_at <= last["occurred_at"]:
        outcome, why = RECORDED, f"older than the data run {last['run_id']} read"
    elif last and event.occurred_at < last["occurred_at"] + interval:
        outcome, why = RECORDED, (f"within min_interval_minutes={interval.total_seconds() / 60:g} of the last data "
                                  f"run {last['run_id']}")
    else:
        run_id = run_id_for(changed["id"], event)
        admitted = admit(changed, run_id, event.occurred_at)
        if admitted is None:
            outcome, why, run_id = IGNORED, "outside the schedule's window", None
        else:
            slot_before = changed.get("last_triggered_slot")
            changed = admitted
            changed["last_triggered_slot"] = slot_before  # a data run is no clock slot: catch-up still sees missed ones
            decided = "skipped" if any(s.get("run_id") == run_id for s in changed["skipped_slots"]) else "admitted"
            if decided == "skipped":
                outcome, why, run_id = RECORDED, changed["skipped_slots"][-1]["reason"], None
            else:
                outcome, why = FIRED, None
                changed["last_data_run"] = {"run_id": run_id, "key": event.key, "occurred_at": event.occurred_at,
                                        "fired_at": at}
    newest = changed.get("last_data_trigger")
    if newest is None or event.occurred_at >= newest["occurred_at"] or outcome == FIRED:
        changed["last_data_trigger"] = {**event.record(at), "outcome": outcome, "reason": why, "run_id": run_id}
    changed["data_triggers_received"] = (changed.get("data_triggers_received") or 0) + 1
    return outcome, changed, run_id
