"""Schedules through both emulators: the ticker (scripts/ticker.py, started with the stack) publishes
schedule-trigger on time, functions/scheduler makes the slot's run once, the submitter submits it."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from shared.domain import schedules
from tests.builders import post_catalog

pytestmark = pytest.mark.integration
UTC = timezone.utc


@pytest.fixture(scope="module")
def experiment(local_stack):
    return post_catalog(local_stack.post, "scheduled quick test", {"batch_size": 512, "learning_rate": 0.05},
                        {"recall_at_100": 0.5})


def template(experiment, name):
    return {"name": name, "base_experiment_id": experiment, "training_params": {"epochs": 2}}


def schedule(local_stack, body) -> dict:
    response = local_stack.post("/api/training/schedules", body)
    assert response.status_code == 201, response.text
    return response.json()["schedule"]


def wait_for_run(local_stack, run_id, predicate, timeout_s=45, what="run"):
    deadline = time.time() + timeout_s
    last = None
    while time.time() < deadline:
        response = local_stack.get(f"/api/training-runs/{run_id}")
        if response.status_code == 200:
            last = response.json()["training_run"]
            if predicate(last):
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last seen {last}")


def soon(seconds: float) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


def test_the_ticker_fires_a_one_time_schedule_and_its_run_is_submitted(local_stack, experiment):
    started = time.perf_counter()
    run_at = soon(3)
    created = schedule(local_stack, {"name": "in three seconds", "schedule_type": "once", "run_at": run_at.isoformat(),
                                     "run_template": template(experiment, "ticker-once")})
    assert created["next_run_at"].startswith(run_at.strftime("%Y-%m-%dT%H:%M:%S"))
    run_id = schedules.slot_run_id(created["id"], run_at)
    run = wait_for_run(local_stack, run_id, lambda r: r["status"] == "running", what="the slot's run to be submitted")
    assert run["schedule_id"] == created["id"] and run["triggered_by"] == "schedule"
    assert run["training_params"]["batch_size"] == 512  # the frozen template
    detail = local_stack.get(f"/api/training/schedules/{created['id']}").json()
    assert detail["schedule"]["status"] == "completed" and detail["schedule"]["total_runs"] == 1
    assert [r["id"] for r in detail["runs"]] == [run_id]
    completed = local_stack.get("/api/training/schedules", status="completed").json()["schedules"]
    assert created["id"] in [s["id"] for s in completed]
    ticks = [line for line in local_stack.log_lines("ticker") if created["id"] in line and "schedule triggered" in line]
    assert len(ticks) == 1
    print(f"one-time schedule → running run: {time.perf_counter() - started:.1f}s")


def test_a_scheduled_run_waits_then_starts_at_its_time(local_stack, experiment):
    response = local_stack.post("/api/training-runs", {**template(experiment, "scheduled-at"),
                                                       "scheduled_at": soon(3).isoformat()})
    assert response.status_code == 201, response.text
    run = response.json()["training_run"]
    assert run["status"] == "scheduled" and run["schedule_id"]
    time.sleep(1)
    assert local_stack.run(run["id"])["status"] == "scheduled"  # not before its time
    wait_for_run(local_stack, run["id"], lambda r: r["status"] == "running", what="the scheduled run to start")


def test_duplicate_triggers_make_one_run_and_a_paused_schedule_none(local_stack, experiment):
    created = schedule(local_stack, {"name": "daily, far away", "schedule_type": "daily",
                                     "time_of_day": (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M"),
                                     "timezone": "UTC", "max_concurrent_runs": 3,
                                     "run_template": template(experiment, "daily-dupes")})
    stored = {**created, "run_at": None, "start_at": None, "end_at": None}
    slot = schedules.slots_up_to(stored, datetime.now(UTC))[-1]  # the latest slot: yesterday's
    payload = {"schedule_id": created["id"], "slot": slot.isoformat()}
    with ThreadPoolExecutor(4) as pool:  # the same trigger four times, concurrently
        message_ids = list(pool.map(lambda _: local_stack.publish("schedule-trigger", payload), range(4)))
    for message_id in message_ids:
        local_stack.wait_handled("scheduler", message_id)
    run_id = schedules.slot_run_id(created["id"], slot)
    wait_for_run(local_stack, run_id, lambda r: r["status"] in ("pending", "submitting", "running"))
    detail = local_stack.get(f"/api/training/schedules/{created['id']}").json()
    assert [r["id"] for r in detail["runs"]] == [run_id] and detail["schedule"]["total_runs"] == 1

    assert local_stack.post(f"/api/training/schedules/{created['id']}/pause", {}).status_code == 200
    earlier = slot - timedelta(days=1)
    message_id = local_stack.publish("schedule-trigger", {"schedule_id": created["id"], "slot": earlier.isoformat()})
    local_stack.wait_handled("scheduler", message_id)
    assert local_stack.get(f"/api/training-runs/{schedules.slot_run_id(created['id'], earlier)}").status_code == 404
    assert any(created["id"] in line and "trigger ignored" in line for line in local_stack.log_lines("scheduler"))
