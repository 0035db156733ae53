"""The run-commands consumer: the slow cloud work behind an intent (shared/services/intents.py) — stop
a cancelled run's pipeline job and training jobs, deploy a registered model, register a not-blessed model
anyway — and notifications (shared/services/notify.py). Each command re-reads the run and does nothing
unless the run still asks for it, so redeliveries and stale commands are harmless."""
from __future__ import annotations

from typing import Iterable, Optional

from shared import log
from shared.contract import labels, results
from shared.contract.messages import CANCEL, DEPLOY, NOTIFY, RunCommand
from shared.domain import deployments, runs, teams
from shared.domain.run_config import RunSpec
from shared.errors import FieldError, Forbidden, NotFound, PermanentError, TransientError
from shared.services import access, lifecycle, run_writes
from shared.domain.deployments import DEPLOY_FAILED, DEPLOYED, DEPLOYING


def handle_command(command: RunCommand, repo, backend, store, serving, notifier=None, *,
                   effects: lifecycle.Effects, declared: Iterable[teams.Team]) -> str:
    """`declared`: the deployment's teams, whose model names and endpoints a deploy or a push-anyway is
    checked against again here (the API checked them when it was asked; this catches a command that
    did not come through it, or a team whose declaration changed since)."""
    if command.command == NOTIFY:  # shared/services/notify.py: webhooks and topics, at most once
        from shared.services import notify

        return notify.deliver(repo, notifier, command.run_id, command.attempt or 1, command.event or "",
                              command.schedule_id)
    run = repo.get_run(command.run_id)
    if run is None:
        log.info("command for a run that no longer exists", run_id=command.run_id, command=command.command)
        return "skipped"
    if command.command == CANCEL:
        return execute_cancel(run, command, repo, backend, store, serving, effects)
    if command.command == DEPLOY:
        return execute_deploy(run, command, repo, store, serving, declared)
    return execute_push_anyway(run, repo, store, serving, declared)


def execute_cancel(run: dict, command: RunCommand, repo, backend, store, serving, effects: lifecycle.Effects) -> str:
    from shared.services import progress

    if run["status"] != runs.CANCELLING or (command.attempt and command.attempt != run["attempt"]):
        return "skipped"  # already ended (cancelled, or finished first) or an old attempt
    job_id = labels.job_id_for(run["id"], run["attempt"])
    try:
        backend.cancel_job(job_id)
    except NotFound:
        if not run.get("vertex_pipeline_job_name"):
            # Cancelled while submitting: the submitter has not created the job yet. Retry shortly.
            raise TransientError(f"job {job_id} is not created yet; the cancel will be retried") from None
    stopped = serving.trainer_jobs.cancel_for_run(run["id"])
    if stopped:
        log.info("cancelled the run's training jobs", run_id=run["id"], jobs=stopped)
    try:
        job = backend.get_job(job_id)
    except NotFound:
        return "cancel_requested"
    if job.terminal:  # fold it in now; the job's own event would do the same later
        progress.apply_job(run["id"], job, repo, store, run.get("gcs_artifacts_path") or "", effects)
        still_running = [t.task_name for t in job.tasks if t.state in ("RUNNING", "PENDING", "CANCELLING")]
        if still_running:
            log.warning("cancelled job reports tasks still running", run_id=run["id"], tasks=still_running)
        return "cancelled"
    return "cancel_requested"


def _registry_entry(store, run: dict) -> Optional[results.RegistryEntry]:
    text = store.read_text(results.join(run.get("gcs_artifacts_path") or "", results.REGISTRY_FILE))
    return results.RegistryEntry.model_validate_json(text) if text else None


def execute_deploy(run: dict, command: RunCommand, repo, store, serving, declared: Iterable[teams.Team] = ()) -> str:
    from shared.adapters.serving import DeployRequest

    deployment = run.get("deployment") or {}
    if deployment.get("id") != command.deployment_id or deployment.get("status") != DEPLOYING:
        return "skipped"  # superseded, finished or failed already

    def update(changes: dict, top: Optional[dict] = None):
        return run_writes.write(repo, run["id"], lambda doc: deployments.record(doc, command.deployment_id, changes, top))

    try:
        _owned(declared, run, lambda team: access.check_endpoint(team, deployment.get("endpoint_id"), "endpoint_id"))
        entry = _registry_entry(store, run)
        request = DeployRequest(
            run_id=run["id"], run_name=run["name"], model_resource_name=deployment["model_resource_name"],
            model_version_id=str(deployment["model_version_id"]),
            serving_model_uri=entry.serving_model_uri if entry else results.join(run["gcs_artifacts_path"],
                                                                               results.SAVED_MODEL_DIR),
            endpoint_id=deployment.get("endpoint_id"), endpoint_display_name=deployment.get("endpoint_name") or run["name"],
            traffic_percent=int(deployment["traffic_split"]), machine_type=serving.machine_type)
        result = serving.endpoints.deploy(request, started=deployment.get("operation"),
                                          on_started=lambda operation: update({"operation": operation}))
    except PermanentError as exc:
        update({"status": DEPLOY_FAILED, "error": str(exc), "failed_at": runs.now()}, {"deployment_status": DEPLOY_FAILED})
        log.error("deployment failed", run_id=run["id"], error=str(exc))
        return "failed"
    at = runs.now()
    update({"status": DEPLOYED, "endpoint_resource_name": result.endpoint_resource_name,
            "deployed_model_id": result.deployed_model_id, "traffic": result.traffic_split,
            "predict_url": result.predict_url, "console_url": result.console_url, "deployed_at": at},
           {"deployment_status": DEPLOYED, "is_deployed": True, "endpoint_resource_name": result.endpoint_resource_name,
            "deployed_at": at})
    log.info("model deployed", run_id=run["id"], endpoint=result.endpoint_resource_name)
    return "deployed"


def _owned(declared, run: dict, check) -> None:
    """Defence in depth: the run's team must still own what the command touches; a refusal fails the
    action with its reason (PermanentError), as any other reason the cloud gives."""
    try:
        check(access.declared_team(declared, run.get("team")))
    except (Forbidden, FieldError) as exc:
        raise PermanentError(f"refused: {exc}") from None


def execute_push_anyway(run: dict, repo, store, serving, declared: Iterable[teams.Team] = ()) -> str:
    if run["status"] != runs.NOT_BLESSED or (run.get("push_anyway") or {}).get("status") != runs.PUSHING:
        return "skipped"

    def update(changes: dict, top: Optional[dict] = None):
        return run_writes.write(repo, run["id"], lambda doc: runs.record_push(doc, changes, top))

    base = run.get("gcs_artifacts_path") or ""
    try:
        _owned(declared, run, lambda team: access.check_model_name(team, run["name"]))
        text = store.read_text(results.join(base, results.CONFIG_FILE)) if base else None
        if not text:
            raise PermanentError(f"the run has no {results.CONFIG_FILE} under {base!r}", stage="Push")
        spec = RunSpec.model_validate_json(text)
        entry = serving.registrar.register(spec, results.join(base, results.SAVED_MODEL_DIR))
    except PermanentError as exc:
        update({"status": runs.PUSH_FAILED, "error": str(exc)})
        return "failed"
    entry = entry.model_copy(update={"pushed_anyway": True})
    store.write_text(results.join(base, results.REGISTRY_FILE), entry.model_dump_json(indent=2))
    update({"status": runs.PUSHED, "pushed_at": runs.now(), "model_resource_name": entry.model_resource_name,
            "model_version_id": entry.model_version_id},
           {"pushed_anyway": True, "vertex_model_name": entry.model_display_name,
            "vertex_model_resource_name": entry.model_resource_name, "vertex_model_version": entry.model_version_id})
    log.info("model registered anyway", run_id=run["id"], model=entry.model_resource_name)
    return "pushed"
