"""Run actions and run data (spec §7.2–7.3).

Actions follow the architecture's rule: the API checks the run's state, records the intent in the
run document in one transaction and publishes a command; the run-commands consumer does the slow
cloud work (cancel the job, deploy, register). Each action is allowed in some states (409 with the
reason otherwise) and a repeat is a no-op that returns the run as it is (re-queueing the command, so a
lost publish heals itself).
"""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

from shared import results, runs, structured_log as log
from shared.contract import labels
from shared.contract.messages import CANCEL, DEPLOY, NOTIFY, PUSH_ANYWAY, RunCommand
from shared.errors import Conflict, FieldError, NotFound, PermanentError, TransientError
from shared.run_config import MAX_MACHINES, GpuConfig, RunSpec, TrainingParams
from shared.services import lifecycle, queueing, runs as run_service
from shared.services.deployments import (DEPLOY_FAILED, DEPLOYED, DEPLOYING, DeployBody, publish_command,
                                         request_deployment)
from shared.validation import parse

PUSHING, PUSHED, PUSH_FAILED = "pushing", "pushed", "failed"


def _outcome(run: dict, changed: bool, message: str) -> dict:
    return {"training_run": runs.public_view(run), "changed": changed, "message": message}


# --------------------------------------------------------------------------- cancel


def cancel_run(repo, publisher, run_id: str, identity: str) -> dict:
    def decide(doc):
        if doc["status"] in (runs.CANCELLING, runs.CANCELLED):
            return None
        if doc["status"] not in runs.CANCELLABLE:
            raise Conflict(f"run {run_id} is {doc['status']}; only pending, scheduled, submitting or running runs "
                           f"can be cancelled")
        return runs.request_cancel(doc, identity, runs.now())

    run, changed = lifecycle.move_or_read(repo, run_id, decide, publisher)  # cancelled at once: its schedule settles
    warning = None
    if run["status"] == runs.CANCELLING:  # the job is stopped by the consumer (re-queued on a repeat)
        warning = publish_command(publisher, {"command": CANCEL, "run_id": run_id, "attempt": run["attempt"]})
    if run["status"] == runs.CANCELLED:
        message = "cancelled" if changed else "already cancelled"
    else:
        message = "cancelling: the pipeline job is being stopped" if changed else "already being cancelled"
    return {**_outcome(run, changed, message), "warnings": [warning] if warning else []}


# --------------------------------------------------------------------------- retry


class RetryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attempt: Optional[int] = Field(None, ge=1, description="the attempt being retried; a repeat for it is a no-op")
    gpu_config: dict[str, Any] = Field(default_factory=dict)
    training_params: dict[str, Any] = Field(default_factory=dict)


def _retry_config(doc: dict, body: RetryBody) -> tuple[dict, dict, dict]:
    params = {**doc["training_params"], **body.training_params}
    params = parse(TrainingParams, params, "training_params").model_dump(mode="json")
    gpu = dict(doc["gpu_config"])
    if ({"gpu_type", "gpu_count"} & set(body.gpu_config)) and "machine_type" not in body.gpu_config:
        gpu.pop("machine_type", None)  # re-derived for the new GPUs
    gpu.update(body.gpu_config)
    gpu = parse(GpuConfig, gpu, "gpu_config").model_dump(mode="json")
    changes = {}
    for name, old, new in (("training_params", doc["training_params"], params), ("gpu_config", doc["gpu_config"], gpu)):
        diff = {k: v for k, v in new.items() if old.get(k) != v}
        if diff:
            changes[name] = diff
    return params, gpu, changes


def retry_run(repo, publisher, run_id: str, identity: str, body: Any) -> dict:
    request = parse(RetryBody, body if body is not None else {})

    def decide(doc):
        if request.attempt is not None and doc["attempt"] > request.attempt:
            return None  # that attempt was already retried
        if request.attempt is not None and request.attempt != doc["attempt"]:
            raise FieldError.one("attempt", f"run {run_id} is on attempt {doc['attempt']}, not {request.attempt}")
        if request.attempt is None and doc["status"] in runs.ACTIVE and doc["attempt"] > 1:
            return None  # a retry is already under way
        if doc["status"] not in runs.RETRYABLE:
            raise Conflict(f"run {run_id} is {doc['status']}; only failed or cancelled runs can be retried")
        params, gpu, changes = _retry_config(doc, request)
        return runs.prepare_retry(doc, identity, runs.now(), params, gpu, changes)

    run, changed = lifecycle.move_or_read(repo, run_id, decide, publisher)
    known = len(run.setdefault("warnings", []))
    if run["status"] == runs.PENDING:  # queued (again): the submitter's claim makes a duplicate harmless
        queueing.queue_submit(publisher, run)
    message = f"attempt {run['attempt']} queued" if changed else f"attempt {run['attempt']} is already under way"
    return {**_outcome(run, changed, message), "warnings": run["warnings"][known:]}


# --------------------------------------------------------------------------- deploy


def deploy_run(repo, publisher, run_id: str, identity: str, body: Any) -> dict:
    request = parse(DeployBody, body if body is not None else {})
    run, changed, warning = request_deployment(repo, publisher, run_id, identity, request)
    deployment = run["deployment"]
    message = ("deploying" if changed else f"already {deployment['status']}") + \
        f" to {deployment.get('endpoint_id') or 'a new endpoint ' + repr(deployment.get('endpoint_name'))}"
    return {**_outcome(run, changed, message), "warnings": [warning] if warning else []}



# --------------------------------------------------------------------------- push anyway


def push_anyway(repo, publisher, run_id: str, identity: str) -> dict:
    def decide(doc):
        state = (doc.get("push_anyway") or {}).get("status")
        if doc["status"] == runs.NOT_BLESSED and state in (PUSHING, PUSHED):
            return None
        if doc["status"] != runs.NOT_BLESSED:
            reason = "its model was registered when it completed" if doc["status"] == runs.COMPLETED else \
                "only not_blessed runs can be pushed anyway"
            raise Conflict(f"run {run_id} is {doc['status']}; {reason}")
        new = dict(doc)
        new["push_anyway"] = {"status": PUSHING, "requested_by": identity, "requested_at": runs.now(), "error": None}
        return new

    run, changed = lifecycle.move_or_read(repo, run_id, decide, publisher)
    warning = None
    if run["push_anyway"]["status"] == PUSHING:
        warning = publish_command(publisher, {"command": PUSH_ANYWAY, "run_id": run_id})
    message = "registering the model anyway" if changed else f"already {run['push_anyway']['status']}"
    return {**_outcome(run, changed, message), "warnings": [warning] if warning else []}


# --------------------------------------------------------------------------- run data


def _int_arg(args: dict, name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(args.get(name) or default)
    except ValueError:
        raise FieldError.one(name, "must be a whole number") from None
    if not low <= value <= high:
        raise FieldError.one(name, f"must be between {low} and {high}")
    return value


def _attempt_arg(run: dict, args: dict) -> int:
    return _int_arg(args, "attempt", run["attempt"], 1, run["attempt"])


def run_logs(repo, sources, run_id: str, args: dict) -> dict:
    from shared.run_data_sources import MAX_PAGE_SIZE

    run = run_service.get_run(repo, run_id)
    attempt = _attempt_arg(run, args)
    stage = args.get("stage") or None
    if stage and stage not in runs.STAGES:
        raise FieldError.one("stage", f"must be one of {', '.join(runs.STAGES)}")
    page_size = _int_arg(args, "page_size", 100, 1, MAX_PAGE_SIZE)
    found = sources.logs.read(run, labels.job_id_for(run_id, attempt), stage, page_size, args.get("page_token") or None)
    return {"run_id": run_id, "attempt": attempt, "stage": stage, "page_size": page_size, **found}


def training_history(repo, store, run_id: str, args: dict) -> dict:
    run = run_service.get_run(repo, run_id)
    attempt = _attempt_arg(run, args)
    epochs, source = repo.list_epochs(run_id, attempt), "history"
    best = None
    if not epochs and attempt == run["attempt"] and run.get("gcs_artifacts_path"):
        # What the Trainer wrote at the end, when the per-epoch messages did not arrive.
        text = store.read_text(results.join(run["gcs_artifacts_path"], results.TRAINING_METRICS_FILE))
        if text:
            metrics = results.TrainingMetrics.model_validate_json(text)
            epochs = [e.model_dump(mode="json") for e in metrics.epochs]
            best, source = metrics.best_epoch, "training_metrics"
    keys = ("epoch", "total_epochs", "loss", "val_loss", "learning_rate", "metrics", "timestamp")
    return {"run_id": run_id, "attempt": attempt, "source": source, "best_epoch": best,
            "epochs": [{k: e.get(k) for k in keys} for e in epochs]}


ARTIFACT_LAYOUT = {
    "config": results.CONFIG_FILE, "pipeline_job": results.PIPELINE_JOB_FILE,
    "saved_model": results.SAVED_MODEL_DIR, "query_model": results.QUERY_MODEL_DIR,
    "candidate_model": results.CANDIDATE_MODEL_DIR, "transform_graph": results.TRANSFORM_DIR,
    "vocabularies": results.VOCABULARIES_DIR, "checkpoints": results.CHECKPOINTS_DIR,
    "training_metrics": results.TRAINING_METRICS_FILE, "evaluation": results.EVALUATION_FILE,
    "registry_entry": results.REGISTRY_FILE,
}


def _browser_url(uri: Optional[str]) -> Optional[str]:
    if uri and uri.startswith("gs://"):
        return "https://console.cloud.google.com/storage/browser/" + uri.removeprefix("gs://")
    return None


def run_artifacts(repo, run_id: str, settings) -> dict:
    run = run_service.get_run(repo, run_id)
    base = run.get("gcs_artifacts_path") or ""
    uris = {name: results.join(base, relative) for name, relative in ARTIFACT_LAYOUT.items()} if base else {}
    uris.update({k: v for k, v in (run.get("artifacts") or {}).items() if v})  # what the pipeline reported wins
    artifacts = {name: {"uri": uri, "console_url": _browser_url(uri)} for name, uri in uris.items()}
    model = run.get("vertex_model_resource_name")
    registry = None
    if model:
        console = None
        if model.startswith("projects/"):
            parts = model.split("/")
            console = (f"https://console.cloud.google.com/vertex-ai/models/locations/{parts[3]}/models/{parts[5]}/"
                       f"versions/{run.get('vertex_model_version')}?project={parts[1]}")
        registry = {"model_name": run.get("vertex_model_name"), "model_resource_name": model,
                    "model_version": run.get("vertex_model_version"), "pushed_anyway": bool(run.get("pushed_anyway")),
                    "console_url": console}
    deployment = run.get("deployment") or {}
    endpoint = None
    if deployment:
        endpoint = {k: deployment.get(k) for k in ("status", "endpoint_resource_name", "deployed_model_id",
                                                   "traffic_split", "predict_url", "console_url", "deployed_at")}
    return {"run_id": run_id, "artifacts_uri": base or None, "console_url": _browser_url(base),
            "artifacts": artifacts, "registry": registry, "endpoint": endpoint}


def run_errors(repo, run_id: str) -> dict:
    run = run_service.get_run(repo, run_id)
    keys = ("attempt", "status", "error_stage", "error_message", "error_details", "cancelled_at_stage",
            "cancelled_at_epoch", "cancelled_by", "ended_at")
    attempts = {a["attempt"]: {k: a.get(k) for k in keys} for a in run.get("attempts", [])}
    current = attempts.setdefault(run["attempt"], {"attempt": run["attempt"]})
    current.update({"status": run["status"], "error_stage": run.get("error_stage") or None,
                    "error_message": run.get("error_message") or None, "error_details": run.get("error_details") or {}})
    actions = {name: {k: (run.get(name) or {}).get(k) for k in ("status", "error")}
               for name in ("deployment", "push_anyway") if (run.get(name) or {}).get("error")}
    return {"run_id": run_id, "status": run["status"], "error_stage": run.get("error_stage") or None,
            "error_message": run.get("error_message") or None, "error_details": run.get("error_details") or {},
            "attempts": [attempts[n] for n in sorted(attempts)], "action_errors": actions}


def gpu_availability(sources, args: dict, settings) -> dict:
    preemptible = str(args.get("preemptible", "true")).lower() not in ("false", "0", "no")
    gpu = parse(GpuConfig, {"gpu_type": args.get("gpu_type") or "NVIDIA_L4",
                            "gpu_count": _int_arg(args, "gpu_count", 1, 1, 8), "preemptible": preemptible,
                            "machine_count": _int_arg(args, "machine_count", 1, 1, MAX_MACHINES)})
    region = (args.get("region") or settings.region).strip()
    return sources.gpu_quota.check(region, gpu.gpu_type, gpu.gpu_count * gpu.machine_count, gpu.preemptible)


# --------------------------------------------------------------------------- the run-commands consumer


def handle_command(command: RunCommand, repo, backend, store, serving, notifier=None, publisher=None) -> str:
    if command.command == NOTIFY:  # shared/services/notify.py: webhooks and topics, at most once
        from shared.services import notify

        return notify.deliver(repo, notifier, command.run_id, command.attempt or 1, command.event or "",
                              command.schedule_id)
    run = repo.get_run(command.run_id)
    if run is None:
        log.info("command for a run that no longer exists", run_id=command.run_id, command=command.command)
        return "skipped"
    if command.command == CANCEL:
        return execute_cancel(run, command, repo, backend, store, serving, publisher)
    if command.command == DEPLOY:
        return execute_deploy(run, command, repo, store, serving)
    return execute_push_anyway(run, repo, store, serving)


def execute_cancel(run: dict, command: RunCommand, repo, backend, store, serving, publisher=None) -> str:
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
        progress.apply_job(run["id"], job, repo, store, run.get("gcs_artifacts_path") or "", publisher)
        still_running = [t.task_name for t in job.tasks if t.state in ("RUNNING", "PENDING", "CANCELLING")]
        if still_running:
            log.warning("cancelled job reports tasks still running", run_id=run["id"], tasks=still_running)
        return "cancelled"
    return "cancel_requested"


def _registry_entry(store, run: dict) -> Optional[results.RegistryEntry]:
    text = store.read_text(results.join(run.get("gcs_artifacts_path") or "", results.REGISTRY_FILE))
    return results.RegistryEntry.model_validate_json(text) if text else None


def execute_deploy(run: dict, command: RunCommand, repo, store, serving) -> str:
    from shared.serving import DeployRequest

    deployment = run.get("deployment") or {}
    if deployment.get("id") != command.deployment_id or deployment.get("status") != DEPLOYING:
        return "skipped"  # superseded, finished or failed already

    def update(changes: dict, top: Optional[dict] = None):
        def apply(doc):
            current = doc.get("deployment") or {}
            if current.get("id") != command.deployment_id or current.get("status") != DEPLOYING:
                return None
            new = dict(doc)
            new["deployment"] = {**current, **changes}
            new.update(top or {})
            return new
        return repo.mutate_run(run["id"], apply)

    try:
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


def execute_push_anyway(run: dict, repo, store, serving) -> str:
    if run["status"] != runs.NOT_BLESSED or (run.get("push_anyway") or {}).get("status") != PUSHING:
        return "skipped"

    def update(changes: dict, top: Optional[dict] = None):
        def apply(doc):
            if (doc.get("push_anyway") or {}).get("status") != PUSHING:
                return None
            new = dict(doc)
            new["push_anyway"] = {**doc["push_anyway"], **changes}
            new.update(top or {})
            return new
        return repo.mutate_run(run["id"], apply)

    base = run.get("gcs_artifacts_path") or ""
    try:
        text = store.read_text(results.join(base, results.CONFIG_FILE)) if base else None
        if not text:
            raise PermanentError(f"the run has no {results.CONFIG_FILE} under {base!r}", stage="Push")
        spec = RunSpec.model_validate_json(text)
        entry = serving.registrar.register(spec, results.join(base, results.SAVED_MODEL_DIR))
    except PermanentError as exc:
        update({"status": PUSH_FAILED, "error": str(exc)})
        return "failed"
    entry = entry.model_copy(update={"pushed_anyway": True})
    store.write_text(results.join(base, results.REGISTRY_FILE), entry.model_dump_json(indent=2))
    update({"status": PUSHED, "pushed_at": runs.now(), "model_resource_name": entry.model_resource_name,
            "model_version_id": entry.model_version_id},
           {"pushed_anyway": True, "vertex_model_name": entry.model_display_name,
            "vertex_model_resource_name": entry.model_resource_name, "vertex_model_version": entry.model_version_id})
    log.info("model registered anyway", run_id=run["id"], model=entry.model_resource_name)
    return "pushed"

