"""One local pipeline job, run by the local pipeline service in its own process group:

    python -m pipeline_compiler.local_runner <job_dir>

Reads `<job_dir>/run_spec.json`, runs the run's TFX pipeline with LocalDagRunner (Beam DirectRunner)
into the ML Metadata store at `<job_dir>/../..`-independent `metadata_path` given in job.json, and
writes `<job_dir>/exit.json` ({exit_code, error}) last, so the outcome survives a service restart.
"""
from __future__ import annotations

import json
import os
import sys
import traceback

from pipeline_compiler.root_cause import root_cause
from shared import log
from shared.contract.labels import parse_job_id


def job_context(job_id: str) -> dict:
    """What every log line about a pipeline job carries: its run and attempt (the job id is
    "<run id>-a<attempt>", shared/contract/labels.py) and the job id itself."""
    run_id, attempt = parse_job_id(job_id) or (None, None)
    return {"run_id": run_id, "attempt": attempt, "job_id": job_id or None}


def main(job_dir: str) -> int:
    with open(os.path.join(job_dir, "job.json")) as handle:
        job = json.load(handle)
    outcome = {"exit_code": 0, "error": None}
    with log.bound(**job_context(job.get("job_id", ""))):
        try:
            from pipeline_compiler import run_local, stage_marks
            from shared.domain.run_config import RunSpec

            with open(job["run_spec_path"]) as handle:
                spec = RunSpec.model_validate_json(handle.read())
            with stage_marks.marking():  # which stage each line of the job's log belongs to
                run_local(spec, metadata_path=job["metadata_path"])
        except BaseException as exc:  # noqa: BLE001 - whatever stopped the pipeline is the job's error
            outcome = {"exit_code": 1, "error": root_cause(exc)}
            log.error("local pipeline run failed", error=outcome["error"], traceback=traceback.format_exc())
    tmp = os.path.join(job_dir, "exit.json.tmp")
    with open(tmp, "w") as handle:
        json.dump(outcome, handle)
    os.replace(tmp, os.path.join(job_dir, "exit.json"))
    return outcome["exit_code"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
