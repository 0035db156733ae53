"""Training when new data lands (issue 27, part 3) with in-memory fakes and a controlled clock: the trigger's
validation, the events read from a storage notification and a BigQuery audit entry, dedupe, debounce, at most
one queued run, order tolerance, what the run and the schedule record, and the functions/scheduler entry point
on the canonical events in tests/events/."""
from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta, timezone

import pytest

from shared.domain import data_triggers, runs, schedules
from shared.domain.data_triggers import DataEvent
from shared.errors import FieldError
from shared.services import data_triggers as service
from shared.services import scheduling
from tests.events import load_event, payload_of
from tests.unit.test_schedules import body, env, finish, submitted  # noqa: F401 (env is a fixture)
from tests.builders import demo_member

UTC = timezone.utc
T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
GCS_TRIGGER = {"source": "gcs", "bucket": "acme-recs-landing", "prefix": "interactions/", "min_interval_minutes": 60}


def make(env, at=T0 - timedelta(days=1), **overrides):
    overrides.setdefault("schedule_type", "data")
    overrides.setdefault("data_trigger", GCS_TRIGGER)
    return scheduling.create_schedule(env["repo"], body(env["ids"], **overrides), *demo_member("dev@example.com"),
                                      env["jobs"], at=at)


def landed(name="interactions/part-1.csv", generation="1", at=T0) -> DataEvent:
    return DataEvent("gcs", f"gs://acme-recs-landing/{name}", generation, at)


def deliver(env, event, at=None):
    return service.on_data_event(env["repo"], env["effects"], event, at=at or event.occurred_at + timedelta(seconds=1))


def data_runs(env, schedule_id):
    return sorted(r["id"] for r in env["repo"].runs.values() if r.get("schedule_id") == schedule_id)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("overrides, field", [
    ({"data_trigger": None}, "data_trigger"),  # a data schedule needs one
    ({"data_trigger": {"source": "gcs"}}, "data_trigger.bucket"),
    ({"data_trigger": {"source": "gcs", "bucket": "gs://acme"}}, "data_trigger.bucket"),
    ({"data_trigger": {"source": "bigquery"}}, "data_trigger.table"),
    ({"data_trigger": {"source": "bigquery", "table": "just_a_table"}}, "data_trigger.table"),
    ({"data_trigger": {"source": "folder", "path": "relative/dir"}}, "data_trigger.path"),
    ({"data_trigger": {"source": "folder", "path": "/data", "bucket": "acme-recs"}}, "data_trigger.bucket"),
    ({"data_trigger": {"source": "bigquery", "table": "acme-recs.events.t", "prefix": "x/"}}, "data_trigger.prefix"),
    ({"data_trigger": {"source": "ftp", "path": "/x"}}, "data_trigger.source"),
    ({"data_trigger": {**GCS_TRIGGER, "min_interval_minutes": 0}}, "data_trigger.min_interval_minutes"),
    ({"data_trigger": {**GCS_TRIGGER, "when": "now"}}, "data_trigger.when"),
    ({"schedule_type": "once", "run_at": "2031-01-01T00:00:00Z"}, "data_trigger"),
])
def test_a_bad_trigger_is_a_400_naming_its_field(env, overrides, field):
    with pytest.raises(FieldError) as raised:
        make(env, **overrides)
    assert field in [e["field"] for e in raised.value.errors], raised.value.errors
    assert env["repo"].schedules == {} and env["jobs"].calls == []


def _team(**changes):
    from dataclasses import replace

    from shared.domain import teams

    return [replace(teams.demo("dev@example.com")[0], **changes)]


def test_the_team_minimum_interval_bounds_the_trigger(env):
    from shared.domain import teams

    declared = _team(schedules=teams.ScheduleLimits(min_interval_minutes=120))
    with pytest.raises(FieldError) as raised:
        scheduling.create_schedule(env["repo"], body(env["ids"], schedule_type="data", data_trigger=GCS_TRIGGER),
                                   *demo_member("dev@example.com", declared), env["jobs"], at=T0)
    assert [e["field"] for e in raised.value.errors] == ["data_trigger.min_interval_minutes"]
    with pytest.raises(FieldError) as raised:  # never pausing needs a day between runs, as for slots
        make(env, auto_pause_after_failures=0)
    assert [e["field"] for e in raised.value.errors] == ["auto_pause_after_failures"]


@pytest.mark.parametrize("trigger, field", [
    (GCS_TRIGGER, "data_trigger.bucket"),
    ({"source": "bigquery", "table": "other-proj.theirs.events"}, "data_trigger.table"),
    ({"source": "folder", "path": "/srv/landing"}, "data_trigger.path"),
])
def test_a_team_watches_only_data_it_may_read(env, trigger, field):
    declared = _team(buckets=("gs://acme-recs-mine/",), datasets=("acme-recs.mine",))
    with pytest.raises(FieldError) as raised:
        scheduling.create_schedule(env["repo"], body(env["ids"], schedule_type="data", data_trigger=trigger),
                                   *demo_member("dev@example.com", declared), env["jobs"], at=T0)
    assert [e["field"] for e in raised.value.errors] == [field]
    mine = {"source": "gcs", "bucket": "acme-recs-mine", "prefix": "landing/"}
    with pytest.raises(FieldError) as raised:  # the trigger passes; the seeded dataset (a local file) does not
        scheduling.create_schedule(env["repo"], body(env["ids"], schedule_type="data", data_trigger=mine),
                                   *demo_member("dev@example.com", declared), env["jobs"], at=T0)
    assert [e["field"] for e in raised.value.errors] == ["run_template.dataset_id"]


def test_a_data_schedule_has_no_slots_no_job_and_does_not_complete(env):
    schedule = make(env)
    assert schedule["status"] == "active" and schedule["next_run_at"] is None
    assert schedule["cloud_scheduler_job_name"] is None and env["jobs"].calls == []
    assert schedule["data_trigger"] == {**GCS_TRIGGER, "table": None, "path": None}
    assert schedules.refresh_next(env["repo"].get_schedule(schedule["id"]), T0 + timedelta(days=400)) is None
    scheduling.pause_schedule(env["repo"], schedule["id"], demo_member("dev@example.com")[0], env["jobs"], at=T0)
    scheduling.resume_schedule(env["repo"], env["effects"], schedule["id"], demo_member("dev@example.com")[0], at=T0)
    assert env["jobs"].calls == []


# ----------------------------------------------------------------------------- events


def test_the_storage_notification_is_read_from_its_attributes_and_object():
    body_ = load_event("storage_object_finalize.json")
    message = body_["message"]
    event = data_triggers.from_message(message["attributes"], payload_of(body_), T0)
    assert event == DataEvent("gcs", "gs://acme-recs-landing/interactions/2026-12-06/part-0001.csv",
                              "1765011600123456", datetime(2026, 12, 6, 9, 0, 0, 123000, tzinfo=UTC))
    for kind in ("OBJECT_DELETE", "OBJECT_METADATA_UPDATE", "OBJECT_ARCHIVE"):
        assert data_triggers.from_message({**message["attributes"], "eventType": kind}, payload_of(body_), T0) is None
    folder = data_triggers.from_message({"eventType": "OBJECT_FINALIZE", "bucketId": "local", "objectId": "data/in/a.csv",
                                         "objectGeneration": "7"}, {}, T0)  # no time: the publish time
    assert (folder.source, folder.location, folder.occurred_at) == ("folder", "/data/in/a.csv", T0)
    with pytest.raises(ValueError):
        data_triggers.from_message({}, {"name": "x"}, T0)


def test_the_bigquery_audit_entry_names_its_table_and_job():
    body_ = load_event("bigquery_table_data_change.json")
    event = data_triggers.from_message(body_["message"]["attributes"], payload_of(body_), T0)
    assert event == DataEvent("bigquery", "acme-recs.events.interactions", "bqjob_r1a2b3c4d5_0000018c3f_1",
                              datetime(2026, 12, 6, 9, 15, 2, 771000, tzinfo=UTC))
    entry = payload_of(body_)
    entry["protoPayload"]["metadata"] = {"tableDataRead": {}}
    assert data_triggers.from_message({}, entry, T0) is None
    streamed = payload_of(body_)
    del streamed["protoPayload"]["metadata"]["tableDataChange"]["jobName"]  # a Write API append: no job
    assert data_triggers.from_message({}, streamed, T0).version == "-q8w3e1d2a9k"


@pytest.mark.parametrize("trigger, location, hit", [
    (GCS_TRIGGER, "gs://acme-recs-landing/interactions/x.csv", True),
    (GCS_TRIGGER, "gs://acme-recs-landing/items/x.csv", False),
    (GCS_TRIGGER, "gs://acme-recs-landing-2/interactions/x.csv", False),
    ({"source": "gcs", "bucket": "acme-recs-landing", "prefix": ""}, "gs://acme-recs-landing/any", True),
])
def test_a_gcs_trigger_matches_its_bucket_and_prefix_only(trigger, location, hit):
    assert data_triggers.matches(trigger, DataEvent("gcs", location, "1", T0)) is hit


def test_folder_and_table_triggers_match_exactly_theirs():
    folder = {"source": "folder", "path": "/data/in"}
    assert data_triggers.matches(folder, DataEvent("folder", "/data/in/a.csv", "1", T0))
    assert not data_triggers.matches(folder, DataEvent("folder", "/data/inbox/a.csv", "1", T0))
    table = {"source": "bigquery", "table": "acme-recs.events.interactions"}
    assert data_triggers.matches(table, DataEvent("bigquery", "acme-recs.events.interactions", "j", T0))
    assert not data_triggers.matches(table, DataEvent("bigquery", "acme-recs.events.interactions_v2", "j", T0))
    assert not data_triggers.matches(table, DataEvent("gcs", "acme-recs.events.interactions", "j", T0))


# ----------------------------------------------------------------------------- dedupe, debounce, order


def test_new_data_makes_one_run_that_records_its_trigger(env):
    schedule = make(env)
    assert deliver(env, landed()) == {schedule["id"]: "fired"}
    run_id = data_triggers.run_id_for(schedule["id"], landed())
    run = env["repo"].get_run(run_id)
    assert run["triggered_by"] == "data" and run["scheduled_at"] == T0
    assert run["data_trigger"] == {"source": "gcs", "location": "gs://acme-recs-landing/interactions/part-1.csv",
                                   "version": "1", "occurred_at": T0, "received_at": T0 + timedelta(seconds=1)}
    assert submitted(env) == [run_id]
    view = schedules.public_view(env["repo"].get_schedule(schedule["id"]))
    assert view["last_data_trigger"]["outcome"] == "fired" and view["last_data_trigger"]["run_id"] == run_id
    assert view["active_run_ids"] == [run_id] and "data_events_seen" not in view


def test_the_same_notification_twice_makes_one_run(env):
    schedule = make(env)
    deliver(env, landed())
    assert deliver(env, landed(), at=T0 + timedelta(minutes=5)) == {schedule["id"]: "duplicate"}
    assert data_runs(env, schedule["id"]) == [data_triggers.run_id_for(schedule["id"], landed())]


def test_a_redelivery_after_a_crash_between_decision_and_run_makes_the_run(env, monkeypatch):
    schedule = make(env)
    monkeypatch.setattr(scheduling, "fire_slot", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("crash")))
    with pytest.raises(RuntimeError):
        deliver(env, landed())
    monkeypatch.undo()
    assert data_runs(env, schedule["id"]) == []
    assert deliver(env, landed()) == {schedule["id"]: "duplicate"}
    assert data_runs(env, schedule["id"]) == [data_triggers.run_id_for(schedule["id"], landed())]


def test_new_data_while_a_data_run_is_queued_or_running_is_only_recorded(env):
    schedule = make(env)
    deliver(env, landed())
    later = landed("interactions/part-2.csv", "2", T0 + timedelta(hours=3))  # past the interval, run not done
    assert deliver(env, later) == {schedule["id"]: "recorded"}
    doc = env["repo"].get_schedule(schedule["id"])
    assert len(data_runs(env, schedule["id"])) == 1
    assert doc["last_data_trigger"]["outcome"] == "recorded" and "still queued or running" in doc["last_data_trigger"]["reason"]
    assert doc["last_data_trigger"]["location"].endswith("part-2.csv") and doc["data_triggers_received"] == 2


def test_new_data_within_the_interval_is_recorded_and_after_it_runs(env):
    schedule = make(env)
    deliver(env, landed())
    first = data_triggers.run_id_for(schedule["id"], landed())
    finish(env, first, runs.COMPLETED, T0 + timedelta(minutes=20))
    soon = landed("interactions/part-2.csv", "2", T0 + timedelta(minutes=30))
    assert deliver(env, soon) == {schedule["id"]: "recorded"}
    assert "within min_interval_minutes=60" in env["repo"].get_schedule(schedule["id"])["last_data_trigger"]["reason"]
    assert data_runs(env, schedule["id"]) == [first]
    after = landed("interactions/part-3.csv", "3", T0 + timedelta(minutes=61))
    assert deliver(env, after) == {schedule["id"]: "fired"}
    assert len(data_runs(env, schedule["id"])) == 2
    assert env["repo"].get_schedule(schedule["id"])["successful_runs"] == 1


def test_an_older_notification_arriving_late_is_covered_by_the_run_that_read_newer_data(env):
    schedule = make(env)
    deliver(env, landed("interactions/new.csv", "5", T0))
    finish(env, data_triggers.run_id_for(schedule["id"], landed(at=T0)), runs.COMPLETED, T0 + timedelta(minutes=90))
    late = landed("interactions/old.csv", "4", T0 - timedelta(hours=2))  # landed first, delivered last
    assert deliver(env, late, at=T0 + timedelta(hours=2)) == {schedule["id"]: "recorded"}
    doc = env["repo"].get_schedule(schedule["id"])
    assert len(data_runs(env, schedule["id"])) == 1
    assert doc["last_data_trigger"]["location"].endswith("new.csv")  # the newest event stays the last trigger


def test_data_triggers_follow_the_schedule_status_and_concurrency_with_the_clock(env):
    paused = make(env)
    scheduling.pause_schedule(env["repo"], paused["id"], demo_member("dev@example.com")[0], env["jobs"], at=T0)
    assert deliver(env, landed()) == {}  # only active schedules are read
    both = make(env, schedule_type="daily", time_of_day="02:30")  # clock and data: one run at a time
    scheduling.trigger_schedule(env["repo"], env["effects"], both["id"], demo_member("dev@example.com")[0], at=T0)
    assert deliver(env, landed("interactions/b.csv", "9")) == {both["id"]: "recorded"}
    doc = env["repo"].get_schedule(both["id"])
    assert "max_concurrent_runs=1" in doc["last_data_trigger"]["reason"]
    assert doc["last_data_run"] is None and doc["last_triggered_slot"] == T0  # the manual run's, not data's


def test_an_unknown_source_is_acknowledged_and_makes_nothing(env, monkeypatch):
    main = _scheduler_main()
    from shared.composition import root

    root.provide(repo=env["repo"], publisher=env["publisher"])
    try:
        make(env)
        body_ = load_event("storage_object_finalize.json")
        body_["message"]["attributes"] = {}
        main.on_data_landed(body_)  # neither a notification nor an audit entry: logged, acknowledged
        assert env["repo"].runs == {}
    finally:
        root.reset()


def _scheduler_main():
    spec = importlib.util.spec_from_file_location("scheduler_main", "functions/scheduler/main.py")
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    return main


def test_the_function_turns_the_canonical_notification_into_one_run(env):
    from shared.composition import root

    main = _scheduler_main()
    root.provide(repo=env["repo"], publisher=env["publisher"], scheduler_jobs=env["jobs"])
    try:
        schedule = make(env)
        for message_id in ("1", "2"):  # Pub/Sub's at-least-once: a redelivery
            event = load_event("storage_object_finalize.json")
            event["message"]["messageId"] = message_id
            main.on_data_landed(event)
        made = data_runs(env, schedule["id"])
        assert len(made) == 1 and env["repo"].get_run(made[0])["data_trigger"]["version"] == "1765011600123456"
    finally:
        root.reset()
