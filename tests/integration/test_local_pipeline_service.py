"""The local pipeline service alone: events for every transition, cancel, crash, restart."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from pipeline_compiler.local_service import LocalPipelineService, create_app
from shared.adapters.pipelines import LocalPipelineServiceBackend
from shared.services.progress import job_id_from_log_entry

pytestmark = pytest.mark.integration


class CollectingPublisher:
    def __init__(self):
        self.entries = []

    def publish(self, topic, payload, **attributes):
        self.entries.append((topic, payload))
        return str(len(self.entries))


def spec_file(tmp_path: Path, name: str) -> str:
    from pipeline_compiler.demo_data import demo_run_spec

    spec = demo_run_spec(str(tmp_path / "data.csv"), str(tmp_path / "art"), str(tmp_path / "root" / name),
                         run_id=f"tr-{name}", run_name=name)
    path = tmp_path / f"{name}.json"
    path.write_text(spec.to_json())
    return str(path)


@pytest.fixture
def service(tmp_path):
    publisher = CollectingPublisher()
    svc = LocalPipelineService(tmp_path / "state", "proj", publisher, poll_s=0.1,
                               runner_module="tests.integration.scripted_runner")
    thread = threading.Thread(target=svc.monitor_forever, daemon=True)
    thread.start()
    yield svc, publisher
    svc.stop()  # stops any job still running, as `make down` does


def wait_state(svc, job_id, states, timeout_s=30):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        job = svc.get(job_id)
        if job["state"] in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"{job_id} stuck in {svc.get(job_id)['state']}")


def create(svc, tmp_path, name):
    code, body = svc.create({"job_id": f"tr-{name}-a1", "run_spec_uri": spec_file(tmp_path, name),
                             "pipeline_root": str(tmp_path / "root" / name), "labels": {"trainyard-run-id": name}})
    assert code == 200, body
    return body["job_id"]


def test_every_transition_is_published_as_a_sink_entry(service, tmp_path):
    svc, publisher = service
    job_id = create(svc, tmp_path, "ok")
    job = wait_state(svc, job_id, {"PIPELINE_STATE_SUCCEEDED"})
    assert [t["state"] for t in job["tasks"]] == ["SUCCEEDED"] * 7
    time.sleep(0.3)
    entries = [p for topic, p in publisher.entries if topic == "pipeline-events"]
    assert all(job_id_from_log_entry(e) == job_id for e in entries)  # what functions/pipeline_events reads
    logs = {e["logName"].rsplit("%2F", 1)[1] for e in entries}
    assert logs == {"pipeline_job_events", "pipeline_job_task_events"}
    assert entries[-1]["jsonPayload"]["state"] == "PIPELINE_STATE_SUCCEEDED"
    # No change goes unpublished: changes seen in one poll share an entry (consumers read the job's
    # state, so nothing is lost), versions only grow, and the last entry carries the final version.
    versions = [int(e["insertId"].rsplit("-", 1)[1]) for e in entries]
    assert versions == sorted(set(versions))
    assert versions[-1] == svc.jobs[job_id].data["version"]
    assert len(entries) >= 3  # running, at least one task change, succeeded


def test_duplicate_create_is_409_and_the_http_contract_matches_the_backend(service, tmp_path):
    svc, _ = service
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, create_app(svc), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    backend = LocalPipelineServiceBackend(f"http://127.0.0.1:{server.server_port}")
    from shared.adapters.pipelines import JobRequest

    request = JobRequest(job_id="tr-http-a1", display_name="http", labels={}, pipeline_job_path="",
                         pipeline_job_uri="", run_spec_uri=spec_file(tmp_path, "http-ok"),
                         pipeline_root=str(tmp_path / "root" / "http"))
    first = backend.create_job(request)
    again = backend.create_job(request)  # 409 → the existing job: a redelivered run-submit is harmless
    assert first.job_id == again.job_id == "tr-http-a1"
    assert backend.get_job("tr-http-a1").state.startswith("PIPELINE_STATE_")
    server.shutdown()


def test_cancel_stops_the_process_group_and_ends_cancelled(service, tmp_path):
    svc, publisher = service
    job_id = create(svc, tmp_path, "long-slow")
    deadline = time.time() + 30
    while svc.get(job_id)["tasks"][4]["state"] != "RUNNING" and time.time() < deadline:
        time.sleep(0.1)
    pid = svc.jobs[job_id].data["pid"]
    svc.cancel(job_id)
    job = wait_state(svc, job_id, {"PIPELINE_STATE_CANCELLED"})
    assert job["tasks"][4]["state"] == "CANCELLED" and job["tasks"][5]["state"] == "NOT_TRIGGERED"
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_a_crashed_process_fails_the_job_at_the_running_task(service, tmp_path):
    svc, publisher = service
    job_id = create(svc, tmp_path, "boom-crash-at-transform")
    job = wait_state(svc, job_id, {"PIPELINE_STATE_FAILED"})
    failed = [t for t in job["tasks"] if t["state"] == "FAILED"]
    assert [t["task_name"] for t in failed] == ["Transform"]
    assert "exit code 3" in failed[0]["error"] and "died" in job["error"]


def test_job_history_survives_a_restart(service, tmp_path):
    svc, publisher = service
    job_id = create(svc, tmp_path, "restart-ok")
    wait_state(svc, job_id, {"PIPELINE_STATE_SUCCEEDED"})
    svc.stopping.set()
    again = LocalPipelineService(tmp_path / "state", "proj", CollectingPublisher(), poll_s=0.1,
                                 runner_module="tests.integration.scripted_runner")
    assert again.get(job_id)["state"] == "PIPELINE_STATE_SUCCEEDED"
    assert [t["state"] for t in again.get(job_id)["tasks"]] == ["SUCCEEDED"] * 7
