"""Run intents (spec §7.2): cancel, retry, deploy, push anyway, delete and restore.

Each follows the architecture's rule: the API checks the run's state, records the intent in the run
document in one transaction and publishes a command; the run-commands consumer (shared/services/commands.py)
does the slow cloud work (cancel the job, deploy, register). Each intent is allowed in some states (409 with
the reason otherwise) and a repeat is a no-op that returns the run as it is (re-queueing the command, so a
lost publish heals itself).
"""
from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any, Iterable, Optional

from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.repository import Repository
from shared.contract.messages import CANCEL, PUSH_ANYWAY
from shared.domain import runs, teams
from shared.domain.teams import Caller
from shared.domain.run_config import GpuConfig, TrainingParams
from shared.errors import Conflict, FieldError, NotFound
from shared.services import access, intake, lifecycle, queueing, run_writes, spending
from shared.services.run_data import get_run
from shared.services.deployments import DeployBody, publish_command, request_deployment
from shared.validation import parse


def _outcome(run: dict, changed: bool, message: str) -> dict:
    return {"training_run": runs.public_view(run), "changed": changed, "message": message}


# --------------------------------------------------------------------------- cancel


def cancel_run(repo, effects: lifecycle.Effects, run_id: str, who: Caller) -> dict:
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


def _next_attempt(doc: dict, request: RetryBody, run_id: str, identity: str, at) -> Optional[dict]:
    """The run's next attempt (pending), or None when the retry was already made; 409/400 when it cannot be."""
    if request.attempt is not None and doc["attempt"] > request.attempt:
        return None  # that attempt was already retried
    if request.attempt is not None and request.attempt != doc["attempt"]:
        raise FieldError.one("attempt", f"run {run_id} is on attempt {doc['attempt']}, not {request.attempt}")
    if request.attempt is None and doc["status"] in runs.ACTIVE and doc["attempt"] > 1:
        return None  # a retry is already under way
    if doc["status"] not in runs.RETRYABLE:
        raise Conflict(f"run {run_id} is {doc['status']}; only failed or cancelled runs can be retried")
    params, gpu, changes = _retry_config(doc, request)
    return runs.prepare_retry(doc, identity, at, params, gpu, changes)


def retry_run(repo, effects: lifecycle.Effects, run_id: str, who: Caller, body: Any, settings=None, run_data=None) -> dict:
    """The next attempt, admitted by the spend guard as a new run is (reserved, awaiting approval above the
    team's per-run cap, or refused over the month's budget) and checked against the GPU quota when
    `run_data` is given."""
    access.run(repo, who, run_id, teams.TRAINER, "retrying a run")
    identity = who.email
    request = parse(RetryBody, body if body is not None else {})
    at = runs.now()
    first = _next_attempt(get_run(repo, run_id), request, run_id, identity, at)
    admitted = spending.admit(repo, first, run_id, settings, at) if first is not None else None

    def decide(doc):
        new = _next_attempt(doc, request, run_id, identity, at)
        if new is None:
            return None
        if admitted is None or new["attempt"] != admitted["attempt"]:
            raise Conflict(f"run {run_id} changed while it was being retried; retry it again")
        new.pop("approval", None)  # an earlier attempt's approval does not carry over
        return {**new, "status": admitted["status"], **{k: admitted[k] for k in ("spend", "approval") if k in admitted}}

    run, changed = lifecycle.move_or_read(repo, run_id, decide, effects)
    if admitted is not None and (run.get("spend") or {}).get("key") != (admitted.get("spend") or {}).get("key"):
        spending.release(repo, admitted, at)  # this request's reservation did not become the run's
    known = len(run.setdefault("warnings", []))
    if changed and run_data is not None and settings is not None:  # the GPU quota pre-flight, as at create
        warning = intake.quota_warning(run_data, run, settings)
        if warning:
            run["warnings"].append(warning)
    if run["status"] == runs.PENDING:  # queued (again): the submitter's claim makes a duplicate harmless
        queueing.queue_submit(effects.publisher, run)
    message = f"attempt {run['attempt']} queued" if changed else f"attempt {run['attempt']} is already under way"
    return {**_outcome(run, changed, message), "warnings": run["warnings"][known:]}


# --------------------------------------------------------------------------- approve / reject (above the team's per-run cap)


def approve_run(repo: Repository, effects: lifecycle.Effects, run_id: str, identity: str, settings=None) -> dict:
    """awaiting_approval → pending and queued, reserved on the ledger (the month's budget still applies)."""
    run = get_run(repo, run_id)
    if run["status"] != runs.AWAITING_APPROVAL:
        if run.get("approval", {}).get("approved_by"):
            return run  # a repeat
        raise Conflict(f"run {run_id} is {run['status']}; only a run awaiting approval can be approved")
    at = runs.now()
    admitted = spending.admit(repo, run, run_id, settings, at, approval_needed=False)

    def decide(doc):
        if doc["status"] != runs.AWAITING_APPROVAL:
            return None
        return {**doc, "status": runs.PENDING, "spend": admitted.get("spend"),
                "approval": {**doc.get("approval", {}), "approved_by": identity, "approved_at": at}}

    moved, changed = lifecycle.move_or_read(repo, run_id, decide, effects)
    if not changed and moved.get("spend", {}).get("key") != (admitted.get("spend") or {}).get("key"):
        spending.release(repo, admitted, at)
    if moved["status"] == runs.PENDING:
        queueing.queue_submit(effects.publisher, moved)
    return moved


def reject_run(repo: Repository, effects: lifecycle.Effects, run_id: str, identity: str, body) -> dict:
    """awaiting_approval → cancelled, with the admin's reason on the run."""
    body = body if body is not None else {}
    reason = body.get("reason", "") if isinstance(body, dict) else None
    if not isinstance(reason, str) or len(reason) > 2000 or (isinstance(body, dict) and set(body) - {"reason"}):
        raise FieldError.one("reason", "an optional string of at most 2000 characters (the only field)")
    at = runs.now()

    def decide(doc):
        if doc["status"] == runs.CANCELLED and doc.get("approval", {}).get("rejected_by"):
            return None
        if doc["status"] != runs.AWAITING_APPROVAL:
            raise Conflict(f"run {run_id} is {doc['status']}; only a run awaiting approval can be rejected")
        new = runs.cancel_waiting(doc, identity, at, f"rejected by {identity}" + (f": {reason}" if reason else ""))
        new["approval"] = {**copy.deepcopy(doc.get("approval", {})), "rejected_by": identity, "rejected_at": at,
                           "reason_given": reason}
        return new

    run, _ = lifecycle.move_or_read(repo, run_id, decide, effects)
    return run


# --------------------------------------------------------------------------- deploy


def deploy_run(repo, effects: lifecycle.Effects, run_id: str, who: Caller, body: Any, declared: Iterable[teams.Team]) -> dict:
    """Deploy the run's model: deployer on its team, to a new endpoint or an existing one the team owns
    (checked again by the run-commands consumer that deploys, commands.execute_deploy)."""
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
    return {**_outcome(run, changed, message), "warnings": [warning] if warning else []}



# --------------------------------------------------------------------------- push anyway


def push_anyway(repo, effects: lifecycle.Effects, run_id: str, who: Caller, declared: Iterable[teams.Team]) -> dict:
    """Register a not-blessed model anyway: deployer on its team, under a model name the team owns."""
    doc = access.run(repo, who, run_id, teams.DEPLOYER, "pushing a run anyway")
    access.check_model_name(access.declared_team(declared, doc.get("team")), doc["name"])
    identity = who.email

    def decide(doc):
        return runs.request_push_anyway(doc, identity, runs.now())

    run, changed = run_writes.write_or_read(repo, run_id, decide)
    warning = None
    if run["push_anyway"]["status"] == runs.PUSHING:
        warning = publish_command(effects.publisher, {"command": PUSH_ANYWAY, "run_id": run_id})
    message = "registering the model anyway" if changed else f"already {run['push_anyway']['status']}"
    return {**_outcome(run, changed, message), "warnings": [warning] if warning else []}


# --------------------------------------------------------------------------- delete


def delete_run(repo: Repository, run_id: str, who: Caller, grace_days: float) -> dict:
    """A soft delete: the run leaves every list and read at once; its document and artifacts stay until the
    grace period ends (the reconciler then purges both: shared/services/reconcile.py), and
    POST …/restore brings it back until then. Refused while its model is deploying, deployed or pushing.
    Needs admin on the run's team."""
    access.run(repo, who, run_id, teams.ADMIN, "deleting a run", deleted_ok=True)
    identity = who.email

    def decide(doc):
        if runs.is_deleted(doc):
            return None  # a repeat: the first delete's grace period stands
        why = runs.delete_refusal(doc)
        if why:
            raise Conflict(f"run {run_id} cannot be deleted: {why}")
        at = runs.now()
        return runs.soft_delete(doc, identity, at, at + timedelta(days=grace_days))

    updated = run_writes.write(repo, run_id, decide)
    run = updated or repo.get_run(run_id)
    if run is None:
        raise NotFound(f"training run {run_id}")
    until = run["purge_after"]
    return {"deleted": run_id, "changed": updated is not None, "deleted_at": run["deleted_at"],
            "deleted_by": run["deleted_by"], "purge_after": until,
            "message": f"deleted; restorable until {until.isoformat()} (POST /api/training-runs/{run_id}/restore)"}


def restore_run(repo: Repository, run_id: str, who: Caller) -> dict:
    """A deleted run back as it was, within its grace period; a repeat (or a run never deleted) changes nothing.
    Needs admin on the run's team, as the delete did."""
    access.run(repo, who, run_id, teams.ADMIN, "restoring a run", deleted_ok=True)
    identity = who.email
    def decide(doc):
        if doc.get("purging"):
            raise Conflict(f"run {run_id} cannot be restored: its grace period is over and it is being purged")
        return runs.restore(doc, identity, runs.now())

    updated = run_writes.write(repo, run_id, decide)  # NotFound once purged
    run = updated or repo.get_run(run_id)
    if run is None:
        raise NotFound(f"training run {run_id}")
    return _outcome(run, updated is not None, "restored" if updated is not None else "not deleted; nothing to restore")
