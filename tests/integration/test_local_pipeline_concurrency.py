"""The local pipeline service's bounded concurrency (TRAINYARD_LOCAL_MAX_RUNNING_JOBS): at most N jobs
run, later ones wait PIPELINE_STATE_QUEUED in creation order, a cancelled queued job never starts, and
stopping the service (`make down`) leaves no pipeline process behind; the next start fails the jobs
that were running or queued with "the local stack stopped". The scripted runner stands in for TFX."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from pipeline_compiler.local_service import LocalPipelineService
from shared.settings import Settings
from tests.integration.test_local_pipeline_service import CollectingPublisher, create, wait_state
from tests.polling import wait_until

pytestmark = pytest.mark.integration

RUNNER = "tests.integration.scripted_runner"


class Services:
    """Starts services on one state dir and stops every one of them (and so their jobs) at the end."""

    def __init__(self, tmp_path: Path):
        self.state_dir = tmp_path / "state"
        self.started: list[LocalPipelineService] = []
        self.pids: list[int] = []

    def start(self, max_running: int, publisher=None) -> tuple[LocalPipelineService, CollectingPublisher]:
        publisher = publisher or CollectingPublisher()
        svc = LocalPipelineService(self.state_dir, "proj", publisher, poll_s=0.1, runner_module=RUNNER,
                                   max_running=max_running, stop_grace_s=1.0)
        threading.Thread(target=svc.monitor_forever, daemon=True).start()
        self.started.append(svc)
        return svc, publisher

    def stop_all(self) -> None:
        for svc in self.started:
            self.pids += [r.data["pid"] for r in svc.jobs.values() if r.data.get("pid")]
            svc.stop()


@pytest.fixture
def services(tmp_path):
    made = Services(tmp_path)
    yield made
    made.stop_all()
    assert [pid for pid in made.pids if group_alive(pid)] == [], "the tests left pipeline processes behind"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def states(svc, *job_ids) -> list[str]:
    return [svc.get(j)["state"].removeprefix("PIPELINE_STATE_") for j in job_ids]


def started(svc, job_id) -> bool:
    """Whether the job's runner process ever started (the scripted runner records each start)."""
    return (svc.jobs[job_id].dir / "started").exists()


def published_states(publisher, job_id) -> list[str]:
    return [p["jsonPayload"]["state"] for topic, p in publisher.entries
            if topic == "pipeline-events" and p["resource"]["labels"]["pipeline_job_id"] == job_id]


def wait_for(condition, timeout_s=20, what="condition"):
    wait_until(condition, timeout_s, what, interval_s=0.1)


def test_with_one_slot_jobs_wait_queued_and_start_in_creation_order(services, tmp_path):
    svc, publisher = services.start(max_running=1)
    first, second, third = (create(svc, tmp_path, name) for name in ("order1-ok", "order2-slow", "order3-slow"))
    assert states(svc, first, second, third) == ["RUNNING", "QUEUED", "QUEUED"]
    assert svc.get(second)["start_time"] is None and svc.jobs[second].data["pid"] is None
    # The queued state is published like any other, so the run documents see it.
    wait_for(lambda: "PIPELINE_STATE_QUEUED" in published_states(publisher, third), what="QUEUED published")
    assert "PIPELINE_STATE_QUEUED" in published_states(publisher, second)

    wait_state(svc, first, {"PIPELINE_STATE_SUCCEEDED"})
    wait_for(lambda: states(svc, second) == ["RUNNING"], what="the second job to start")
    assert states(svc, third) == ["QUEUED"] and not started(svc, third)
    wait_for(lambda: started(svc, second), what="the second runner")
    wait_for(lambda: published_states(publisher, second)[-1:] == ["PIPELINE_STATE_RUNNING"], what="RUNNING published")

    svc.cancel(second)  # ending by cancel frees the slot too
    wait_state(svc, second, {"PIPELINE_STATE_CANCELLED"})
    wait_for(lambda: states(svc, third) == ["RUNNING"], what="the third job to start")


def test_a_cancelled_queued_job_ends_cancelled_and_never_starts(services, tmp_path):
    svc, publisher = services.start(max_running=1)
    running, queued = create(svc, tmp_path, "cq1-slow"), create(svc, tmp_path, "cq2-ok")
    assert states(svc, running, queued) == ["RUNNING", "QUEUED"]
    job = svc.cancel(queued)
    assert job["state"] == "PIPELINE_STATE_CANCELLED" and job["end_time"]
    assert {t["state"] for t in job["tasks"]} == {"NOT_TRIGGERED"}
    wait_for(lambda: published_states(publisher, queued)[-1:] == ["PIPELINE_STATE_CANCELLED"], what="CANCELLED")

    svc.cancel(running)  # its slot frees up: the cancelled job must still not start
    wait_state(svc, running, {"PIPELINE_STATE_CANCELLED"})
    time.sleep(1.0)  # several polls
    assert states(svc, queued) == ["CANCELLED"]
    assert not started(svc, queued) and svc.jobs[queued].data["pid"] is None
    assert not (svc.jobs[queued].dir / "runner.log").exists()


def test_stopping_the_service_stops_running_jobs_and_the_next_start_fails_them(services, tmp_path):
    svc, _ = services.start(max_running=1)
    # -stubborn: the runner ignores SIGTERM and has a helper in its group, so only SIGKILL stops it all.
    running, queued = create(svc, tmp_path, "stop1-stubborn-slow"), create(svc, tmp_path, "stop2-ok")
    wait_for(lambda: svc.get(running)["tasks"][1]["state"] == "RUNNING", what="the runner to get going")
    pid = svc.jobs[running].data["pid"]
    assert group_alive(pid)

    began = time.time()
    svc.stop()
    assert time.time() - began < 8  # inside the 10 s scripts/stack.py gives the service before SIGKILL
    assert not group_alive(pid), "the job's process group outlived the service"
    assert not started(svc, queued)

    again, publisher = services.start(max_running=1)
    for job_id in (running, queued):
        job = again.get(job_id)
        assert job["state"] == "PIPELINE_STATE_FAILED", job_id
        assert job["error"] == "the local stack stopped" and job["end_time"]
    tasks = [(t["state"], t["error"]) for t in again.get(running)["tasks"]]
    at = next(i for i, (state, _) in enumerate(tasks) if state == "FAILED")  # the task that was running
    assert at >= 1 and tasks[:at] == [("SUCCEEDED", None)] * at
    assert tasks[at] == ("FAILED", "the local stack stopped")
    assert {state for state, _ in tasks[at + 1:]} <= {"NOT_TRIGGERED"}
    assert {t["state"] for t in again.get(queued)["tasks"]} == {"NOT_TRIGGERED"}
    # Failed, not resumed: nothing starts, and the outcome is published for the run documents.
    for job_id in (running, queued):
        wait_for(lambda: published_states(publisher, job_id)[-1:] == ["PIPELINE_STATE_FAILED"], what="FAILED")
    time.sleep(0.5)
    assert not started(again, queued) and not group_alive(pid)


def test_with_two_slots_two_jobs_run_at_once(services, tmp_path):
    svc, _ = services.start(max_running=2)
    jobs = [create(svc, tmp_path, f"two{i}-slow") for i in range(3)]
    assert states(svc, *jobs) == ["RUNNING", "RUNNING", "QUEUED"]
    wait_for(lambda: started(svc, jobs[0]) and started(svc, jobs[1]), what="both runners")
    assert group_alive(svc.jobs[jobs[0]].data["pid"]) and group_alive(svc.jobs[jobs[1]].data["pid"])
    svc.cancel(jobs[1])
    wait_state(svc, jobs[1], {"PIPELINE_STATE_CANCELLED"})
    wait_for(lambda: states(svc, *jobs) == ["RUNNING", "CANCELLED", "RUNNING"], what="the queued job to start")


def test_the_setting_defaults_to_one_and_must_be_positive():
    assert Settings.from_environ({}).local_max_running_jobs == 1
    assert Settings.from_environ({"TRAINYARD_LOCAL_MAX_RUNNING_JOBS": "3"}).local_max_running_jobs == 3
    for bad in ("0", "two"):
        with pytest.raises(ValueError, match="TRAINYARD_LOCAL_MAX_RUNNING_JOBS"):
            Settings.from_environ({"TRAINYARD_LOCAL_MAX_RUNNING_JOBS": bad})
