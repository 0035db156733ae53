"""Deploy a run's registered model: requested by hand (`POST …/deploy`, `request`) or after training
(`after_training`, from shared/services/lifecycle.after_change) — both through `request_deployment`, the one
way a deployment is recorded and its `deploy` command queued — and carried out by the run-commands consumer
(`execute`)."""
from __future__ import annotations

import uuid
from typing import Any, Iterable, Optional

from pydantic import BaseModel, ConfigDict, Field

from shared import log
from shared.contract import results
from shared.contract.messages import DEPLOY, RunCommand
from shared.domain import deployments, runs, teams
from shared.domain.canary import CanaryConfig
from shared.domain.deployments import AUTOMATIC_DEPLOYER, DEPLOY_FAILED, DEPLOYING, deploys_after_training
from shared.domain.teams import Caller
from shared.errors import NotFound, PermanentError, TransientError
from shared.services import access, ports, run_writes
from shared.services.actions import Consumer, outcome, owned, publish_command, run_for
from shared.validation import parse


class DeployBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint_id: Optional[str] = Field(None, min_length=1, max_length=256,
                                       description="an existing endpoint (id or resource name) to add the model to")
    endpoint_name: Optional[str] = Field(None, min_length=1, max_length=128,
                                         description="display name of a new endpoint; defaults to the run name")
    traffic_split: Optional[int] = Field(None, ge=1, le=100, description="percent of traffic for this model")
    canary: Optional[CanaryConfig] = Field(None, description="stage the deploy: canary.percent of an existing "
                                                             "endpoint's traffic, watched, then 100 % or rolled back")


def request_deployment(repo, publisher, run_id: str, identity: str, request: DeployBody,
                        automatic: bool = False) -> tuple[dict, bool, Optional[str]]:
    """The one way a deployment is requested, by hand (`request`) or after training (`after_training`):
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
    #   `queued_at`; the pipeline event is then redelivered (after_training raises) and the redelivery
    #   publishes the same deployment id again. A redelivery after a successful publish finds `queued_at`
    #   and sends nothing. Only a crash between the publish and the `queued_at` write sends the command twice,
    #   with the same deployment id: `execute` acts on the id once it is deploying and skips it after.
    wanted = current.get("status") == DEPLOYING and (
        not automatic or (current.get("automatic") and not current.get("queued_at")))
    warning = None
    if wanted:
        warning = publish_command(publisher, {"command": DEPLOY, "run_id": run_id, "deployment_id": current["id"]})
        if warning is None and current.get("automatic") and not current.get("queued_at"):
            run = run_writes.write(repo, run_id, lambda doc: deployments.mark_queued(doc, current["id"], runs.now())) or run
    return run, changed, warning


def after_training(repo, publisher, run: dict) -> str:
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


def request(repo, effects: ports.Effects, run_id: str, who: Caller, body: Any, declared: Iterable[teams.Team]) -> dict:
    """Deploy the run's model: deployer on its team, to a new endpoint or an existing one the team owns
    (checked again when it is carried out, `execute`)."""
    request = parse(DeployBody, body if body is not None else {})
    doc = access.run(repo, who, run_id, teams.DEPLOYER, "deploying a run")
    config = doc.get("deployment_config") or {}
    endpoint, field = request.endpoint_id, "endpoint_id"
    if not endpoint and not request.endpoint_name and config.get("action") == "deploy_existing":
        endpoint, field = config.get("existing_endpoint_id"), "deployment_config.existing_endpoint_id"
    access.check_endpoint(access.declared_team(declared, doc.get("team")), endpoint, field)
    run, changed, warning = request_deployment(repo, effects.publisher, run_id, who.email, request)
    deployment = run["deployment"]
    message = ("deploying" if changed else f"already {deployment['status']}") + \
        f" to {deployment.get('endpoint_id') or 'a new endpoint ' + repr(deployment.get('endpoint_name'))}"
    return {**outcome(run, changed, message), "warnings": [warning] if warning else []}


def serving_model_uri(store, run: dict) -> str:
    """The SavedModel the run registered (the Pusher's entry), else the one its Trainer exported."""
    text = store.read_text(results.join(run.get("gcs_artifacts_path") or "", results.REGISTRY_FILE))
    entry = results.RegistryEntry.model_validate_json(text) if text else None
    return entry.serving_model_uri if entry else results.join(run["gcs_artifacts_path"], results.SAVED_MODEL_DIR)


def execute(command: RunCommand, consumer: Consumer) -> str:
    from shared.adapters.serving import DeployRequest  # the run-commands consumer's only: the API never loads it

    run = run_for(command, consumer)
    deployment = (run or {}).get("deployment") or {}
    if run is None or deployment.get("id") != command.deployment_id or deployment.get("status") != DEPLOYING:
        return "skipped"  # gone, superseded, finished or failed already
    repo, store, serving = consumer.repo, consumer.store, consumer.serving

    def update(changes: dict, top: Optional[dict] = None):
        return run_writes.write(repo, run["id"], lambda doc: deployments.record(doc, command.deployment_id, changes, top))

    try:
        owned(consumer.declared, run, lambda team: access.check_endpoint(team, deployment.get("endpoint_id"), "endpoint_id"))
        request = DeployRequest(
            run_id=run["id"], run_name=run["name"], model_resource_name=deployment["model_resource_name"],
            model_version_id=str(deployment["model_version_id"]),
            serving_model_uri=serving_model_uri(store, run),
            endpoint_id=deployment.get("endpoint_id"), endpoint_display_name=deployment.get("endpoint_name") or run["name"],
            traffic_percent=int(deployment["traffic_split"]), machine_type=serving.machine_type)
        result = serving.endpoints.deploy(request, started=deployment.get("operation"),
                                          on_started=lambda operation: update({"operation": operation}))
    except PermanentError as exc:
        update({"status": DEPLOY_FAILED, "error": str(exc), "failed_at": runs.now()}, {"deployment_status": DEPLOY_FAILED})
        log.error("deployment failed", run_id=run["id"], error=str(exc))
        return "failed"
    served = {"endpoint_resource_name": result.endpoint_resource_name, "deployed_model_id": result.deployed_model_id,
              "traffic_split": result.traffic_split, "previous_traffic_split": result.previous_traffic_split,
              "predict_url": result.predict_url, "console_url": result.console_url}
    done = run_writes.write(repo, run["id"], lambda doc: deployments.deployed(doc, command.deployment_id, served,
                                                                              runs.now()))
    status = ((done or {}).get("deployment") or {}).get("status", "deployed")
    log.info("model deployed", run_id=run["id"], endpoint=result.endpoint_resource_name, status=status)
    return status
