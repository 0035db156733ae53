"""pipeline_compiler logs on shared/log.py: one JSON object a line, with the run (run_id, attempt)
bound once per job, so a run's local-service and local-run lines can be found by its id. (The compile's own
lines are checked in tests/unit/pipeline_compiler/test_compile.py, with TFX.)"""
from __future__ import annotations

import json

from pipeline_compiler import local_runner
from pipeline_compiler.local_service import LocalPipelineService


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_local_job_logs_its_run_from_creation_to_cancel(tmp_path, capsys):
    from pipeline_compiler.demo_data import demo_run_spec

    spec = tmp_path / "spec.json"
    spec.write_text(demo_run_spec(str(tmp_path / "data.csv"), str(tmp_path / "art"), str(tmp_path / "root"),
                                  run_id="tr-logged", run_name="logged").to_json())
    service = LocalPipelineService(tmp_path / "state", "proj")
    service.stopping.set()  # nothing starts: the job stays queued, no process is made
    code, _ = service.create({"job_id": "tr-logged-a2", "run_spec_uri": str(spec), "pipeline_root": str(tmp_path)})
    assert code == 200
    service.cancel("tr-logged-a2")
    entries = json_lines(capsys.readouterr().out)
    messages = [e["message"] for e in entries]
    assert "pipeline job created" in messages and "pipeline job cancel requested" in messages
    assert {"state": "PIPELINE_STATE_CANCELLED"}.items() <= entries[-1].items()
    for entry in entries:
        assert (entry["run_id"], entry["attempt"], entry["job_id"]) == ("tr-logged", 2, "tr-logged-a2"), entry
        assert entry["severity"] == "INFO"


def test_a_failed_local_run_logs_its_root_cause_with_its_run(tmp_path, capsys):
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    (job_dir / "job.json").write_text(json.dumps({"job_id": "tr-broken-a1", "run_spec_path": str(tmp_path / "gone.json"),
                                                  "metadata_path": str(tmp_path / "m.sqlite")}))
    assert local_runner.main(str(job_dir)) == 1
    [entry] = [e for e in json_lines(capsys.readouterr().out) if e["message"] == "local pipeline run failed"]
    assert entry["severity"] == "ERROR" and entry["run_id"] == "tr-broken" and entry["attempt"] == 1
    assert "gone.json" in entry["error"] and "Traceback" in entry["traceback"]
    assert json.loads((job_dir / "exit.json").read_text())["error"] == entry["error"]


def test_the_local_log_reader_takes_a_structured_lines_severity():
    from shared.domain.log_severity import severity_of_line

    assert severity_of_line(json.dumps({"severity": "ERROR", "message": "local pipeline run failed"})) == "ERROR"
    assert severity_of_line("{not json") == "DEFAULT" and severity_of_line("WARNING something") == "WARNING"
