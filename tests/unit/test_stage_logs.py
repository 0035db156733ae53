"""Logs of every stage (issue 26 part 5): the reader merges the pipeline's task logs, the data stages' Dataflow
worker and job-message logs and the Trainer's CustomJob into one time-ordered stream labelled by stage, with
stage and severity filters and a cursor that stays exact across sources and while the run goes on.
Cloud Logging and Vertex answer through the protocol fakes' logic, in process (tests/protocol_fakes/logging.py)."""
from __future__ import annotations

import json
import logging

import pytest

from shared.adapters.run_logs import LocalPipelineLogs, logging_string, stage_logs_filter
from shared.domain.log_severity import at_least, severity_of_line
from tests.protocol_fakes.logging import RunJobs

RUN = {"id": "tr-0123456789abcdef"}


def a_run(world: RunJobs) -> RunJobs:
    world.pipeline(RUN["id"], 1, {"ExampleGen": "101", "Transform": "102", "Trainer": "103"})
    world.trainer_job(RUN["id"], 1, "900")
    world.trainer_job(RUN["id"], 2, "901")  # the next attempt's: not this attempt's logs
    world.trainer_job("tr-other", 1, "902")  # another run's
    world.task_line("101", 1, "ExampleGen task starts")
    world.dataflow_line(RUN["id"], 1, "Examples", 2, "worker reads shard 1")
    world.dataflow_line("tr-other", 1, "Examples", 2.5, "another run's worker")
    world.dataflow_line(RUN["id"], 1, "Transform", 3, "Workflow failed. Causes: out of memory", "ERROR", "job-message")
    world.task_line("102", 3.5, "Transform task waits for Dataflow")
    world.task_line("900", 4, "epoch 1 loss 0.7")
    world.task_line("901", 4.5, "attempt 2's epoch")
    world.task_line("902", 4.6, "another run's epoch")
    world.task_line("103", 5, "Trainer task: custom job done", "WARNING")
    return world


def read_all(world: RunJobs, page_size: int, stage=None, severity=None, attempt=1):
    pages, cursor = [], None
    while True:
        page = world.logs.read(RUN, attempt, stage, severity, page_size, cursor)
        pages.append(page)
        cursor = page["next_cursor"]
        if not page["more"]:
            return [e for p in pages for e in p["entries"]], pages


def test_every_stage_in_one_time_ordered_stream_labelled_by_stage():
    world = a_run(RunJobs())
    entries, pages = read_all(world, page_size=2)
    assert [(e["stage"], e["origin"], e["message"]) for e in entries] == [
        ("Examples", "pipeline-task", "ExampleGen task starts"),
        ("Examples", "dataflow-worker", "worker reads shard 1"),
        ("Transform", "dataflow-job-message", "Workflow failed. Causes: out of memory"),
        ("Transform", "pipeline-task", "Transform task waits for Dataflow"),
        ("Train", "trainer-job", "epoch 1 loss 0.7"),
        ("Train", "pipeline-task", "Trainer task: custom job done")]
    assert entries[2]["severity"] == "ERROR" and entries[0]["timestamp"].endswith("Z")
    assert len(pages) == 3 and all(len(p["entries"]) == 2 for p in pages)


def test_one_filter_names_the_runs_jobs_and_nothing_else():
    world = a_run(RunJobs())
    world.logs.read(RUN, 1, None, None, 100, None)
    sent = world.logging.requests[-1]
    assert list(sent.resource_names) == ["projects/p"] and sent.order_by == "timestamp asc"
    for job in ('"101"', '"102"', '"103"', '"900"', '"tr-0123456789abcdef-a1-examplegen"',
                '"tr-0123456789abcdef-a1-evaluator"'):
        assert job in sent.filter
    assert '"901"' not in sent.filter and '"902"' not in sent.filter and "tr-other" not in sent.filter


def test_the_stage_filter_keeps_one_stages_task_dataflow_and_trainer_lines():
    world = a_run(RunJobs())
    transform, _ = read_all(world, 10, stage="Transform")
    assert [e["message"] for e in transform] == ["Workflow failed. Causes: out of memory",
                                                 "Transform task waits for Dataflow"]
    train, _ = read_all(world, 10, stage="Train")
    assert [e["origin"] for e in train] == ["trainer-job", "pipeline-task"]


def test_the_severity_filter_keeps_that_severity_and_worse():
    world = a_run(RunJobs())
    entries, _ = read_all(world, 10, severity="WARNING")
    assert [e["severity"] for e in entries] == ["ERROR", "WARNING"]
    assert "severity>=WARNING" in world.logging.requests[-1].filter


def test_a_follower_sees_a_stage_that_started_after_its_first_page_and_nothing_twice():
    world = a_run(RunJobs())
    entries, pages = read_all(world, 4)
    cursor = pages[-1]["next_cursor"]
    assert "t" not in cursor and cursor["after"]["ts"].endswith("Z")  # a position, not Logging's token
    world.dataflow_line(RUN["id"], 1, "Evaluate", 6, "evaluator worker scores")
    world.task_line("104", 6.5, "Evaluator task")  # a task that had not started: Vertex reports it now
    world.pipeline(RUN["id"], 1, {"ExampleGen": "101", "Transform": "102", "Trainer": "103", "Evaluator": "104"})
    later = world.logs.read(RUN, 1, None, None, 10, cursor)
    assert [(e["stage"], e["message"]) for e in later["entries"]] == [
        ("Evaluate", "evaluator worker scores"), ("Evaluate", "Evaluator task")]
    again = world.logs.read(RUN, 1, None, None, 10, later["next_cursor"])
    assert again["entries"] == [] and again["next_cursor"] == later["next_cursor"]


def test_lines_with_one_timestamp_page_by_insert_id_without_loss_or_repeat():
    world = RunJobs()
    world.pipeline(RUN["id"], 1, {"ExampleGen": "101"})
    for n in range(5):  # Dataflow's workers often log within the same microsecond
        world.dataflow_line(RUN["id"], 1, "Examples", 1, f"line {n}")
    first = world.logs.read(RUN, 1, None, None, 2, None)
    position = {"after": first["next_cursor"]["after"]}  # the path without Logging's token
    rest = world.logs.read(RUN, 1, None, None, 10, position)
    got = [e["message"] for e in first["entries"] + rest["entries"]]
    assert len(got) == 5 and sorted(got) == [f"line {n}" for n in range(5)]  # in insert_id order, as Logging


def test_no_jobs_yet_reads_nothing_and_asks_logging_nothing():
    world = RunJobs()
    page = world.logs.read({"id": "tr-new"}, 1, "Train", None, 10, None)
    assert page["entries"] == [] and not page["more"] and world.logging.requests == []


def test_the_filter_names_only_valid_job_ids_each_quoted():
    assert logging_string('a"b\\c') == '"a\\"b\\\\c"'
    assert stage_logs_filter({"111": "Train", '1" OR logName:"x': "Train"}, {}) == \
        '((resource.type="ml_job" AND (resource.labels.job_id="111")))'
    assert stage_logs_filter({'" OR true OR "': "Train"}, {}) is None
    with pytest.raises(ValueError):
        stage_logs_filter({"111": "Train"}, {}, since={"ts": 'x" OR "1', "id": "a"})


# --------------------------------------------------------------------------- local


def local_logs(monkeypatch, lines):
    logs = LocalPipelineLogs("http://svc")
    monkeypatch.setattr(logs, "_chunk", lambda job_id, offset: {"lines": lines[offset:offset + 3],
                                                                 "total_lines": len(lines)})
    monkeypatch.setattr(LocalPipelineLogs, "MAX_CHUNKS", 10)
    return logs


def test_local_logs_label_beam_and_trainer_lines_by_the_stage_marks(monkeypatch):
    mark = {"severity": "INFO", "message": "Component ExampleGen is running.", "time": 1796600000.5, "stage": "Examples"}
    lines = [json.dumps(mark), "WARNING:apache_beam.io.tfrecordio:Couldn't find python-snappy", "x1", "x2",
             "Component Trainer is running.", "2026-12-07 02:11:42.679456: E external/xla] cuDNN", "epoch 1"]
    logs = local_logs(monkeypatch, lines)
    page = logs.read(RUN, 1, "Examples", None, 2, None)
    assert [e["message"] for e in page["entries"]] == lines[:2] and page["more"]
    assert page["entries"][0]["timestamp"].startswith("2026-") and page["entries"][1]["severity"] == "WARNING"
    page = logs.read(RUN, 1, "Examples", None, 10, page["next_cursor"])
    assert [e["message"] for e in page["entries"]] == ["x1", "x2"] and not page["more"]
    train = logs.read(RUN, 1, "Train", None, 10, None)["entries"]
    assert [e["message"] for e in train] == lines[4:] and train[1]["severity"] == "ERROR"
    assert train[1]["timestamp"] == "2026-12-07T02:11:42.679456"
    errors = logs.read(RUN, 1, None, "ERROR", 10, None)["entries"]
    assert [e["stage"] for e in errors] == ["Train"]


def test_a_local_follower_resumes_where_the_log_ended(monkeypatch):
    lines = ["Component ExampleGen is running.", "x0"]
    logs = local_logs(monkeypatch, lines)
    first = logs.read(RUN, 1, None, None, 10, None)
    assert not first["more"] and first["next_cursor"] == {"o": 2, "s": "Examples"}
    lines += ["x1"]
    assert [e["message"] for e in logs.read(RUN, 1, None, None, 10, first["next_cursor"])["entries"]] == ["x1"]


def test_severities_order_as_cloud_loggings():
    assert at_least("ERROR", "WARNING") and not at_least("INFO", "WARNING") and at_least("DEFAULT", None)
    assert severity_of_line(json.dumps({"severity": "ERROR"})) == "ERROR" and severity_of_line("{not json") == "DEFAULT"
    assert severity_of_line("2026-12-07 02:20:11.842806: W tensorflow/compiler/x.cc:38] TF-TRT") == "WARNING"


def test_the_local_runner_marks_each_component_as_a_structured_line(capsys):
    """LocalDagRunner says "Component X is running." at absl INFO, which the runner's log never showed
    (Python logging stops at WARNING), so every local line was stage-less; the marks are printed now."""
    from pipeline_compiler import stage_marks

    absl = logging.getLogger("absl")
    with stage_marks.marking():
        absl.info("Component %s is running.", "Transform")
        absl.info("some chatty INFO line")
        absl.warning("a warning stays")
        absl.info("Component %s is finished.", "Transform")
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(e["message"], e["stage"]) for e in out] == [("Component Transform is running.", "Transform"),
                                                        ("Component Transform is finished.", "Transform")]
    assert absl.level == logging.NOTSET or absl.level >= logging.WARNING  # put back as it was


def test_dataflow_job_names_are_valid_and_distinct_for_manual_and_scheduled_runs():
    import re

    from shared.contract.dataflow_jobs import BEAM_STAGES, dataflow_job_name

    valid = re.compile(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?")
    names = set()
    for run_id in ("tr-0123456789abcdef", "ts-a19901802334-m20261207-021138", "ts-a19901802334-20261207-021138"):
        for attempt in (1, 2, 120):
            for stage in BEAM_STAGES:
                name = dataflow_job_name(run_id, attempt, stage)
                assert valid.fullmatch(name), name
                names.add(name)
    assert len(names) == 3 * 3 * len(BEAM_STAGES)
    assert dataflow_job_name("tr-0123456789abcdef", 1, "Stats") == "tr-0123456789abcdef-a1-statisticsgen"
    with pytest.raises(ValueError):
        dataflow_job_name("tr-1", 1, "Train")


def test_the_trainers_job_is_found_in_the_region_a_gpu_fallback_moved_it_to():
    world = RunJobs(region="europe-west4")
    moved = {**RUN, "gpu_config": {"region": "us-central1"}}
    world.trainer_job(RUN["id"], 1, "950", region="us-central1")
    world.task_line("950", 1, "epoch 1 on us-central1")
    page = world.logs.read(moved, 1, "Train", None, 10, None)
    assert [(e["origin"], e["message"]) for e in page["entries"]] == [("trainer-job", "epoch 1 on us-central1")]
    assert any("/locations/us-central1/customJobs" in url for _, url, _ in world.vertex.calls)


def test_the_filter_takes_only_a_logging_severity():
    assert stage_logs_filter({"111": "Train"}, {}, "ERROR").endswith(" AND severity>=ERROR")
    with pytest.raises(ValueError):
        stage_logs_filter({"111": "Train"}, {}, 'ERROR OR logName:"x"')
