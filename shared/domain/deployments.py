"""A run's deployment, as pure transitions: requested (by hand or after training), its command marked
queued (shared/domain/claims.py), and what the run-commands consumer found recorded. The services that
request and carry it out: shared/services/actions/deploy.py, and for a staged deploy and its rollback
actions/canary_watch.py and actions/rollback.py (the decisions: shared/domain/canary.py).

The status only moves forward: deploying → canary (a staged deploy, watched) → deployed, and canary or
deployed → rolling_back → rolled_back; `failed` ends a deploy. The one step back: a rollback the cloud
refuses leaves the model serving as it was (deployed), with the rollback's error on the deployment.
Every traffic change is appended to the run's `endpoint_history`."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from shared.domain import canary, claims, runs
from shared.errors import Conflict, FieldError

DEPLOYING, DEPLOYED, DEPLOY_FAILED = "deploying", "deployed", "failed"
CANARY, ROLLING_BACK, ROLLED_BACK = "canary", "rolling_back", "rolled_back"
UNDEPLOYED = "undeployed"  # taken off its endpoint by hand (shared/services/actions/undeploy.py)
SERVING = (CANARY, DEPLOYED)  # the endpoint routes traffic to the run's model
UNDER_WAY = (DEPLOYING, CANARY, ROLLING_BACK)  # a command is (or will be) at work on it
AUTOMATIC_DEPLOYER = "trainyard (deployment_config)"
AUTOMATIC_WATCHER = "trainyard (canary watch)"
AUTOMATIC_ACTIONS = ("deploy_new", "deploy_existing")
_TARGET = ("endpoint_id", "endpoint_name", "traffic_split", "model_resource_name", "model_version_id", "canary")


def deploys_after_training(doc: dict) -> bool:
    """A completed (blessed) run whose model was registered and whose deployment_config asks for a deploy."""
    return (doc.get("status") == runs.COMPLETED and doc.get("is_blessed") is not False and bool(doc.get("vertex_model_resource_name"))
            and (doc.get("deployment_config") or {}).get("action") in AUTOMATIC_ACTIONS)


def target(doc: dict, endpoint_id: Optional[str], endpoint_name: Optional[str], traffic_split: Optional[int],
           canary: Optional[dict] = None) -> dict:
    """Where the run's model goes: what the request names, else its deployment_config, else a new endpoint
    named after the run; staged (`canary`) as the request says, else as deployment_config does."""
    if endpoint_id and endpoint_name:
        raise FieldError.one("endpoint_name", "give endpoint_id (an existing endpoint) or endpoint_name (a new one), "
                                              "not both")
    config = doc.get("deployment_config") or {}
    if not endpoint_id and not endpoint_name and config.get("action") == "deploy_existing":
        endpoint_id = config.get("existing_endpoint_id")
    if not endpoint_id:
        endpoint_name = endpoint_name or (config.get("endpoint_name") if config.get("action") == "deploy_new" else None) \
            or doc["name"]
    # deployment_config's canary stages a deploy to its own endpoint; a request naming another target stages
    # only if it asks to
    from_config = config.get("action") == "deploy_existing" and endpoint_id == config.get("existing_endpoint_id")
    staged = canary if canary is not None else (config.get("canary") if from_config else None)
    if staged:
        if not endpoint_id:
            raise FieldError.one("canary", "a canary shares an existing endpoint with the model serving there: "
                                           "give endpoint_id (a new endpoint serves only this model)")
        if traffic_split and traffic_split != staged["percent"]:
            raise FieldError.one("traffic_split", f"a canary deploy takes canary.percent ({staged['percent']}) of "
                                                  f"the traffic; leave traffic_split out")
        traffic_split = staged["percent"]
    traffic = traffic_split or (config.get("traffic_split") if endpoint_id else None) or 100
    if not endpoint_id and traffic != 100:
        raise FieldError.one("traffic_split", "a new endpoint serves only this model: its traffic split is 100")
    return {"endpoint_id": endpoint_id, "endpoint_name": None if endpoint_id else endpoint_name,
            "traffic_split": traffic, "model_resource_name": doc.get("vertex_model_resource_name"),
            "model_version_id": doc.get("vertex_model_version"), "canary": dict(staged) if staged else None}


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
    if current.get("status") in (DEPLOYING, *SERVING) and all(_same(current, wanted, k) for k in _TARGET):
        return None
    if current.get("status") in UNDER_WAY:
        doing = {DEPLOYING: "being deployed to", CANARY: "a canary on", ROLLING_BACK: "being rolled back on"}
        raise Conflict(f"run {doc['id']} is {doing[current['status']]} "
                       f"{current.get('endpoint_id') or current.get('endpoint_name')}; wait for it to finish"
                       + (" or roll it back" if current["status"] == CANARY else ""))
    deployment = {**wanted, "id": deployment_id, "status": DEPLOYING, "requested_by": by, "requested_at": at,
                  "automatic": automatic, "operation": None, "error": None}
    return {**doc, "deployment": deployment, "deployment_status": DEPLOYING}


def _same(current: dict, wanted: dict, key: str) -> bool:
    if key != "canary":
        return current.get(key) == wanted.get(key)
    settings = tuple(canary.CanaryConfig.model_fields)  # a running canary also carries its state
    return ({k: v for k, v in (current.get(key) or {}).items() if k in settings}
            == {k: v for k, v in (wanted.get(key) or {}).items() if k in settings})


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


def _history(doc: dict, entry: dict) -> list:
    return [*(doc.get("endpoint_history") or []), entry]


def deployed(doc: dict, deployment_id: str, result: dict, at: datetime) -> Optional[dict]:
    """The model serves: `canary` (watched from `at`) for a staged deploy, else `deployed`; the traffic
    change is recorded. `result`: endpoint_resource_name, deployed_model_id, traffic_split,
    previous_traffic_split, predict_url, console_url (the serving adapter's DeployResult)."""
    current = doc.get("deployment") or {}
    if current.get("id") != deployment_id or current.get("status") != DEPLOYING:
        return None
    staged = current.get("canary")
    status = CANARY if staged else DEPLOYED
    entry = canary.history_entry(at, current.get("requested_by") or AUTOMATIC_DEPLOYER,
                                 "canary_started" if staged else "deployed", result["endpoint_resource_name"],
                                 result["deployed_model_id"], result.get("previous_traffic_split"),
                                 result["traffic_split"],
                                 f"canary: {staged['percent']} % for {staged['watch_minutes']} min" if staged
                                 else f"deployed with {current.get('traffic_split')} % of the traffic")
    deployment = {**current, "status": status, "endpoint_resource_name": result["endpoint_resource_name"],
                  "deployed_model_id": result["deployed_model_id"], "traffic": result["traffic_split"],
                  "previous_traffic": result.get("previous_traffic_split") or {},
                  "predict_url": result["predict_url"], "console_url": result.get("console_url"), "deployed_at": at,
                  "canary": canary.start(staged, at) if staged else None}
    return {**doc, "deployment": deployment, "deployment_status": status, "is_deployed": True,
            "endpoint_resource_name": result["endpoint_resource_name"], "deployed_at": at,
            "endpoint_history": _history(doc, entry)}


def checked(doc: dict, deployment_id: str, seen: dict, at: datetime) -> Optional[dict]:
    """A canary check that found no reason to act yet (its figures kept on the canary)."""
    current = doc.get("deployment") or {}
    if current.get("id") != deployment_id or current.get("status") != CANARY:
        return None
    watched = current["canary"]
    return {**doc, "deployment": {**current, "canary": {**watched, "last_check": {**seen, "at": at},
                                                        "checks": int(watched.get("checks") or 0) + 1}}}


def promoted(doc: dict, deployment_id: str, before: dict, after: dict, seen: dict, reason: str,
             at: datetime) -> Optional[dict]:
    """A clean watch: the canary's model takes all traffic."""
    current = doc.get("deployment") or {}
    if current.get("id") != deployment_id or current.get("status") != CANARY:
        return None
    entry = canary.history_entry(at, AUTOMATIC_WATCHER, "promoted", current.get("endpoint_resource_name"),
                                 current.get("deployed_model_id"), before, after, reason)
    watched = {**current["canary"], "status": canary.PROMOTED, "decided_at": at, "reason": reason,
               "last_check": {**seen, "at": at}}
    return {**doc, "deployment": {**current, "status": DEPLOYED, "traffic": after, "canary": watched},
            "deployment_status": DEPLOYED, "endpoint_history": _history(doc, entry)}


def request_rollback(doc: dict, by: str, reason: str, at: datetime, automatic: bool,
                     seen: Optional[dict] = None) -> Optional[dict]:
    """Traffic is to go back to the split before this deploy (by hand, or a canary's breach); None when a
    rollback is under way or done. Conflict when the run's model does not serve or has nothing to go back to."""
    current = doc.get("deployment") or {}
    if current.get("status") in (ROLLING_BACK, ROLLED_BACK):
        return None
    if current.get("status") not in SERVING:
        raise Conflict(f"run {doc['id']} has no model serving to roll back"
                       + (f" (its deployment is {current['status']})" if current.get("status") else ""))
    if not current.get("endpoint_id"):
        raise Conflict(f"run {doc['id']} serves on its own endpoint, with no earlier model to go back to")
    watched = current.get("canary")
    if watched and watched.get("status") == canary.WATCHING:
        watched = {**watched, "status": canary.BREACHED if automatic else canary.STOPPED, "decided_at": at,
                   "reason": reason, **({"last_check": {**seen, "at": at}} if seen else {})}
    rollback = {"requested_by": by, "requested_at": at, "reason": reason, "automatic": automatic,
                "from_status": current["status"], "error": None}
    return {**doc, "deployment": {**current, "status": ROLLING_BACK, "canary": watched, "rollback": rollback},
            "deployment_status": ROLLING_BACK}


def rolled_back(doc: dict, deployment_id: str, before: dict, after: dict, at: datetime) -> Optional[dict]:
    """Traffic went back: the run's model stays on the endpoint at 0 %."""
    current = doc.get("deployment") or {}
    if current.get("id") != deployment_id or current.get("status") != ROLLING_BACK:
        return None
    rollback = current["rollback"]
    entry = canary.history_entry(at, rollback["requested_by"], "rolled_back", current.get("endpoint_resource_name"),
                                 current.get("deployed_model_id"), before, after, rollback["reason"])
    return {**doc, "deployment": {**current, "status": ROLLED_BACK, "traffic": after,
                                  "rollback": {**rollback, "done_at": at}},
            "deployment_status": ROLLED_BACK, "is_deployed": False, "endpoint_history": _history(doc, entry)}


def rollback_failed(doc: dict, deployment_id: str, error: str, at: datetime) -> Optional[dict]:
    """The cloud refused the rollback: the model serves as before (the one step back), the error recorded."""
    current = doc.get("deployment") or {}
    if current.get("id") != deployment_id or current.get("status") != ROLLING_BACK:
        return None
    status = DEPLOYED  # a canary stopped by a refused rollback is not watched again: someone must look
    return {**doc, "deployment": {**current, "status": status,
                                  "rollback": {**current["rollback"], "error": error, "failed_at": at}},
            "deployment_status": status}


def endpoint_changed(doc: dict, change_id: str, entry: dict) -> Optional[dict]:
    """A change made by hand on an endpoint the run is deployed to (a traffic split, a model undeployed:
    shared/services/actions/endpoint_traffic.py, undeploy.py), recorded once in its history under `change_id`
    (a redelivery finds it there: None). The run's own model follows: its share, or off the endpoint."""
    history = doc.get("endpoint_history") or []
    if any(e.get("change_id") == change_id for e in history):
        return None
    out = {**doc, "endpoint_history": _history(doc, {**entry, "change_id": change_id})}
    current = doc.get("deployment") or {}
    model = current.get("deployed_model_id")
    if not model or current.get("endpoint_resource_name") != entry.get("endpoint") or \
            current.get("status") not in (*SERVING, ROLLED_BACK):
        return out
    if entry["action"] == "undeployed" and entry.get("deployed_model_id") == model:
        return {**out, "deployment": {**current, "status": UNDEPLOYED, "traffic": dict(entry["to"])},
                "deployment_status": UNDEPLOYED, "is_deployed": False}
    return {**out, "deployment": {**current, "traffic": dict(entry["to"])}}
