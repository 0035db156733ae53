"""Retry a failed or cancelled run: its next attempt, admitted by the spend guard as a new run is, and
queued for submission. No consumer half: the submitter takes it from there."""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

from shared.domain import gpu_fallback, runs, teams, triggers
from shared.domain.run_config import GpuConfig, TrainingParams
from shared.domain.teams import Caller
from shared.errors import Conflict, FieldError
from shared.services import access, intake, lifecycle, ports, queueing, spending
from shared.services.actions import outcome
from shared.services.run_data import get_run
from shared.validation import parse


class RetryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attempt: Optional[int] = Field(None, ge=1, description="the attempt being retried; a repeat for it is a no-op")
    # What the dashboard's retry form changes (gpu_type, gpu_count, machine_count, preemptible; epochs,
    # batch_size) and anything else of the two, validated as at create: a 400 names the field.
    gpu_config: dict[str, Any] = Field(default_factory=dict, description=(
        "changes to the run's gpu_config (GpuConfig's fields); a new gpu_type or gpu_count without a machine_type "
        "gets that shape's default machine"))
    training_params: dict[str, Any] = Field(default_factory=dict, description=(
        "changes to the run's training_params (TrainingParams' fields: epochs, batch_size, …)"))


def _retry_config(doc: dict, body: RetryBody) -> tuple[dict, dict, dict]:
    params = {**doc["training_params"], **body.training_params}
    params = parse(TrainingParams, params, "training_params").model_dump(mode="json")
    gpu = dict(doc["gpu_config"])
    moved = any(k in body.gpu_config and body.gpu_config[k] != gpu.get(k) for k in ("gpu_type", "gpu_count"))
    if moved and "machine_type" not in body.gpu_config:  # the same GPUs restated (the form sends all) keep theirs
        gpu.pop("machine_type", None)  # re-derived for the new GPUs
    gpu.update(body.gpu_config)
    gpu = parse(GpuConfig, gpu, "gpu_config").model_dump(mode="json")
    changes = {}
    for name, model, old, new in (("training_params", TrainingParams, doc["training_params"], params),
                                  ("gpu_config", GpuConfig, doc["gpu_config"], gpu)):
        # a field the stored run lacks had its default (a run stored before the field existed): not a change
        defaults = model().model_dump(mode="json")
        diff = {k: v for k, v in new.items() if old.get(k, defaults.get(k)) != v}
        if diff:
            changes[name] = diff
    return params, gpu, changes


def changes_text(changes: dict) -> str:
    """`gpu_config.gpu_type NVIDIA_TESLA_A100, training_params.epochs 7`: what a retry changed, for its message."""
    return ", ".join(f"{group}.{name} {value}" for group, fields in changes.items() for name, value in fields.items())


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
    new = runs.prepare_retry(doc, identity, at, params, gpu, changes)
    return {**new, "trigger": triggers.retried(doc, identity, at, new["attempt"], gpu_fallback.AUTOMATIC_RETRIER)}


def request(repo, effects: ports.Effects, run_id: str, who: Caller, body: Any, settings=None, run_data=None) -> dict:
    """The next attempt, admitted by the spend guard as a new run is (reserved, awaiting approval above the
    team's per-run cap, or refused over the month's budget) and checked against the GPU quota when
    `run_data` is given."""
    access.run(repo, who, run_id, teams.TRAINER, "retrying a run")
    return start(repo, effects, run_id, who.email, parse(RetryBody, body if body is not None else {}), settings,
                 run_data)


def start(repo, effects: ports.Effects, run_id: str, identity: str, request: RetryBody, settings=None,
          run_data=None) -> dict:
    """The next attempt on behalf of `identity` (a user whose role was checked, or Trainyard itself: a GPU
    fallback, shared/services/actions/gpu_fallback.py). Raises OverBudget when the spend guard refuses it."""
    at = runs.now()
    first = _next_attempt(get_run(repo, run_id), request, run_id, identity, at)
    admitted = spending.admit(repo, first, run_id, settings, at) if first is not None else None

    run, changed = lifecycle.move_or_read(repo, run_id, lambda doc: runs.admit_attempt(
        doc, _next_attempt(doc, request, run_id, identity, at), admitted), effects)
    if admitted is not None and (run.get("spend") or {}).get("key") != (admitted.get("spend") or {}).get("key"):
        spending.release(repo, admitted, at)  # this request's reservation did not become the run's
    known = len(run.setdefault("warnings", []))
    if changed and run_data is not None and settings is not None:  # the GPU quota pre-flight, as at create
        warning = intake.quota_warning(run_data, run, settings)
        if warning:
            run["warnings"].append(warning)
    if run["status"] == runs.PENDING:  # queued (again): the submitter's claim makes a duplicate harmless
        queueing.queue_submit(effects.publisher, run)
    changes = (run.get("last_retry") or {}).get("changes") or {}
    message = f"attempt {run['attempt']} is already under way"
    if changed:
        message = f"attempt {run['attempt']} queued" + (f" with {changes_text(changes)}" if changes else "")
    return {**outcome(run, changed, message), "changes": changes, "warnings": run["warnings"][known:]}
