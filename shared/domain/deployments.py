"""A run's deployment, as pure transitions: requested (by hand or after training), its command marked
queued (shared/domain/claims.py), and what the run-commands consumer found recorded. The services that
request and carry it out: shared/services/actions/deploy.py."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from shared.domain import claims, runs
from shared.errors import Conflict, FieldError

DEPLOYING, DEPLOYED, DEPLOY_FAILED = "deploying", "deployed", "failed"
AUTOMATIC_DEPLOYER = "trainyard (deployment_config)"
AUTOMATIC_ACTIONS = ("deploy_new", "deploy_existing")
_TARGET = ("endpoint_id", "endpoint_name", "traffic_split", "model_resource_name", "model_version_id")


def deploys_after_training(doc: dict) -> bool:
    """A completed (blessed) run whose model was registered and whose deployment_config asks for a deploy."""
    return (doc.get("status") == runs.COMPLETED and doc.get("is_blessed") is not False and bool(doc.get("vertex_model_resource_name"))
            and (doc.get("deployment_config") or {}).get("action") in AUTOMATIC_ACTIONS)


def target(doc: dict, endpoint_id: Optional[str], endpoint_name: Optional[str], traffic_split: Optional[int]) -> dict:
    """Where the run's model goes: what the request names, else its deployment_config, else a new endpoint
    named after the run."""
    if endpoint_id and endpoint_name:
        raise FieldError.one("endpoint_name", "give endpoint_id (an existing endpoint) or endpoint_name (a new one), "
                                              "not both")
    config = doc.get("deployment_config") or {}
    if not endpoint_id and not endpoint_name and config.get("action") == "deploy_existing":
        endpoint_id = config.get("existing_endpoint_id")
    if not endpoint_id:
        endpoint_name = endpoint_name or (config.get("endpoint_name") if config.get("action") == "deploy_new" else None) \
            or doc["name"]
    traffic = traffic_split or (config.get("traffic_split") if endpoint_id else None) or 100
    if not endpoint_id and traffic != 100:
        raise FieldError.one("traffic_split", "a new endpoint serves only this model: its traffic split is 100")
    return {"endpoint_id": endpoint_id, "endpoint_name": None if endpoint_id else endpoint_name,
            "traffic_split": traffic, "model_resource_name": doc.get("vertex_model_resource_name"),
            "model_version_id": doc.get("vertex_model_version")}


def request(doc: dict, asked: dict, deployment_id: str, by: str, at: datetime, automatic: bool) -> Optional[dict]:
    """The run with a deployment under way to the `target` that `asked` (endpoint_id, endpoint_name,
    traffic_split) names; None when nothing changes (the same deployment is under way or done; after
    training: one was requested already, or none is asked for). Conflict when the run cannot be deployed now."""
    if automatic and (doc.get("deployment") or not deploys_after_training(doc)):
        return None
    registered = bool(doc.get("vertex_model_resource_name"))
    if doc["status"] == runs.NOT_BLESSED and not registered:
        raise Conflict(f"run {doc['id']} is not_blessed and its model is not registered; push it anyway first")
    if doc["status"] not in runs.DEPLOYABLE:
        raise Conflict(f"run {doc['id']} is {doc['status']}; only completed runs can be deployed")
    if not registered:
        raise Conflict(f"run {doc['id']} has no registered model to deploy")
    wanted = target(doc, **asked)
    current = doc.get("deployment") or {}
    if current.get("status") in (DEPLOYING, DEPLOYED) and all(current.get(k) == wanted.get(k) for k in _TARGET):
        return None
    if current.get("status") == DEPLOYING:
        raise Conflict(f"run {doc['id']} is being deployed to {current.get('endpoint_id') or current.get('endpoint_name')};"
                       f" wait for it to finish")
    deployment = {**wanted, "id": deployment_id, "status": DEPLOYING, "requested_by": by, "requested_at": at,
                  "automatic": automatic, "operation": None, "error": None}
    return {**doc, "deployment": deployment, "deployment_status": DEPLOYING}


def mark_queued(doc: dict, deployment_id: str, at: datetime) -> Optional[dict]:
    """The deployment's command went out (`queued_at`, done once); None for another deployment or a repeat."""
    current = doc.get("deployment") or {}
    queued = claims.done(current, at, done_at="queued_at") if current.get("id") == deployment_id else None
    return None if queued is None else {**doc, "deployment": queued}


def record(doc: dict, deployment_id: str, changes: dict, top: Optional[dict] = None) -> Optional[dict]:
    """What the deploy command found (`changes` on the deployment, `top` on the run); None when that
    deployment is no longer under way (superseded, finished or failed)."""
    current = doc.get("deployment") or {}
    if current.get("id") != deployment_id or current.get("status") != DEPLOYING:
        return None
    return {**doc, "deployment": {**current, **changes}, **(top or {})}
