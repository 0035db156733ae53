"""Schedules with a controllable clock and in-memory fakes: slots across DST, validation, triggers
(duplicates, paused, windows), concurrency skip/queue, catch-up on resume, statistics, auto-pause."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from shared.domain import runs, schedules
from shared.contract import topics
from shared.contract.messages import ScheduleTrigger
from shared.errors import Conflict, FieldError
from shared.services import lifecycle, progress, scheduling
from shared.services.ports import Effects
from shared.services import intake
from tests.builders import demo_member, seed_catalog
from tests.fakes import FakePublisher, InMemoryRepository

DEV = demo_member()[0]  # the demo team's admin

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


class NoJobs:
    def __init__(self):
        self.calls = []

    def job_name(self, schedule_id):
        return f"jobs/{schedule_id}"

    def create(self, schedule):
        self.calls.append(("create", schedule["id"]))

    def pause(self, schedule):
        self.calls.append(("pause", schedule["id"]))

    def resume(self, schedule):
        self.calls.append(("resume", schedule["id"]))

    def delete(self, schedule):
        self.calls.append(("delete", schedule["id"]))


@pytest.fixture
def env():
    repo = InMemoryRepository()
    publisher, jobs = FakePublisher(), NoJobs()
    return {"repo": repo, "publisher": publisher, "jobs": jobs, "effects": Effects(publisher, jobs), "ids": seed_catalog(repo)}


def body(ids, **overrides):
    data = {"name": "nightly retrain", "schedule_type": "daily", "time_of_day": "02:30", "timezone": "Europe/Berlin",
            "run_template": {"name": "nightly-recs", "base_experiment_id": ids["experiment"],
                             "training_params": {"epochs": 3}}}
    data.update(overrides)
    return data


def make(env, at, **overrides):
    return scheduling.create_schedule(env["repo"], body(env["ids"], **overrides), *demo_member("dev@example.com"), env["jobs"], at=at)


def trigger(env, schedule_id, published, at=None, **payload):
    trigger = ScheduleTrigger(schedule_id=schedule_id, **payload)
    return scheduling.on_trigger(env["repo"], env["effects"], trigger, published,
                              at=at or published)


def finish(env, run_id, status, at, message="boom"):
    """The run ends the way the progress path ends it: moved, and what follows done (lifecycle)."""
    def end(doc):
        extra = {"error_stage": "Train", "error_message": message} if status == runs.FAILED else {}
        return {**doc, "status": status, "completed_at": at, **extra}

    return lifecycle.move_run(env["repo"], run_id, end, env["effects"], at)


def submitted(env):
    return [p["run_id"] for t, p, _ in env["publisher"].messages if t == topics.RUN_SUBMIT]


def local(dt, tz=BERLIN):
    return dt.astimezone(tz).replace(tzinfo=None)


# ----------------------------------------------------------------------------- slots across DST


def test_daily_next_run_at_across_spring_forward_in_berlin(env):
    at = datetime(2026, 3, 27, 12, tzinfo=UTC)
    schedule = make(env, at)
    slots, t = [], at
    for _ in range(4):
        t = schedules.next_slot(schedule, t)
        slots.append(t)
    assert schedule["next_run_at"] == slots[0] == datetime(2026, 3, 28, 1, 30, tzinfo=UTC)  # 02:30 CET
    # 29 March 02:30 does not exist (02:00 → 03:00): it fires at 03:30 CEST, once
    assert slots[1] == datetime(2026, 3, 29, 1, 30, tzinfo=UTC) and local(slots[1]).hour == 3
    assert [local(s).strftime("%H:%M") for s in slots[2:]] == ["02:30", "02:30"]  # now 00:30 UTC
    assert slots[2] == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)


def test_weekly_next_run_at_across_fall_back_in_new_york(env):
    at = datetime(2026, 10, 20, tzinfo=UTC)
    schedule = make(env, at, schedule_type="weekly", day_of_week="sunday", time_of_day="01:30",
                    timezone="America/New_York")
    assert schedule["cron_expression"] == "30 1 * * 0"
    first = schedule["next_run_at"]
    second = schedules.next_slot(schedule, first)
    third = schedules.next_slot(schedule, second)
    assert first == datetime(2026, 10, 25, 5, 30, tzinfo=UTC)  # EDT (UTC-4)
    # 1 November 01:30 happens twice: the first one (still EDT) is the slot, and only once
    assert second == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert third == datetime(2026, 11, 8, 6, 30, tzinfo=UTC)  # EST (UTC-5)
    assert all(local(s, NEW_YORK).strftime("%a %H:%M") == "Sun 01:30" for s in (first, second, third))


def test_cron_every_30_minutes_across_fall_back_keeps_real_time_order(env):
    at = datetime(2026, 10, 24, 23, 50, tzinfo=UTC)  # 01:50 CEST on 25 October
    schedule = make(env, at, schedule_type="cron", cron_expression="*/30 * * * *")
    t, slots = at, []
    for _ in range(6):
        t = schedules.next_slot(schedule, t)
        slots.append(t)
    assert slots == sorted(set(slots))
    # 02:00 and 02:30 local happen twice; each wall time fires once (at its first occurrence)
    walls = [local(s).strftime("%H:%M") for s in slots]
    assert walls == ["02:00", "02:30", "03:00", "03:30", "04:00", "04:30"]
    assert slots[2] - slots[1] == timedelta(minutes=90)  # the repeated hour's wall times already fired


def test_window_bounds_slots_and_completes_the_schedule(env):
    at = datetime(2026, 5, 1, tzinfo=UTC)
    schedule = make(env, at, start_at="2026-05-03T00:00:00", end_at="2026-05-04T12:00:00")
    assert local(schedule["next_run_at"]).date().isoformat() == "2026-05-03"
    last = schedules.next_slot(schedule, schedule["next_run_at"])
    assert local(last).date().isoformat() == "2026-05-04" and schedules.next_slot(schedule, last) is None
    trigger(env, schedule["id"], last)
    assert env["repo"].get_schedule(schedule["id"])["status"] == "completed"


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("overrides, field", [
    ({"schedule_type": "cron", "cron_expression": "61 * * * *"}, "cron_expression"),
    ({"schedule_type": "cron", "cron_expression": "0 0 * *"}, "cron_expression"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"schedule_type": "once", "run_at": "2020-01-01T00:00:00Z"}, "run_at"),
    ({"schedule_type": "weekly"}, "day_of_week"),
    ({"schedule_type": "weekly", "day_of_week": "someday"}, "day_of_week"),
    ({"time_of_day": "25:00"}, "time_of_day"),
    ({"start_at": "2030-02-01T00:00:00Z", "end_at": "2030-01-01T00:00:00Z"}, "end_at"),
    ({"run_template": {"name": "x"}}, "run_template.name"),
    ({"run_template": {"name": "nightly-recs", "base_experiment_id": "nope"}}, "run_template.base_experiment_id"),
    ({"concurrency_policy": "drop"}, "concurrency_policy"),
])
def test_bad_input_names_the_field(env, overrides, field):
    with pytest.raises(FieldError) as caught:
        make(env, datetime(2026, 5, 1, tzinfo=UTC), **overrides)
    assert field in [e["field"] for e in caught.value.errors], caught.value.errors


def test_the_template_is_frozen_resolved(env):
    schedule = make(env, datetime(2026, 5, 1, tzinfo=UTC))
    template = schedule["run_template"]
    assert template["training_params"]["batch_size"] == 4096 and template["training_params"]["epochs"] == 3
    assert template["dataset_id"] == env["ids"]["dataset"]
    assert template["evaluator_config"]["blessing_threshold"]["metric"] == "recall_at_100"
    assert env["jobs"].calls == [("create", schedule["id"])]


# ----------------------------------------------------------------------------- triggers


def test_duplicate_triggers_make_one_run(env):
    at = datetime(2026, 5, 1, tzinfo=UTC)
    schedule = make(env, at)
    slot = schedule["next_run_at"]
    outcomes = [trigger(env, schedule["id"], slot + timedelta(seconds=s)) for s in (0, 2, 40, 300)]
    outcomes.append(trigger(env, schedule["id"], slot + timedelta(seconds=3), slot=slot.isoformat()))
    run_id = schedules.slot_run_id(schedule["id"], slot)
    assert outcomes[0] == "active" and set(outcomes[1:]) == {"active"}
    assert [r["id"] for r in env["repo"].runs.values() if r.get("schedule_id") == schedule["id"]] == [run_id]
    run = env["repo"].get_run(run_id)
    assert run["status"] == "pending" and run["scheduled_at"] == slot and run["triggered_by"] == "schedule"
    assert set(submitted(env)) == {run_id}  # re-sent while pending; the submitter's claim takes one
    stored = env["repo"].get_schedule(schedule["id"])
    assert stored["total_runs"] == 1 and stored["last_run_id"] == run_id and stored["last_run_status"] == "pending"
    assert stored["next_run_at"] == slot + timedelta(days=1)


def test_a_trigger_far_from_any_slot_makes_no_run(env):
    schedule = make(env, datetime(2026, 5, 1, tzinfo=UTC))
    assert trigger(env, schedule["id"], schedule["next_run_at"] + timedelta(hours=3)) == "no-slot"
    assert not env["repo"].runs


@pytest.mark.parametrize("action", ["pause", "cancel"])
def test_paused_and_cancelled_schedules_ignore_triggers(env, action):
    at = datetime(2026, 5, 1, tzinfo=UTC)
    schedule = make(env, at)
    if action == "pause":
        scheduling.pause_schedule(env["repo"], schedule["id"], DEV, env["jobs"], at=at)
    else:
        scheduling.cancel_schedule(env["repo"], env["effects"], schedule["id"], DEV, at=at)
    assert trigger(env, schedule["id"], schedule["next_run_at"]) == "ignored"
    assert not env["repo"].runs and not env["publisher"].messages
    assert env["jobs"].calls[-1] == (action if action == "pause" else "delete", schedule["id"])


def test_a_one_time_schedule_completes_when_its_run_is_made(env):
    at = datetime(2026, 5, 1, tzinfo=UTC)
    schedule = make(env, at, schedule_type="once", run_at="2026-05-02T09:00:00")  # Berlin time
    assert schedule["next_run_at"] == datetime(2026, 5, 2, 7, tzinfo=UTC)
    assert trigger(env, schedule["id"], schedule["next_run_at"]) == "active"
    stored = env["repo"].get_schedule(schedule["id"])
    assert stored["status"] == "completed" and stored["next_run_at"] is None
    assert trigger(env, schedule["id"], schedule["next_run_at"] + timedelta(days=365)) == "ignored"
    assert len(env["repo"].runs) == 1


def test_scheduled_at_makes_a_scheduled_run_that_starts_at_its_slot(env):
    at = datetime(2026, 5, 1, tzinfo=UTC)
    body_ = {"name": "later-run", "base_experiment_id": env["ids"]["experiment"],
             "scheduled_at": "2026-05-01T18:00:00Z"}
    run = intake.create_run(env["repo"], env["effects"], body_, *demo_member("dev@example.com"), at=at)
    assert run["status"] == "scheduled" and run["schedule_id"] and not env["publisher"].messages
    schedule = env["repo"].get_schedule(run["schedule_id"])
    assert schedule["schedule_type"] == "once" and schedule["next_run_at"] == datetime(2026, 5, 1, 18, tzinfo=UTC)
    assert run["id"] == schedules.slot_run_id(schedule["id"], schedule["run_at"])
    assert trigger(env, schedule["id"], datetime(2026, 5, 1, 18, 0, 1, tzinfo=UTC)) == "active"
    assert env["repo"].get_run(run["id"])["status"] == "pending" and submitted(env) == [run["id"]]
    assert len(env["repo"].runs) == 1


def test_run_now_starts_a_scheduled_run_and_consumes_its_schedule(env):
    at = datetime(2026, 5, 1, tzinfo=UTC)
    body_ = {"name": "later-run", "base_experiment_id": env["ids"]["experiment"],
             "scheduled_at": "2026-05-03T18:00:00Z"}
    run = intake.create_run(env["repo"], env["effects"], body_, *demo_member("dev@example.com"), at=at)
    started = scheduling.run_now(env["repo"], env["effects"], run["id"], DEV, at=at + timedelta(minutes=5))
    assert started["status"] == "pending" and submitted(env) == [run["id"]]
    schedule = env["repo"].get_schedule(run["schedule_id"])
    assert schedule["status"] == "completed" and ("delete", schedule["id"]) in env["jobs"].calls
    assert trigger(env, schedule["id"], datetime(2026, 5, 3, 18, tzinfo=UTC)) == "ignored"
    with pytest.raises(Conflict):
        scheduling.run_now(env["repo"], env["effects"], run["id"], DEV, at=at)


def test_past_scheduled_at_is_still_a_400(env):
    with pytest.raises(FieldError) as caught:
        intake.create_run(env["repo"], env["effects"], {"name": "later-run", "base_experiment_id":
                               env["ids"]["experiment"], "scheduled_at": "2026-04-30T00:00:00Z"},
                               *demo_member("dev@example.com"), at=datetime(2026, 5, 1, tzinfo=UTC))
    assert caught.value.errors[0]["field"] == "scheduled_at"


# ----------------------------------------------------------------------------- concurrency


def test_concurrency_skip_records_the_skipped_slot(env):
    schedule = make(env, datetime(2026, 5, 1, tzinfo=UTC), schedule_type="cron", cron_expression="0 * * * *")
    first = schedule["next_run_at"]
    assert trigger(env, schedule["id"], first) == "active"
    assert trigger(env, schedule["id"], first + timedelta(hours=1)) == "skipped"
    stored = env["repo"].get_schedule(schedule["id"])
    assert stored["skipped_count"] == 1 and "max_concurrent_runs=1" in stored["skipped_slots"][0]["reason"]
    assert stored["skipped_slots"][0]["slot"] == first + timedelta(hours=1) and len(env["repo"].runs) == 1
    assert trigger(env, schedule["id"], first + timedelta(hours=1, seconds=5)) == "skipped"  # still one record
    assert env["repo"].get_schedule(schedule["id"])["skipped_count"] == 1
    finish(env, schedules.slot_run_id(schedule["id"], first), runs.COMPLETED, first + timedelta(hours=1, minutes=30))
    assert trigger(env, schedule["id"], first + timedelta(hours=2)) == "active"


def test_concurrency_queue_starts_the_queued_run_when_a_place_frees(env):
    schedule = make(env, datetime(2026, 5, 1, tzinfo=UTC), schedule_type="cron", cron_expression="0 * * * *",
                    concurrency_policy="queue", max_concurrent_runs=1)
    first = schedule["next_run_at"]
    second = first + timedelta(hours=1)
    assert trigger(env, schedule["id"], first) == "active"
    assert trigger(env, schedule["id"], second) == "queued"
    queued_id = schedules.slot_run_id(schedule["id"], second)
    assert env["repo"].get_run(queued_id)["status"] == "scheduled" and queued_id not in submitted(env)
    finish(env, schedules.slot_run_id(schedule["id"], first), runs.COMPLETED, second + timedelta(minutes=10))
    stored = env["repo"].get_schedule(schedule["id"])
    assert stored["active_runs"] == {queued_id: second} and stored["queued_runs"] == []
    # The hook promoted it; the next trigger (or a hook with a publisher) queues it for submission.
    lifecycle.release_active(env["repo"], env["effects"], stored)
    assert env["repo"].get_run(queued_id)["status"] == "pending" and queued_id in submitted(env)


def test_terminal_hook_with_a_publisher_submits_the_promoted_run(env):
    schedule = make(env, datetime(2026, 5, 1, tzinfo=UTC), schedule_type="cron", cron_expression="0 * * * *",
                    concurrency_policy="queue")
    first = schedule["next_run_at"]
    trigger(env, schedule["id"], first)
    trigger(env, schedule["id"], first + timedelta(hours=1))
    run = env["repo"].mutate_run(schedules.slot_run_id(schedule["id"], first), lambda d: {**d, "status": "completed"})
    lifecycle.settle_schedule(env["repo"], run, env["effects"], at=first + timedelta(hours=2))
    assert schedules.slot_run_id(schedule["id"], first + timedelta(hours=1)) in submitted(env)


# ----------------------------------------------------------------------------- statistics, auto-pause


def test_statistics_count_each_terminal_run_once_however_often_events_arrive(env):
    schedule = make(env, datetime(2026, 5, 1, tzinfo=UTC), schedule_type="cron", cron_expression="0 * * * *",
                    max_concurrent_runs=3)
    first = schedule["next_run_at"]
    ids = []
    for hours, status in enumerate((runs.COMPLETED, runs.FAILED, runs.NOT_BLESSED)):
        slot = first + timedelta(hours=hours)
        trigger(env, schedule["id"], slot)
        ids.append(schedules.slot_run_id(schedule["id"], slot))
        run = finish(env, ids[-1], status, slot + timedelta(minutes=30))
        for _ in range(3):  # the same terminal state again and again
            lifecycle.settle_schedule(env["repo"], run, env["effects"], at=slot + timedelta(minutes=40))
    scheduling.get_schedule(env["repo"], schedule["id"], DEV)  # the scan backstop finds nothing more to count
    stored = env["repo"].get_schedule(schedule["id"])
    assert (stored["total_runs"], stored["successful_runs"], stored["failed_runs"]) == (3, 2, 1)
    assert stored["success_rate"] == pytest.approx(66.7) and stored["last_run_status"] == "not_blessed"
    assert stored["last_run_id"] == ids[-1] and stored["consecutive_failures"] == 0


def _queue_of_two(env):
    """A queue-policy schedule with one place: the first slot's run active, the second's waiting."""
    schedule = make(env, datetime(2026, 5, 1, tzinfo=UTC), schedule_type="cron", cron_expression="0 * * * *",
                    concurrency_policy="queue", max_concurrent_runs=1)
    first = schedule["next_run_at"]
    trigger(env, schedule["id"], first)
    trigger(env, schedule["id"], first + timedelta(hours=1))
    return schedule, schedules.slot_run_id(schedule["id"], first), schedules.slot_run_id(
        schedule["id"], first + timedelta(hours=1))


def test_a_failed_submit_settles_its_schedule_and_releases_the_next_run(env, tmp_path):
    from dataclasses import replace

    from shared.adapters.artifact_store import ArtifactStore
    from shared.errors import PermanentError
    from shared.services import submission
    from shared.settings import get_settings
    from tests.fakes import FakeBackend, FakeCompiler

    schedule, first, second = _queue_of_two(env)
    compiler = FakeCompiler(fail=PermanentError("the pipeline does not compile", stage="Compile"))
    settings = replace(get_settings(), artifacts_root=str(tmp_path / "a"), pipeline_root=str(tmp_path / "r"))
    outcome = submission.submit(submission.RunSubmit(run_id=first, attempt=1), env["repo"], FakeBackend(),
                                ArtifactStore(), submission.Compiler(compiler.compile_run, compiler.module_files),
                                settings, effects=env["effects"])
    assert outcome == "failed"
    stored = env["repo"].get_schedule(schedule["id"])
    assert stored["failed_runs"] == 1 and stored["active_runs"] == {second: stored["active_runs"][second]}
    assert env["repo"].get_run(second)["status"] == "pending" and second in submitted(env)


def test_cancelling_a_waiting_run_settles_its_schedule_at_once(env):
    from shared.services.actions import cancel

    schedule, first, second = _queue_of_two(env)
    cancel.request(env["repo"], env["effects"], first, demo_member()[0])  # pending: cancelled outright
    assert env["repo"].get_run(first)["status"] == "cancelled"
    stored = env["repo"].get_schedule(schedule["id"])
    assert first not in stored["active_runs"] and second in stored["active_runs"]
    assert second in submitted(env)


def test_reading_a_schedule_writes_nothing(env):
    schedule, first, _ = _queue_of_two(env)
    # A run moved behind the lifecycle's back (no hook ran): a GET shows the schedule as stored ...
    env["repo"].mutate_run(first, lambda d: {**d, "status": "failed", "error_message": "compile failed"})
    before = env["repo"].get_schedule(schedule["id"])
    view = scheduling.get_schedule(env["repo"], schedule["id"], DEV)
    assert env["repo"].get_schedule(schedule["id"]) == before and view["schedule"]["failed_runs"] == 0
    # ... and the schedule's next trigger settles it before its slot fires.
    trigger(env, schedule["id"], schedule["next_run_at"] + timedelta(hours=2))
    assert env["repo"].get_schedule(schedule["id"])["failed_runs"] == 1


def test_auto_pause_after_n_consecutive_failures_with_the_reason(env):
    schedule = make(env, datetime(2026, 5, 1, tzinfo=UTC), auto_pause_after_failures=3)
    slot = schedule["next_run_at"]
    for day in range(3):
        when = slot + timedelta(days=day)
        assert trigger(env, schedule["id"], when) == "active"
        finish(env, schedules.slot_run_id(schedule["id"], when), runs.FAILED, when + timedelta(hours=1),
               message=f"OOM on day {day}")
    stored = env["repo"].get_schedule(schedule["id"])
    assert stored["status"] == "paused" and stored["consecutive_failures"] == 3 and stored["next_run_at"] is None
    assert "3 consecutive failed runs" in stored["paused_reason"] and "OOM on day 2" in stored["paused_reason"]
    assert trigger(env, schedule["id"], slot + timedelta(days=3)) == "ignored"


def test_a_success_resets_the_failure_streak(env):
    schedule = make(env, datetime(2026, 5, 1, tzinfo=UTC), auto_pause_after_failures=2)
    slot = schedule["next_run_at"]
    for day, status in enumerate((runs.FAILED, runs.COMPLETED, runs.FAILED)):
        when = slot + timedelta(days=day)
        trigger(env, schedule["id"], when)
        finish(env, schedules.slot_run_id(schedule["id"], when), status, when + timedelta(hours=1))
    assert env["repo"].get_schedule(schedule["id"])["status"] == "active"


def test_the_progress_path_counts_a_scheduled_run_when_its_job_ends(env):
    from tests.fakes import FakeBackend
    from tests.unit.scenario import job_timeline

    schedule = make(env, datetime(2026, 5, 1, tzinfo=UTC))
    trigger(env, schedule["id"], schedule["next_run_at"])
    run_id = schedules.slot_run_id(schedule["id"], schedule["next_run_at"])
    env["repo"].mutate_run(run_id, lambda d: {**d, "status": "running", "gcs_artifacts_path": "/nonexistent"})
    failed = job_timeline(f"{run_id}-a1", fail_at="Trainer")[-1]
    backend = FakeBackend()
    backend.jobs[failed.job_id] = failed
    for _ in range(2):
        progress.apply_job(run_id, failed, env["repo"], None, "/nonexistent", env["effects"])
    stored = env["repo"].get_schedule(schedule["id"])
    assert stored["failed_runs"] == 1 and stored["last_run_status"] == "failed"


# ----------------------------------------------------------------------------- resume and catch-up


@pytest.mark.parametrize("mode, limit, expected", [("none", 5, 0), ("latest", 5, 1), ("all", 2, 2), ("all", 10, 3)])
def test_resume_catches_up_per_policy(env, mode, limit, expected):
    at = datetime(2026, 5, 1, tzinfo=UTC)
    schedule = make(env, at, catch_up=mode, catch_up_limit=limit, max_concurrent_runs=10)
    scheduling.pause_schedule(env["repo"], schedule["id"], DEV, env["jobs"], at=at)
    resumed_at = schedule["next_run_at"] + timedelta(days=2, hours=1)  # three daily slots missed
    result = scheduling.resume_schedule(env["repo"], env["effects"], schedule["id"], DEV, at=resumed_at)
    caught = [c["slot"] for c in result["caught_up"]]
    missed = [schedule["next_run_at"] + timedelta(days=d) for d in range(3)]
    assert caught == missed[len(missed) - expected:] if expected else caught == []
    assert all(c["outcome"] == "active" for c in result["caught_up"])
    assert sorted(submitted(env)) == sorted(schedules.slot_run_id(schedule["id"], s) for s in caught)
    assert result["schedule"]["status"] == "active"
    assert result["schedule"]["next_run_at"] == missed[-1] + timedelta(days=1)
    assert env["jobs"].calls[-1] == ("resume", schedule["id"])


def test_a_failed_job_resume_still_catches_up_and_resuming_again_resumes_the_job(env, monkeypatch):
    """The missed slots are only known on the call that moves the document: they fire before the job
    call that may fail; the retried resume finds the schedule active and resumes the job."""
    from shared.errors import TransientError

    at = datetime(2026, 5, 1, tzinfo=UTC)
    schedule = make(env, at, catch_up="latest", max_concurrent_runs=10)
    scheduling.pause_schedule(env["repo"], schedule["id"], DEV, env["jobs"], at=at)
    resumed_at = schedule["next_run_at"] + timedelta(days=2, hours=1)

    def unavailable(_schedule):
        raise TransientError("Cloud Scheduler resume failed: 503")
    with monkeypatch.context() as patch:
        patch.setattr(env["jobs"], "resume", unavailable)
        with pytest.raises(TransientError):
            scheduling.resume_schedule(env["repo"], env["effects"], schedule["id"], DEV, at=resumed_at)
    latest = schedule["next_run_at"] + timedelta(days=2)
    assert submitted(env) == [schedules.slot_run_id(schedule["id"], latest)]
    again = scheduling.resume_schedule(env["repo"], env["effects"], schedule["id"], DEV, at=resumed_at)
    assert again["schedule"]["status"] == "active" and env["jobs"].calls[-1] == ("resume", schedule["id"])
    assert submitted(env) == [schedules.slot_run_id(schedule["id"], latest)]  # nothing fired twice


def test_catch_up_goes_through_the_concurrency_policy(env):
    at = datetime(2026, 5, 1, tzinfo=UTC)
    schedule = make(env, at, catch_up="all", concurrency_policy="queue")
    scheduling.pause_schedule(env["repo"], schedule["id"], DEV, env["jobs"], at=at)
    result = scheduling.resume_schedule(env["repo"], env["effects"], schedule["id"], DEV,
                                     at=schedule["next_run_at"] + timedelta(days=2, hours=1))
    assert [c["outcome"] for c in result["caught_up"]] == ["active", "queued", "queued"]


def test_resume_after_auto_pause_clears_the_reason(env):
    schedule = make(env, datetime(2026, 5, 1, tzinfo=UTC), auto_pause_after_failures=1)
    slot = schedule["next_run_at"]
    trigger(env, schedule["id"], slot)
    finish(env, schedules.slot_run_id(schedule["id"], slot), runs.FAILED, slot + timedelta(hours=1))
    result = scheduling.resume_schedule(env["repo"], env["effects"], schedule["id"], DEV,
                                     at=slot + timedelta(hours=2))
    assert result["schedule"]["paused_reason"] is None and result["schedule"]["consecutive_failures"] == 0
    assert result["caught_up"] == []


def test_manual_trigger_and_cancel_of_waiting_runs(env):
    at = datetime(2026, 5, 1, tzinfo=UTC)
    schedule = make(env, at, concurrency_policy="queue")
    first = scheduling.trigger_schedule(env["repo"], env["effects"], schedule["id"], DEV, at=at)
    second = scheduling.trigger_schedule(env["repo"], env["effects"], schedule["id"], DEV, at=at + timedelta(seconds=1))
    assert (first["outcome"], second["outcome"]) == ("active", "queued")
    assert first["training_run"]["triggered_by"] == "manual"
    result = scheduling.cancel_schedule(env["repo"], env["effects"], schedule["id"], DEV, at=at)
    assert result["cancelled_runs"] == [second["training_run"]["id"]]
    assert env["repo"].get_run(second["training_run"]["id"])["status"] == "cancelled"
    assert result["schedule"]["cancelled_runs"] == 1 and result["schedule"]["status"] == "cancelled"
    with pytest.raises(Conflict):
        scheduling.trigger_schedule(env["repo"], env["effects"], schedule["id"], DEV, at=at)


def test_a_paused_schedule_keeps_its_queue_until_resumed(env):
    schedule = make(env, datetime(2026, 5, 1, tzinfo=UTC), schedule_type="cron", cron_expression="0 * * * *",
                    concurrency_policy="queue", auto_pause_after_failures=1)
    first = schedule["next_run_at"]
    trigger(env, schedule["id"], first)
    assert trigger(env, schedule["id"], first + timedelta(hours=1)) == "queued"
    queued_id = schedules.slot_run_id(schedule["id"], first + timedelta(hours=1))
    finish(env, schedules.slot_run_id(schedule["id"], first), runs.FAILED, first + timedelta(hours=1, minutes=5))
    stored = env["repo"].get_schedule(schedule["id"])
    assert stored["status"] == "paused" and stored["queued_runs"][0]["run_id"] == queued_id
    assert stored["active_runs"] == {}
    scheduling.resume_schedule(env["repo"], env["effects"], schedule["id"], DEV,
                            at=first + timedelta(hours=1, minutes=10))
    assert env["repo"].get_run(queued_id)["status"] == "pending" and queued_id in submitted(env)


def test_a_lost_final_event_no_longer_blocks_a_schedule_capped_at_one_run(env, tmp_path):
    """Issue 15: a schedule with max_concurrent_runs=1 whose running run's SUCCEEDED event was lost
    (dead-lettered) never fired again; the reconciler completes the run from its job and the schedule's
    waiting run is released."""
    from dataclasses import replace

    from shared.adapters.artifact_store import ArtifactStore
    from shared.contract.labels import job_id_for
    from shared.services import reconcile, submission
    from shared.settings import get_settings
    from tests.fakes import FakeBackend, FakeCompiler
    from tests.unit.scenario import job_timeline, write_results

    schedule, first, second = _queue_of_two(env)
    backend, compiler = FakeBackend(), FakeCompiler()
    settings = replace(get_settings(), artifacts_root=str(tmp_path / "a"), pipeline_root=str(tmp_path / "r"))
    assert submission.submit(submission.RunSubmit(run_id=first, attempt=1), env["repo"], backend, ArtifactStore(),
                             submission.Compiler(compiler.compile_run, compiler.module_files), settings,
                             effects=env["effects"]) == "submitted"
    job_id = job_id_for(first, 1)
    backend.jobs[job_id] = job_timeline(job_id)[-1]  # the job SUCCEEDED; no event of it ever arrives
    write_results(ArtifactStore(), env["repo"].get_run(first)["gcs_artifacts_path"])
    assert second not in submitted(env)

    report = reconcile.reconcile(env["repo"], env["effects"], backend, ArtifactStore(), settings,
                                 at=runs.now() + timedelta(hours=1))
    assert report["repaired"] == {"job_state_applied": 1}
    assert env["repo"].get_run(first)["status"] == runs.COMPLETED
    stored = env["repo"].get_schedule(schedule["id"])
    assert first not in stored["active_runs"] and second in stored["active_runs"]
    assert env["repo"].get_run(second)["status"] == "pending" and second in submitted(env)
