"""The progress path: Vertex job/task state changes and per-epoch metrics → the run document."""
from __future__ import annotations

from typing import Optional

from pydantic import ValidationError

from shared.contract import results
from shared.domain import runs
from shared import log
from shared.adapters.artifact_store import ArtifactStore
from shared.contract import labels
from shared.contract.pipeline_log_entry import PipelineLogEntry
from shared.errors import NotFound, PermanentError
from shared.adapters.pipelines import PipelineBackend
from shared.contract.pipeline_jobs import JobSnapshot
from shared.adapters.repository import Repository
from shared.services import costing, lifecycle, ports



def job_id_from_log_entry(entry) -> str:
    """The Vertex job a sink entry is about (a PipelineLogEntry, or its JSON). The payloads are not
    relied on: the entry only says 'this job changed'; the state is read from the backend."""
    return PipelineLogEntry.of(entry).job_id


def _load(store: ArtifactStore, artifacts_uri: str, relative: str, model) -> Optional[dict]:
    text = store.read_text(results.join(artifacts_uri, relative))
    if text is None:
        return None
    try:
        return model.model_validate_json(text).model_dump(mode="json")
    except ValidationError as exc:
        raise PermanentError(f"{relative} does not follow the result contract: {exc}", stage="Evaluate") from None


def read_results(store: ArtifactStore, artifacts_uri: str) -> dict:
    """The pipeline's result files (shared/contract/results.py). The evaluation is required; the rest optional."""
    def load(relative: str, model) -> Optional[dict]:
        return _load(store, artifacts_uri, relative, model)

    evaluation = load(results.EVALUATION_FILE, results.Evaluation)
    if evaluation is None:
        raise PermanentError(f"the pipeline succeeded but left no {results.EVALUATION_FILE} under {artifacts_uri}",
                             stage="Evaluate")
    return {
        "evaluation": evaluation,
        "registry": load(results.REGISTRY_FILE, results.RegistryEntry),
        "training_metrics": load(results.TRAINING_METRICS_FILE, results.TrainingMetrics),
        "artifacts": load(results.ARTIFACTS_FILE, results.ArtifactLocations),
        "data_check": load(results.DATA_CHECK_FILE, results.DataCheck),
    }


def on_pipeline_event(entry, repo: Repository, pipelines: PipelineBackend, store: ArtifactStore,
                      effects: ports.Effects) -> str:
    """`effects`: what follows a run change reaches (a finished scheduled run starts the schedule's queued
    one at once, and pauses the schedule's job when it auto-pauses it)."""
    job_id = job_id_from_log_entry(entry)
    parsed = labels.parse_job_id(job_id)
    if parsed is None:
        log.info("pipeline event for a job Trainyard did not create", job_id=job_id)
        return "ignored"
    run_id, attempt = parsed
    run = repo.get_run(run_id)
    if run is None or run.get("attempt") != attempt:
        return "ignored"  # a deleted run or an old attempt
    if runs.is_terminal(run["status"]):
        # A redelivered final event does again what follows (each step idempotent): it queues the
        # deploy, or settles the schedule, that an earlier delivery could not.
        lifecycle.after_change(repo, run, run, effects)
        return "ignored"  # already final: nothing moves back
    try:
        job = pipelines.get_job(job_id)
    except NotFound:
        log.warning("pipeline event for a job the backend does not know", job_id=job_id, run_id=run_id)
        return "ignored"
    return apply_job(run_id, job, repo, store, run.get("gcs_artifacts_path") or "", effects)


def apply_job(run_id: str, job: JobSnapshot, repo: Repository, store: ArtifactStore, artifacts_uri: str,
              effects: ports.Effects) -> str:
    found: dict = {}
    if job.state == "PIPELINE_STATE_FAILED" and artifacts_uri and store is not None:
        try:  # what the data check coerced before a later stage failed (advice: an unreadable file says nothing)
            found = {"data_check": _load(store, artifacts_uri, results.DATA_CHECK_FILE, results.DataCheck)}
        except PermanentError as exc:
            log.warning("unreadable data check on a failed run", run_id=run_id, error=str(exc))
    if job.state == "PIPELINE_STATE_SUCCEEDED":
        try:
            found = read_results(store, artifacts_uri)
        except PermanentError as exc:
            attempt = labels.parse_job_id(job.job_id)[1]
            lifecycle.move_run(repo, run_id, lambda doc: costing.priced(runs.record_failure(
                doc, attempt, exc.stage or "Evaluate", str(exc), {"job_name": job.name}, runs.now()), job.labels),
                effects)
            return "failed"
    # A run that just ended gets its estimated cost in the same write (shared/services/costing.py).
    updated = lifecycle.move_run(repo, run_id, lambda doc: costing.priced(runs.apply_job_snapshot(doc, job, found),
                                                                          job.labels), effects)
    if updated is not None:
        log.info("run progressed", run_id=run_id, status=updated["status"], stage=updated.get("current_stage"),
                 progress=updated.get("progress_percent"))
    return "updated" if updated is not None else "unchanged"


def on_training_progress(epoch: results.EpochMetrics, repo: Repository, min_interval_s: float,
                         effects: ports.Effects) -> str:
    """An epoch may move the run (submitting → running), so it goes through move_run like any event."""
    data = epoch.model_dump(mode="json", exclude_none=True)
    try:
        repo.put_epoch(epoch.run_id, epoch.attempt, data)
        updated = lifecycle.move_run(repo, epoch.run_id, lambda doc: runs.apply_epoch(doc, data, runs.now(),
                                                                                      min_interval_s), effects)
    except NotFound:
        return "ignored"
    return "updated" if updated is not None else "unchanged"
