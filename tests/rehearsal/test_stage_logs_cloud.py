"""Logs of every stage as the cloud API reads them: google-cloud-logging's official GAPIC client over Cloud
Logging's gRPC protocol (ListLogEntries on tests/protocol_fakes/logging.py, the official logging_v2 types),
Vertex's PipelineJob and CustomJobs as its REST API answers them. A Dataflow stage's worker and job-message
lines and the Trainer CustomJob's lines come back labelled by stage, filtered by stage and severity, and paged
with the API's signed tokens without loss or repeat."""
from __future__ import annotations

import pytest

from shared.adapters.run_data_sources import RunDataSources
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.errors import FieldError
from shared.services import intake, run_data
from shared.services.ports import Effects
from tests.builders import demo_member, run_body, seed_catalog
from tests.fakes import FakePublisher, InMemoryRepository
from tests.protocol_fakes.grpc_service import FakeServer
from tests.protocol_fakes.logging import RunJobs

pytestmark = [pytest.mark.rehearsal]
KEY = b"k" * 32


@pytest.fixture
def cloud():
    server = FakeServer()
    jobs = RunJobs("trainyard-p", "europe-west4", server=server)
    server.start()
    repo = InMemoryRepository()
    ids = seed_catalog(repo)
    run_id = intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()), run_body(ids["experiment"]),
                               *demo_member("dev@example.com"))["id"]
    jobs.pipeline(run_id, 1, {"ExampleGen": "5001", "Transform": "5002", "Trainer": "5003"})
    jobs.trainer_job(run_id, 1, "7001")
    jobs.task_line("5002", 1, "Transform: launching Dataflow job")
    for n in range(5):
        jobs.dataflow_line(run_id, 1, "Transform", 2 + n / 10, f"analyze shard {n}")
    jobs.dataflow_line(run_id, 1, "Transform", 3, "Workflow failed.", "ERROR", "job-message")
    jobs.task_line("7001", 4, "Epoch 1/3 loss=0.61")
    jobs.task_line("7001", 5, "ResourceExhausted: OOM when allocating tensor", "ERROR")
    jobs.dataflow_line("tr-someone-else", 1, "Transform", 2.5, "not this run's")
    yield jobs, repo, run_id
    server.stop()


def pages(repo, jobs, run_id, **args):
    sources, who = RunDataSources(jobs.logs, None), demo_member("dev@example.com")[0]
    found, token = [], None
    while True:
        page = run_data.run_logs(repo, sources, run_id, {**args, **({"page_token": token} if token else {})}, who, KEY)
        found.append(page)
        token = page["next_page_token"]
        if not token:
            return found


def test_dataflow_and_custom_job_lines_come_labelled_by_stage_in_time_order(cloud):
    jobs, repo, run_id = cloud
    found = pages(repo, jobs, run_id, page_size="3")
    entries = [e for p in found for e in p["entries"]]
    assert [(e["stage"], e["origin"]) for e in entries] == (
        [("Transform", "pipeline-task")] + [("Transform", "dataflow-worker")] * 5
        + [("Transform", "dataflow-job-message"), ("Train", "trainer-job"), ("Train", "trainer-job")])
    assert [e["message"] for e in entries[1:6]] == [f"analyze shard {n}" for n in range(5)]
    assert len(found) == 3 and all(len(p["entries"]) == 3 for p in found)
    sent = jobs.logging.requests
    assert all(list(r.resource_names) == ["projects/trainyard-p"] and r.order_by == "timestamp asc" for r in sent)
    assert sent[1].page_token and sent[1].filter == sent[0].filter  # Logging's paging, its filter unchanged


def test_the_stage_and_severity_filters_reach_logging(cloud):
    jobs, repo, run_id = cloud
    train = [e for p in pages(repo, jobs, run_id, stage="Train") for e in p["entries"]]
    assert [e["message"] for e in train] == ["Epoch 1/3 loss=0.61", "ResourceExhausted: OOM when allocating tensor"]
    assert 'resource.type="dataflow_step"' not in jobs.logging.requests[-1].filter
    errors = [e for p in pages(repo, jobs, run_id, severity="error") for e in p["entries"]]
    assert [(e["stage"], e["message"]) for e in errors] == [
        ("Transform", "Workflow failed."), ("Train", "ResourceExhausted: OOM when allocating tensor")]


def test_a_follower_reads_what_came_since_and_a_token_is_good_for_its_own_selection_only(cloud):
    jobs, repo, run_id = cloud
    last = pages(repo, jobs, run_id, page_size="100")[-1]
    assert last["next_page_token"] is None and last["follow_token"]
    jobs.dataflow_line(run_id, 1, "Evaluate", 9, "evaluator scores the test split")
    later = pages(repo, jobs, run_id, page_size="100", page_token=last["follow_token"])
    assert [(e["stage"], e["message"]) for p in later for e in p["entries"]] == [
        ("Evaluate", "evaluator scores the test split")]
    with pytest.raises(FieldError):
        pages(repo, jobs, run_id, stage="Train", page_token=last["follow_token"])
