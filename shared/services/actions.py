"""Run actions and run data (spec §7.2–7.3).

Actions follow the architecture's rule: the API checks the run's state, records the intent in the
run document in one transaction and publishes a command; the run-commands consumer does the slow
cloud work (cancel the job, deploy, register). Each action is allowed in some states (409 with the
reason otherwise) and a repeat is a no-op that returns the run as it is (re-queueing the command, so a
lost publish heals itself).
"""
from __future__ import annotations

import uuid
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import results, runs, structured_log as log, topics
from shared.errors import Conflict, FieldError, NotFound, PermanentError, TransientError
from shared.run_config import EXISTING_ENDPOINT_TRAFFIC, GpuConfig, RunSpec, TrainingParams
from shared.services import runs as run_service
from shared.validation import field_errors, parse

CANCEL, DEPLOY, PUSH_ANYWAY = "cancel", "deploy", "push_anyway"
DEPLOYING, DEPLOYED, DEPLOY_FAILED = "deploying", "deployed", "failed"
PUSHING, PUSHED, PUSH_FAILED = "pushing", "pushed", "failed"


def _outcome(run: dict, changed: bool, message: str) -> dict:
    return {"training_run": runs.public_view(run), "changed": changed, "message": message}


def _publish_command(publisher, payload: dict) -> Optional[str]:
    try:
        publisher.publish(topics.RUN_COMMANDS, payload, run_id=payload["run_id"], command=payload["command"])
        return None
    except TransientError as exc:  # the intent is recorded; repeating the action queues it again
        log.error("run-commands publish failed", run_id=payload["run_id"], error=str(exc))
        return f"queueing the {payload['command']} command failed ({exc}); repeat the request to queue it again"


def _mutate(repo, run_id: str, decide) -> tuple[dict, bool]:
    """decide(doc) → new doc (changed) or None (a no-op); may raise Conflict/FieldError. Returns (run, changed)."""
    updated = repo.mutate_run(run_id, decide)
    if updated is not None:
        return updated, True
    run = repo.get_run(run_id)
    if run is None:
        raise NotFound(f"training run {run_id}")
    return run, False


# --------------------------------------------------------------------------- cancel


def cancel_run(repo, publisher, run_id: str, identity: str) -> dict:
    def decide(doc):
        if doc["status"] in (runs.CANCELLING, runs.CANCELLED):
            return None
        if doc["status"] not in runs.CANCELLABLE:
            raise Conflict(f"run {run_id} is {doc['status']}; only pending, scheduled, submitting or running runs "
                           f"can be cancelled")
        return runs.request_cancel(doc, identity, runs.now())

    run, changed = _mutate(repo, run_id, decide)
    warning = None
    if run["status"] == runs.CANCELLING:  # the job is stopped by the consumer (re-queued on a repeat)
        warning = _publish_command(publisher, {"command": CANCEL, "run_id": run_id, "attempt": run["attempt"]})
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
    try:
        params = TrainingParams.model_validate(params).model_dump(mode="json")
    except ValidationError as exc:
        raise FieldError(field_errors(exc, "training_params")) from None
    gpu = dict(doc["gpu_config"])
    if ({"gpu_type", "gpu_count"} & set(body.gpu_config)) and "machine_type" not in body.gpu_config:
        gpu.pop("machine_type", None)  # re-derived for the new GPUs
    gpu.update(body.gpu_config)
    try:
        gpu = GpuConfig.model_validate(gpu).model_dump(mode="json")
    except ValidationError as exc:
        raise FieldError(field_errors(exc, "gpu_config")) from None
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

    run, changed = _mutate(repo, run_id, decide)
    known = len(run.setdefault("warnings", []))
    if run["status"] == runs.PENDING:  # queued (again): the submitter's claim makes a duplicate harmless
        run_service._queue_submit(publisher, run)
    message = f"attempt {run['attempt']} queued" if changed else f"attempt {run['attempt']} is already under way"
    return {**_outcome(run, changed, message), "warnings": run["warnings"][known:]}


# --------------------------------------------------------------------------- deploy


class DeployBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint_id: Optional[str] = Field(None, min_length=1, max_length=256,
                                       description="an existing endpoint (id or resource name) to add the model to")
    endpoint_name: Optional[str] = Field(None, min_length=1, max_length=128,
                                         description="display name of a new endpoint; defaults to the run name")
    traffic_split: Optional[int] = Field(None, ge=1, le=100, description="percent of traffic for this model")


def _deploy_target(doc: dict, body: DeployBody) -> dict:
    if body.endpoint_id and body.endpoint_name:
        raise FieldError.one("endpoint_name", "give endpoint_id (an existing endpoint) or endpoint_name (a new one), "
                                              "not both")
    config = doc.get("deployment_config") or {}
    endpoint_id, endpoint_name = body.endpoint_id, body.endpoint_name
    if not endpoint_id and not endpoint_name and config.get("action") == "deploy_existing":
        endpoint_id = config.get("existing_endpoint_id")
    if not endpoint_id:
        endpoint_name = endpoint_name or (config.get("endpoint_name") if config.get("action") == "deploy_new" else None) \
            or doc["name"]
    # An existing endpoint: the run's deploy_existing split, else the spec's gradual-rollout default.
    configured = config.get("traffic_split") if config.get("action") == "deploy_existing" else None
    traffic = body.traffic_split or ((configured or EXISTING_ENDPOINT_TRAFFIC) if endpoint_id else 100)
    if not endpoint_id and traffic != 100:
        raise FieldError.one("traffic_split", "a new endpoint serves only this model: its traffic split is 100")
    return {"endpoint_id": endpoint_id, "endpoint_name": None if endpoint_id else endpoint_name,
            "traffic_split": traffic, "model_resource_name": doc.get("vertex_model_resource_name"),
            "model_version_id": doc.get("vertex_model_version")}


def _same_target(a: dict, b: dict) -> bool:
    keys = ("endpoint_id", "endpoint_name", "traffic_split", "model_resource_name", "model_version_id")
    return all(a.get(k) == b.get(k) for k in keys)


AUTOMATIC_DEPLOYER = "trainyard (deployment_config)"
AUTOMATIC_ACTIONS = ("deploy_new", "deploy_existing")


def deploys_after_training(doc: dict) -> bool:
    """A completed (blessed) run whose model was registered and whose deployment_config asks for a deploy."""
    return (doc.get("status") == runs.COMPLETED and bool(doc.get("vertex_model_resource_name"))
            and (doc.get("deployment_config") or {}).get("action") in AUTOMATIC_ACTIONS)


def _request_deployment(repo, publisher, run_id: str, identity: str, request: DeployBody,
                        automatic: bool = False) -> tuple[dict, bool, Optional[str]]:
    """The one way a deployment is requested, by hand (deploy_run) or after training (deploy_after_training):
    check the run, record the deployment on it in one transaction, publish the `deploy` command.
    Returns (run, changed, warning): the warning says the command could not be queued."""
    def decide(doc):
        if automatic and (doc.get("deployment") or not deploys_after_training(doc)):
            return None  # already requested (by hand or by an earlier delivery), or nothing to deploy
        registered = bool(doc.get("vertex_model_resource_name"))
        if doc["status"] == runs.NOT_BLESSED and not registered:
            raise Conflict(f"run {run_id} is not_blessed and its model is not registered; push it anyway first")
        if doc["status"] not in (runs.COMPLETED, runs.NOT_BLESSED):
            raise Conflict(f"run {run_id} is {doc['status']}; only completed runs can be deployed")
        if not registered:
            raise Conflict(f"run {run_id} has no registered model to deploy")
        target = _deploy_target(doc, request)
        current = doc.get("deployment") or {}
        if current.get("status") in (DEPLOYING, DEPLOYED) and _same_target(current, target):
            return None
        if current.get("status") == DEPLOYING:
            raise Conflict(f"run {run_id} is being deployed to {current.get('endpoint_id') or current.get('endpoint_name')};"
                           f" wait for it to finish")
        new = dict(doc)
        new["deployment"] = {**target, "id": uuid.uuid4().hex[:12], "status": DEPLOYING, "requested_by": identity,
                             "requested_at": runs.now(), "automatic": automatic, "operation": None, "error": None}
        new["deployment_status"] = DEPLOYING
        return new

    run, changed = _mutate(repo, run_id, decide)
    deployment = run.get("deployment") or {}
    # Which deployment under way gets its command (again):
    # - by hand, every request re-queues it: a repeat heals a lost command (the consumer skips a second one);
    # - after training, only its own deployment and only until `queued_at` (kept on automatic deployments,
    #   whoever queued the command) records that the command went out.
    #   The intent is recorded (deploying) before the publish, so a failed publish leaves `deploying` without
    #   `queued_at`; the pipeline event is then redelivered (deploy_after_training raises) and the redelivery
    #   publishes the same deployment id again. A redelivery after a successful publish finds `queued_at`
    #   and sends nothing. Only a crash between the publish and the `queued_at` write sends the command twice,
    #   with the same deployment id: execute_deploy acts on the id once it is deploying and skips it after.
    wanted = deployment.get("status") == DEPLOYING and (
        not automatic or (deployment.get("automatic") and not deployment.get("queued_at")))
    warning = None
    if wanted:
        warning = _publish_command(publisher, {"command": DEPLOY, "run_id": run_id, "deployment_id": deployment["id"]})
        if warning is None and deployment.get("automatic") and not deployment.get("queued_at"):
            run = _mark_queued(repo, run_id, deployment["id"]) or run
    return run, changed, warning


def _mark_queued(repo, run_id: str, deployment_id: str) -> Optional[dict]:
    def mark(doc):
        current = doc.get("deployment") or {}
        if current.get("id") != deployment_id or current.get("queued_at"):
            return None
        return {**doc, "deployment": {**current, "queued_at": runs.now()}}
    return repo.mutate_run(run_id, mark)


def deploy_run(repo, publisher, run_id: str, identity: str, body: Any) -> dict:
    request = parse(DeployBody, body if body is not None else {})
    run, changed, warning = _request_deployment(repo, publisher, run_id, identity, request)
    deployment = run["deployment"]
    message = ("deploying" if changed else f"already {deployment['status']}") + \
        f" to {deployment.get('endpoint_id') or 'a new endpoint ' + repr(deployment.get('endpoint_name'))}"
    return {**_outcome(run, changed, message), "warnings": [warning] if warning else []}


def deploy_after_training(repo, publisher, run: dict) -> str:
    """Called by the pipeline-events consumer with a terminal run: a completed, registered run whose
    deployment_config says deploy_new / deploy_existing is deployed exactly as `POST …/deploy` with no body
    would (its endpoint and split from deployment_config), marked `automatic`, by AUTOMATIC_DEPLOYER.

    Idempotent: a deployment already on the run (by hand or automatic; deploying, deployed or failed) is
    left alone, except that an automatic one whose command was not queued yet is queued. A failed publish
    raises TransientError, so the event is redelivered and the redelivery queues it."""
    current = run.get("deployment") or {}
    pending_command = current.get("automatic") and current.get("status") == DEPLOYING and not current.get("queued_at")
    if not deploys_after_training(run) or (current and not pending_command):
        return "none"  # decided on the document in hand: most events cost no extra read
    run, _, warning = _request_deployment(repo, publisher, run["id"], AUTOMATIC_DEPLOYER, DeployBody(), automatic=True)
    if warning:
        raise TransientError(warning)
    deployment = run.get("deployment") or {}
    log.info("automatic deploy requested", run_id=run["id"], deployment_id=deployment.get("id"),
             status=deployment.get("status"), endpoint=deployment.get("endpoint_id") or deployment.get("endpoint_name"))
    return "deploy_requested"


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

    run, changed = _mutate(repo, run_id, decide)
    warning = None
    if run["push_anyway"]["status"] == PUSHING:
        warning = _publish_command(publisher, {"command": PUSH_ANYWAY, "run_id": run_id})
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
    found = sources.logs.read(run, runs.job_id_for(run_id, attempt), stage, page_size, args.get("page_token") or None)
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
    try:
        gpu = GpuConfig.model_validate({"gpu_type": args.get("gpu_type") or "NVIDIA_L4",
                                        "gpu_count": _int_arg(args, "gpu_count", 1, 1, 8), "preemptible": preemptible})
    except ValidationError as exc:
        raise FieldError(field_errors(exc)) from None
    region = (args.get("region") or settings.region).strip()
    return sources.gpu_quota.check(region, gpu.gpu_type, gpu.gpu_count, gpu.preemptible)


def quota_warning(sources, run: dict, settings) -> Optional[str]:
    """For a new run: a warning (never a refusal) when the GPU quota cannot cover it."""
    gpu = run.get("gpu_config") or {}
    try:
        check = sources.gpu_quota.check(settings.region, gpu["gpu_type"], gpu["gpu_count"], gpu.get("preemptible", True))
    except (TransientError, NotFound, PermissionError, KeyError) as exc:
        log.warning("gpu quota pre-flight failed", run_id=run.get("id"), error=str(exc))
        return None
    if check.get("sufficient") is False:
        return f"GPU quota: {check['message']}. The run is queued and will fail at Train unless quota is added."
    return None


# --------------------------------------------------------------------------- the run-commands consumer


class RunCommand(BaseModel):
    model_config = ConfigDict(extra="ignore")
    command: Literal["cancel", "deploy", "push_anyway"]
    run_id: str
    attempt: Optional[int] = None
    deployment_id: Optional[str] = None


def parse_command(payload) -> RunCommand:
    try:
        return RunCommand.model_validate(payload)
    except ValidationError as exc:
        raise ValueError(f"not a run command: {exc.errors(include_url=False)}") from None


def handle_command(command: RunCommand, repo, backend, store, serving) -> str:
    run = repo.get_run(command.run_id)
    if run is None:
        log.info("command for a run that no longer exists", run_id=command.run_id, command=command.command)
        return "skipped"
    if command.command == CANCEL:
        return execute_cancel(run, command, repo, backend, store, serving)
    if command.command == DEPLOY:
        return execute_deploy(run, command, repo, store, serving)
    return execute_push_anyway(run, repo, store, serving)


def execute_cancel(run: dict, command: RunCommand, repo, backend, store, serving) -> str:
    from shared.services import progress

    if run["status"] != runs.CANCELLING or (command.attempt and command.attempt != run["attempt"]):
        return "skipped"  # already ended (cancelled, or finished first) or an old attempt
    job_id = runs.job_id_for(run["id"], run["attempt"])
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
        progress.apply_job(run["id"], job, repo, store, run.get("gcs_artifacts_path") or "")
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

