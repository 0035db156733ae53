"""Deployments of a run's registered model: the one way a deployment is requested, by hand
(`POST …/deploy`, shared/services/intents.py) or after training (shared/services/lifecycle.py), and
the run-commands helpers both share. The run-commands consumer carries the deployment out
(commands.execute_deploy)."""
from __future__ import annotations

import uuid
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

from shared.domain import runs
from shared import log
from shared.contract import topics
from shared.contract.messages import DEPLOY
from shared.errors import Conflict, FieldError, NotFound, TransientError
from shared.services import run_writes

DEPLOYING, DEPLOYED, DEPLOY_FAILED = "deploying", "deployed", "failed"


def publish_command(publisher, payload: dict) -> Optional[str]:
    try:
        publisher.publish(topics.RUN_COMMANDS, payload, run_id=payload["run_id"], command=payload["command"])
        return None
    except TransientError as exc:  # the intent is recorded; repeating the action queues it again
        log.error("run-commands publish failed", run_id=payload["run_id"], error=str(exc))
        return f"queueing the {payload['command']} command failed ({exc}); repeat the request to queue it again"


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
    traffic = body.traffic_split or (config.get("traffic_split") if endpoint_id else None) or 100
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


def request_deployment(repo, publisher, run_id: str, identity: str, request: DeployBody,
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
        if doc["status"] not in runs.DEPLOYABLE:
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

    run, changed = run_writes.write_or_read(repo, run_id, decide)
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
        warning = publish_command(publisher, {"command": DEPLOY, "run_id": run_id, "deployment_id": deployment["id"]})
        if warning is None and deployment.get("automatic") and not deployment.get("queued_at"):
            run = _mark_queued(repo, run_id, deployment["id"]) or run
    return run, changed, warning


def _mark_queued(repo, run_id: str, deployment_id: str) -> Optional[dict]:
    def mark(doc):
        current = doc.get("deployment") or {}
        if current.get("id") != deployment_id or current.get("queued_at"):
            return None
        return {**doc, "deployment": {**current, "queued_at": runs.now()}}
    return run_writes.write(repo, run_id, mark)


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
    try:
        run, _, warning = request_deployment(repo, publisher, run["id"], AUTOMATIC_DEPLOYER, DeployBody(), automatic=True)
    except NotFound:  # deleted since it completed (a redelivered event): a deleted run takes no action
        log.info("automatic deploy skipped: the run was deleted", run_id=run["id"])
        return "none"
    if warning:
        raise TransientError(warning)
    deployment = run.get("deployment") or {}
    log.info("automatic deploy requested", run_id=run["id"], deployment_id=deployment.get("id"),
             status=deployment.get("status"), endpoint=deployment.get("endpoint_id") or deployment.get("endpoint_name"))
    return "deploy_requested"
