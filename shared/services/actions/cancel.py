"""Cancel a run: the API records it (a run that never reached the pipeline is cancelled at once; one
with a job becomes `cancelling`) and queues the `cancel` command; the consumer stops the pipeline job
and the Trainer's own jobs, and folds a job that has ended into the run."""
from __future__ import annotations

from shared import log
from shared.contract import labels
from shared.contract.messages import CANCEL, RunCommand
from shared.domain import runs, teams
from shared.domain.teams import Caller
from shared.errors import Conflict, NotFound, TransientError
from shared.services import access, lifecycle, ports, progress
from shared.services.actions import Consumer, outcome, publish_command, run_for


def request(repo, effects: ports.Effects, run_id: str, who: Caller) -> dict:
    access.run(repo, who, run_id, teams.TRAINER, "cancelling a run")
    identity = who.email

    def decide(doc):
        if doc["status"] in (runs.CANCELLING, runs.CANCELLED):
            return None
        if doc["status"] not in runs.CANCELLABLE:
            raise Conflict(f"run {run_id} is {doc['status']}; only awaiting_approval, pending, scheduled, submitting "
                           f"or running runs can be cancelled")
        return runs.request_cancel(doc, identity, runs.now())

    run, changed = lifecycle.move_or_read(repo, run_id, decide, effects)  # cancelled at once: its schedule settles
    warning = None
    if run["status"] == runs.CANCELLING:  # the job is stopped by the consumer (re-queued on a repeat)
        warning = publish_command(effects.publisher, {"command": CANCEL, "run_id": run_id, "attempt": run["attempt"]})
    if run["status"] == runs.CANCELLED:
        message = "cancelled" if changed else "already cancelled"
    else:
        message = "cancelling: the pipeline job is being stopped" if changed else "already being cancelled"
    return {**outcome(run, changed, message), "warnings": [warning] if warning else []}


def execute(command: RunCommand, consumer: Consumer) -> str:
    run = run_for(command, consumer)
    if run is None or run["status"] != runs.CANCELLING or (command.attempt and command.attempt != run["attempt"]):
        return "skipped"  # gone, already ended (cancelled, or finished first) or an old attempt
    job_id = labels.job_id_for(run["id"], run["attempt"])
    try:
        consumer.pipelines.cancel_job(job_id)
    except NotFound:
        if not run.get("vertex_pipeline_job_name"):
            # Cancelled while submitting: the submitter has not created the job yet. Retry shortly.
            raise TransientError(f"job {job_id} is not created yet; the cancel will be retried") from None
    stopped = consumer.serving.trainer_jobs.cancel_for_run(run["id"])
    if stopped:
        log.info("cancelled the run's training jobs", run_id=run["id"], jobs=stopped)
    try:
        job = consumer.pipelines.get_job(job_id)
    except NotFound:
        return "cancel_requested"
    if job.terminal:  # fold it in now; the job's own event would do the same later
        progress.apply_job(run["id"], job, consumer.repo, consumer.store, run.get("gcs_artifacts_path") or "",
                           consumer.effects)
        still_running = [t.task_name for t in job.tasks if t.state in ("RUNNING", "PENDING", "CANCELLING")]
        if still_running:
            log.warning("cancelled job reports tasks still running", run_id=run["id"], tasks=still_running)
        return "cancelled"
    return "cancel_requested"
