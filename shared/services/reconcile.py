"""The reconciler: runs whose events stopped are re-read from the truth, so nothing stays stuck.

Events can be lost for good: a consumer outage longer than a topic's retry window dead-letters the
final SUCCEEDED/FAILED of a job, a submitter can die between its claim and the job. Every few
minutes (Cloud Scheduler → `reconcile` → functions/pipeline_events `on_reconcile`; the local ticker
locally) this pass finds the runs that are not terminal and have not changed for longer than their
status's threshold (shared/settings.py) and repairs each through the path its events would take:

- `submitting` past the submit lease → `run-submit` for the same attempt again; the submitter takes
  the stale claim over and the deterministic job id keeps it one job;
- `running` → the pipeline job is read and applied through progress.apply_job, the same forward-only
  path pipeline_events uses (a terminal job ends the run, results and schedule bookkeeping included);
- `cancelling` → the job is read and applied (a cancelled job ends it), else the cancel is sent again;
- a deployment `deploying` or `rolling_back`, or a push-anyway `pushing` → its command is sent again
  (run-commands acts on a deployment id or a push once and skips a repeat);
- a batch prediction `running` → its `batch_predict` command again (a job that outlived the consumer's
  wait and the command's redeliveries: the follow-up records its progress, rows and final state);
- a failed run with a GPU shape left (gpu_fallback.next_config) → its `gpu_fallback` command again (the
  next attempt was never started: the command was lost);
- a deployment in `canary` → `canary_check`, every pass: the watch of a staged deploy (run-commands reads
  its serving metrics and waits, promotes it or rolls it back; shared/services/actions/canary_watch.py);
- a deleted run past its grace period (`purge_after`) → purged: marked `purging` (no restore after that),
  its artifacts removed, then its document (security review M4: deletes are soft first).

Each pass is logged and recorded (the `reconciler` status document: totals per repair, the last pass, the latest
repairs) and `GET /api/reconciler` shows it. The pass is idempotent: a repeat repairs nothing twice.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Callable, Iterator, Optional

from shared.domain import batch_predictions, deployments, gpu_fallback, runs
from shared import log
from shared.adapters.pipelines import PipelineBackend
from shared.contract import labels, messages
from shared.errors import Conflict, NotFound, TransientError
from shared.services import ports, progress, queueing, run_writes, search_index
from shared.services.actions import publish_command

PAGE = 200
MAX_SCAN = 5000  # per status and pass; the oldest stuck runs come last (newest first) and wait a pass
RECENT_KEPT = 50
STATUS = "reconciler"  # its status document (repo.mutate_status / get_status)
BATCH, GPU_FALLBACK = "batch_prediction", "gpu_fallback"  # what else it checks (the status document's keys)
FALLBACK_LOOKBACK = timedelta(days=7)  # failed runs made this recently are checked for a lost gpu_fallback


def thresholds(settings) -> dict[str, timedelta]:
    """How long each kind of run may go unchanged before it is re-read."""
    return {
        runs.SUBMITTING: timedelta(seconds=settings.submit_lease_s),
        runs.RUNNING: timedelta(seconds=settings.reconcile_running_after_s),
        runs.CANCELLING: timedelta(seconds=settings.reconcile_cancelling_after_s),
        deployments.DEPLOYING: timedelta(seconds=settings.reconcile_command_after_s),
        runs.PUSHING: timedelta(seconds=settings.reconcile_command_after_s),
    }


def _unchanged_since(repo, filters: dict, before: datetime) -> Iterator[dict]:
    return _scan(repo, filters, lambda run: bool(run.get("updated_at") and run["updated_at"] <= before))


def _scan(repo, filters: dict, wanted: Callable[[dict], bool],
          stop: Callable[[dict], bool] = lambda run: False) -> Iterator[dict]:
    after, scanned = None, 0
    while scanned < MAX_SCAN:
        page = repo.list_runs(filters, PAGE, after)
        for run in page:
            if stop(run):  # newest first: all that follow are older
                return
            if wanted(run):
                yield run
        scanned += len(page)
        if len(page) < PAGE:
            return
        after = (page[-1]["created_at"], page[-1]["id"])


def reconcile(repo, effects: ports.Effects, pipelines: PipelineBackend, store, settings, at: Optional[datetime] = None) -> dict:
    """One pass. Returns (and records) what it checked and repaired."""
    at = at or runs.now()
    limits = thresholds(settings)
    checked: Counter = Counter()
    repairs: list[dict] = []

    def repaired(run: dict, action: str, **details) -> None:
        repairs.append({"run_id": run["id"], "attempt": run.get("attempt"), "status": run["status"],
                        "action": action, "at": at, **details})
        log.warning("reconciler repaired a run", run_id=run["id"], status=run["status"], action=action, **details)

    for status, handle in ((runs.SUBMITTING, _submitting), (runs.RUNNING, _running), (runs.CANCELLING, _cancelling)):
        for run in _unchanged_since(repo, {"status": status}, at - limits[status]):
            checked[status] += 1
            try:
                action, details = handle(run, repo, effects, pipelines, store)
            except TransientError as exc:  # the next pass tries again
                log.warning("reconciler could not repair a run yet", run_id=run["id"], status=status, error=str(exc))
                continue
            if action:
                repaired(run, action, **details)
    for status, command, repair in ((deployments.DEPLOYING, messages.DEPLOY, "deploy_resent"),
                                    (deployments.ROLLING_BACK, messages.ROLLBACK, "rollback_resent")):
        for run in _unchanged_since(repo, {"deployment_status": status}, at - limits[deployments.DEPLOYING]):
            checked[status] += 1
            deployment = run.get("deployment") or {}
            if deployment.get("status") == status and _send(effects.publisher, {
                    "command": command, "run_id": run["id"], "deployment_id": deployment.get("id")}):
                repaired(run, repair, deployment_id=deployment.get("id"))
    for run in _scan(repo, {"deployment_status": deployments.CANARY}, lambda r: True):
        # Watched every pass, however recently it changed: routine, so counted as checked, not as a repair
        # (the status document's latest repairs stay the reconciler's repairs).
        deployment = run.get("deployment") or {}
        if deployment.get("status") == deployments.CANARY and _send(effects.publisher, {
                "command": messages.CANARY_CHECK, "run_id": run["id"], "deployment_id": deployment.get("id")}):
            checked[deployments.CANARY] += 1
    for run in _unchanged_since(repo, {"batch_prediction_status": batch_predictions.RUNNING},
                                at - limits[deployments.DEPLOYING]):
        # A batch job outlives the consumer's wait (its command is redelivered to follow it); once the
        # redeliveries stop — a dead-letter policy allows 5 to 100 delivery attempts (DeadLetterPolicy.
        # max_delivery_attempts, cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions) — nothing
        # records its progress: a follow-up command takes it on.
        batch = run.get("batch_prediction") or {}
        checked[BATCH] += 1
        if batch.get("status") == batch_predictions.RUNNING and _send(effects.publisher, {
                "command": messages.BATCH_PREDICT, "run_id": run["id"], "batch_id": batch.get("id")}):
            repaired(run, "batch_followed", batch_id=batch.get("id"))
    for run in _falling_back(repo, at - limits[deployments.DEPLOYING], at - FALLBACK_LOOKBACK):
        checked[GPU_FALLBACK] += 1
        if _send(effects.publisher, {"command": messages.GPU_FALLBACK, "run_id": run["id"], "attempt": run["attempt"]}):
            repaired(run, "gpu_fallback_resent", shape=gpu_fallback.describe(gpu_fallback.shape_of(
                gpu_fallback.next_config(run))))
    for run in _unchanged_since(repo, {"status": runs.NOT_BLESSED}, at - limits[runs.PUSHING]):
        if (run.get("push_anyway") or {}).get("status") != runs.PUSHING:
            continue
        checked[runs.PUSHING] += 1
        if _send(effects.publisher, {"command": messages.PUSH_ANYWAY, "run_id": run["id"]}):
            repaired(run, "push_anyway_resent")

    for run in _scan(repo, {"deleted": True}, lambda r: bool(r.get("purge_after") and r["purge_after"] <= at)):
        checked["deleted"] += 1
        try:
            purged = _purge(run, repo, store, at)
        except TransientError as exc:  # the next pass carries on: a purge once begun is resumed
            log.warning("reconciler could not purge a deleted run yet", run_id=run["id"], error=str(exc))
            continue
        if purged is not None:
            repaired(run, "purged", **purged)

    indexed = search_index.backfill(repo)  # runs written before they carried search tokens, a batch a pass
    if indexed:
        checked["search_indexed"] += indexed
    report = {"at": at, "checked": dict(checked), "repaired": dict(Counter(r["action"] for r in repairs)),
              "repairs": repairs}
    repo.mutate_status(STATUS, lambda status: fold_report(status, report, RECENT_KEPT))
    log.info("reconcile pass", checked=dict(checked), repaired=report["repaired"])
    return report


def _falling_back(repo, before: datetime, since: datetime) -> Iterator[dict]:
    """Failed runs that should have moved on to their next GPU shape (lifecycle queued `gpu_fallback`) and
    have not changed since `before`: the command was lost. Runs made before `since` are not looked at (the
    scan is newest first and failed runs pile up; a fallback is queued minutes after a run fails)."""
    for run in _scan(repo, {"status": runs.FAILED}, lambda r: bool(
            r.get("updated_at") and r["updated_at"] <= before and gpu_fallback.next_config(r) is not None),
            stop=lambda r: r["created_at"] < since):
        yield run


def _send(publisher, command: dict) -> bool:
    warning = publish_command(publisher, command)  # the one way commands go out
    return warning is None


def _submitting(run, repo, effects: ports.Effects, pipelines, store) -> tuple[Optional[str], dict]:
    # The claim is older than the lease: its holder is gone. The submitter takes the claim over; the job
    # id is the attempt's, so a job the dead holder did create is found, not made twice.
    queueing.publish_submit(effects.publisher, run)
    return "submit_requeued", {}


def _read_and_apply(run, repo, effects: ports.Effects, store, pipelines) -> tuple[Optional[str], dict]:
    job_id = labels.job_id_for(run["id"], run["attempt"])
    try:
        job = pipelines.get_job(job_id)
    except NotFound:
        return None, {"job_id": job_id, "job": "missing"}
    outcome = progress.apply_job(run["id"], job, repo, store, run.get("gcs_artifacts_path") or "", effects)
    return outcome, {"job_id": job_id, "job_state": job.state}


def _running(run, repo, effects: ports.Effects, pipelines, store) -> tuple[Optional[str], dict]:
    outcome, details = _read_and_apply(run, repo, effects, store, pipelines)
    if details.get("job") == "missing":
        log.error("running run without its pipeline job", run_id=run["id"], job_id=details["job_id"])
        return None, details
    return ("job_state_applied", details) if outcome in ("updated", "failed") else (None, details)


def _cancelling(run, repo, effects: ports.Effects, pipelines, store) -> tuple[Optional[str], dict]:
    outcome, details = _read_and_apply(run, repo, effects, store, pipelines)
    current = repo.get_run(run["id"])
    if current is not None and current["status"] != runs.CANCELLING:
        return "job_state_applied", details
    if _send(effects.publisher, {"command": messages.CANCEL, "run_id": run["id"], "attempt": run["attempt"]}):
        return "cancel_resent", details
    return None, details


def _purge(run, repo, store, at: datetime) -> Optional[dict]:
    """A deleted run past its grace period: claimed (no restore after this), its artifacts removed, then its
    document and history. None when it was restored meanwhile (or is gone already)."""
    try:
        current = run_writes.write(repo, run["id"], lambda doc: runs.start_purge(doc, at)) or repo.get_run(run["id"])
    except NotFound:
        return None
    if current is None or not current.get("purging"):
        return None  # a purge interrupted earlier is resumed: it is still purging
    removed = store.delete_tree(current["gcs_artifacts_path"]) if current.get("gcs_artifacts_path") else 0

    def still_purging(doc: dict) -> None:
        if not doc.get("purging"):
            raise Conflict(f"run {run['id']} is not being purged")

    try:
        repo.delete_run(run["id"], still_purging)
    except NotFound:
        pass  # another pass finished it
    return {"artifacts_removed": removed}


def empty_status() -> dict:
    return {"last_pass_at": None, "last_pass": None, "passes": 0, "totals": {}, "recent_repairs": []}


def fold_report(status: Optional[dict], report: dict, keep: int) -> dict:
    """The reconciler's status after one more pass (kept in one document, read by GET /api/reconciler)."""
    status = {**empty_status(), **(status or {})}
    totals = dict(status["totals"])
    for action, n in report["repaired"].items():
        totals[action] = totals.get(action, 0) + n
    return {"last_pass_at": report["at"], "passes": status["passes"] + 1, "totals": totals,
            "last_pass": {"checked": report["checked"], "repaired": report["repaired"]},
            "recent_repairs": (list(report["repairs"]) + list(status["recent_repairs"]))[:keep]}
