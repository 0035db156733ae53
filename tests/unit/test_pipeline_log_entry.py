"""The pipeline-events payload (shared/contract/pipeline_log_entry.py): the canonical sink entries
read as a PipelineLogEntry name their job and its run, and every line the consumer logs carries it."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared import log
from shared.consumer import consume
from shared.contract.labels import job_id_for
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.services.ports import Effects
from tests.fakes import FakePublisher
from shared.contract.pipeline_log_entry import PIPELINE_RESOURCE_TYPE, PipelineLogEntry
from shared.services import progress
from tests.events import load_event, payload_of


def entry(job_id: str, log_id: str = "aiplatform.googleapis.com%2Fpipeline_job_events") -> dict:
    return {"logName": f"projects/p/logs/{log_id}",
            "resource": {"type": PIPELINE_RESOURCE_TYPE, "labels": {"pipeline_job_id": job_id}}}


@pytest.mark.parametrize("name", ["pipeline_job_event.json", "pipeline_job_task_event.json"])
def test_a_canonical_sink_entry_names_its_job_and_its_run(name):
    parsed = PipelineLogEntry.model_validate(payload_of(load_event(name)))
    assert (parsed.job_id, parsed.run_id, parsed.attempt) == ("tr-0123456789abcdef-a1", "tr-0123456789abcdef", 1)


def test_the_run_is_read_back_from_the_deterministic_job_id_of_every_run_id_kind():
    for run_id in ("tr-0123456789abcdef", "ts-0123456789ab-20260501-023000", "ts-0123456789ab-m20260501-023000"):
        parsed = PipelineLogEntry.of(entry(job_id_for(run_id, 12)))
        assert (parsed.run_id, parsed.attempt) == (run_id, 12)
    foreign = PipelineLogEntry.of(entry("someone-elses-job"))
    assert (foreign.job_id, foreign.run_id, foreign.attempt) == ("someone-elses-job", None, None)


@pytest.mark.parametrize("bad", [
    payload_of(load_event("unknown_log_entry.json")),  # another resource type
    {**entry("tr-0123456789abcdef-a1"), "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity"},
    {"logName": "projects/p/logs/aiplatform.googleapis.com%2Fpipeline_job_events",
     "resource": {"type": PIPELINE_RESOURCE_TYPE, "labels": {}}},  # names no job
    {"resource": {"type": PIPELINE_RESOURCE_TYPE, "labels": {"pipeline_job_id": "tr-0123456789abcdef-a1"}}},
])
def test_an_entry_that_is_not_a_pipeline_jobs_is_refused(bad):
    with pytest.raises(ValidationError):
        PipelineLogEntry.model_validate(bad)
    with pytest.raises(ValueError):
        progress.job_id_from_log_entry(bad)
    with pytest.raises(ValueError):
        PipelineLogEntry.of(["not", "an", "object"])


def test_every_line_pipeline_events_logs_carries_the_run(capsys, repo, backend):
    """Review §1.3: the consumer bound run_id=None for every LogEntry; now the run is read before the
    handler runs, so the handler's lines and the outcome line carry it."""
    body = load_event("pipeline_job_event.json", **{"tr-0123456789abcdef": "tr-00000000000000aa"})

    def handle(parsed: PipelineLogEntry, message) -> str:
        log.info("looking at the job", job=parsed.job_id)
        return progress.on_pipeline_event(parsed, repo, backend, None, Effects(FakePublisher(), LocalTickerJobs()))

    assert consume(body, PipelineLogEntry, handle, "pipeline_events") == "ignored"  # no such run here
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["message"] for line in lines] == ["looking at the job", "message handled"]
    assert all(line["run_id"] == "tr-00000000000000aa" and line["consumer"] == "pipeline_events"
               and line["message_id"] == "9000000001" for line in lines)


def test_an_unknown_entry_is_acknowledged_before_the_handler_runs(capsys):
    seen = []
    assert consume(load_event("unknown_log_entry.json"), PipelineLogEntry, lambda *a: seen.append(a),
                   "pipeline_events") == "malformed"
    assert seen == []
    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert line["message"] == "malformed message acknowledged" and "PipelineLogEntry" in line["error"]


def test_every_consumer_validates_a_model_that_names_its_run_or_is_about_none():
    """What holds docs/architecture.md's "a consumer binds its message id and run id": each consume()
    in functions/ passes a contract model, and that model has `run_id` (a field or a property) unless
    its messages concern no one run."""
    import ast
    import importlib
    from pathlib import Path

    from shared.contract.messages import DataLanded, ReconcileTick, ScheduleTrigger

    # a schedule's slot; a reconcile pass over all runs; new data (it may start runs, names none)
    about_no_run = {ScheduleTrigger, ReconcileTick, DataLanded}
    found = {}
    for main in sorted((Path(__file__).resolve().parents[2] / "functions").glob("*/main.py")):
        module = ast.parse(main.read_text())
        imported = {alias.asname or alias.name: node.module for node in ast.walk(module)
                    if isinstance(node, ast.ImportFrom) for alias in node.names}
        for call in ast.walk(module):
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "consume":
                name = call.args[1].id  # a bare None here would not be a Name: the check fails on it
                found[f"{main.parent.name}:{name}"] = getattr(importlib.import_module(imported[name]), name)
    assert len(found) == 7 and "pipeline_events:PipelineLogEntry" in found
    for where, model in found.items():
        assert model in about_no_run or "run_id" in model.model_fields or isinstance(
            getattr(model, "run_id", None), property), where
