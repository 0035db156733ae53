"""Deployments of a run's registered model: the one way a deployment is requested, by hand
(`POST …/deploy`, shared/services/intents.py) or after training (shared/services/lifecycle.py), and
the run-commands helpers both share. The run-commands consumer carries the deployment out
(commands.execute_deploy)."""
from __future__ import annotations

import uuid
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

from shared.domain import deployments, runs
from shared import log
from shared.contract import topics
from shared.contract.messages import DEPLOY
from shared.errors import NotFound, TransientError
from shared.services import run_writes

DEPLOYING, DEPLOYED, DEPLOY_FAILED = deployments.DEPLOYING, deployments.DEPLOYED, deployments.DEPLOY_FAILED
AUTOMATIC_DEPLOYER, deploys_after_training = deployments.AUTOMATIC_DEPLOYER, deployments.deploys_after_training


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


def request_deployment(repo, publisher, run_id: str, identity: str, request: DeployBody,
                        automatic: bool = False) -> tuple[dict, bool, Optional[str]]:
    """The one way a deployment is requested, by hand (deploy_run) or after training (deploy_after_training):
    check the run, record the deployment on it in one transaction, publish the `deploy` command.
    Returns (run, changed, warning): the warning says the command could not be queued."""
    def decide(doc):
        return deployments.request(doc, request.model_dump(), uuid.uuid4().hex[:12], identity, runs.now(), automatic)

    run, changed = run_writes.write_or_read(repo, run_id, decide)
    current = run.get("deployment") or {}
    # Which deployment under way gets its command (again):
    # - by hand, every request re-queues it: a repeat heals a lost command (the consumer skips a second one);
    # - after training, only its own deployment and only until `queued_at` (kept on automatic deployments,
    #   whoever queued the command) records that the command went out.
    #   The intent is recorded (deploying) before the publish, so a failed publish leaves `deploying` without
    #   `queued_at`; the pipeline event is then redelivered (deploy_after_training raises) and the redelivery
    #   publishes the same deployment id again. A redelivery after a successful publish finds `queued_at`
    #   and sends nothing. Only a crash between the publish and the `queued_at` write sends the command twice,
    #   with the same deployment id: execute_deploy acts on the id once it is deploying and skips it after.
    wanted = current.get("status") == DEPLOYING and (
        not automatic or (current.get("automatic") and not current.get("queued_at")))
    warning = None
    if wanted:
        warning = publish_command(publisher, {"command": DEPLOY, "run_id": run_id, "deployment_id": current["id"]})
        if warning is None and current.get("automatic") and not current.get("queued_at"):
            run = run_writes.write(repo, run_id, lambda doc: deployments.mark_queued(doc, current["id"], runs.now())) or run
    return run, changed, warning


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
