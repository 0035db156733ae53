"""The training-run domain: statuses, stages, and the forward-only rules every consumer applies.

A run document is a plain dict (what Firestore stores). These functions take a document and an
observation (a job snapshot, an epoch, a submit outcome) and return the new document, or None when
the observation changes nothing — a late, repeated or stale event never moves a run backwards.
"""
from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from shared.contract.labels import parse_job_id
from shared.contract.nodes import STAGES, stage_for_task
from shared.contract.pipeline_jobs import JobSnapshot, TaskSnapshot
from shared.domain import claims, gpu_fallback, model_kinds, webhook_addresses
from shared.errors import Conflict, TransientError

PENDING, SCHEDULED, SUBMITTING, RUNNING = "pending", "scheduled", "submitting", "running"
COMPLETED, FAILED, CANCELLED, NOT_BLESSED = "completed", "failed", "cancelled", "not_blessed"
# A cancel was asked for and the job is being stopped; the job's own CANCELLED state ends it.
CANCELLING = "cancelling"
# The state of a not_blessed run's "push anyway" (its `push_anyway.status`), not a run status.
PUSHING, PUSHED, PUSH_FAILED = "pushing", "pushed", "failed"
# Saved from the wizard without submitting (spec §4 "Save as Draft"); POST …/submit makes it pending.
DRAFT = "draft"
# Above its team's per-run cap (GPUs or money): waits for a team admin's approve (→ pending) or reject
# (→ cancelled); shared/services/spending.py.
AWAITING_APPROVAL = "awaiting_approval"
STATUSES = (DRAFT, AWAITING_APPROVAL, PENDING, SCHEDULED, SUBMITTING, RUNNING, CANCELLING, COMPLETED, FAILED, CANCELLED, NOT_BLESSED)
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED, NOT_BLESSED})
# cancelling ranks above running so a late "running" event never undoes a cancel request.
_STATUS_RANK = {DRAFT: -1, AWAITING_APPROVAL: -1, PENDING: 0, SCHEDULED: 0, SUBMITTING: 1, RUNNING: 2, CANCELLING: 3,
                **{s: 4 for s in TERMINAL}}

# Share of the progress bar each stage stands for (Train dominates; it advances per epoch).
STAGE_WEIGHTS = {"Compile": 3, "Examples": 10, "Stats": 5, "Schema": 2, "Transform": 10, "Train": 60, "Evaluate": 7, "Push": 3}

STAGE_PENDING, STAGE_RUNNING, STAGE_COMPLETED = "pending", "running", "completed"
STAGE_CACHED, STAGE_FAILED, STAGE_CANCELLED, STAGE_SKIPPED = "cached", "failed", "cancelled", "skipped"
_STAGE_RANK = {STAGE_PENDING: 0, STAGE_RUNNING: 1, STAGE_COMPLETED: 2, STAGE_CACHED: 2, STAGE_FAILED: 2,
               STAGE_CANCELLED: 2, STAGE_SKIPPED: 2}
_STAGE_DONE = frozenset({STAGE_COMPLETED, STAGE_CACHED, STAGE_SKIPPED})

# Vertex task state → stage status. SKIPPED is how Vertex reports a cache hit.
TASK_STATE_TO_STAGE = {
    "PENDING": STAGE_PENDING, "NOT_TRIGGERED": STAGE_PENDING, "STATE_UNSPECIFIED": STAGE_PENDING,
    "RUNNING": STAGE_RUNNING, "CANCEL_PENDING": STAGE_RUNNING, "CANCELLING": STAGE_RUNNING,
    "SUCCEEDED": STAGE_COMPLETED, "SKIPPED": STAGE_CACHED, "FAILED": STAGE_FAILED, "CANCELLED": STAGE_CANCELLED,
}

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")


def now() -> datetime:
    return datetime.now(timezone.utc)


def is_terminal(status: str) -> bool:
    return status in TERMINAL


def moves(before: dict, after: dict) -> bool:
    """Whether a change moves the run: its status or its attempt. Everything that follows a change
    (shared/services/lifecycle.after_change) follows from a move."""
    return before.get("status") != after.get("status") or before.get("attempt") != after.get("attempt")


def initial_stages() -> list[dict]:
    return [{"name": name, "status": STAGE_PENDING, "duration_seconds": None, "started_at": None,
             "completed_at": None} for name in STAGES]


def format_duration(seconds: Optional[float]) -> Optional[str]:
    if seconds is None:
        return None
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def gate_lifts(gate: dict) -> list[str]:
    """A run's lift over each baseline its Evaluator scored (`evaluation_results`), with the lift the gate
    required: most-popular (predict-the-mean for an error metric), then EASE. A required EASE lift that was
    not held, as EASE was not scored, says why. The CLI and the notifications show these words."""
    def lift(name: str, percent: float, required: Optional[float]) -> str:
        return f"{percent:+.1f}% over {name}" + (f" (required ≥ {required:g}%)" if required is not None else "")

    words = []
    if gate.get("lift_percent") is not None:
        words.append(lift("predict-the-mean" if model_kinds.lower_is_better(gate.get("threshold_metric") or "")
                          else "most-popular", gate["lift_percent"], gate.get("required_lift_percent")))
    if gate.get("lift_over_ease_percent") is not None:
        words.append(lift("EASE", gate["lift_over_ease_percent"], gate.get("required_lift_over_ease_percent")))
    elif gate.get("required_lift_over_ease_percent") is not None and gate.get("ease_skipped_reason"):
        words.append(f"EASE not scored, its lift not held: {gate['ease_skipped_reason']}")
    words.extend(champion_words(gate))
    return words


def champion_words(gate: dict) -> list[str]:
    """The champion the run was held to (its figure, what it needed, where it serves), or why it was not."""
    if gate.get("champion_value") is not None:
        tolerance = gate.get("champion_tolerance") or 0.0
        lower = model_kinds.lower_is_better(gate.get("threshold_metric") or "")
        factor = 1 + tolerance if lower else 1 - tolerance
        required = gate.get("champion_required_value")
        required = gate["champion_value"] * factor if required is None else required
        return [f"champion v{gate.get('champion_version')} ({gate.get('champion_source')}) {gate['champion_value']:.4g}, "
                f"required {'≤' if lower else '≥'} {required:.4g} (× {factor:g})"]
    if gate.get("champion_error"):
        return [f"champion not scored, the threshold alone decided: {gate['champion_error']}"]
    return []


# --------------------------------------------------------------------------- progress


def progress_percent(stages: list[dict], current_epoch: Optional[int], total_epochs: Optional[int]) -> int:
    done = 0.0
    for stage in stages:
        weight = STAGE_WEIGHTS[stage["name"]]
        if stage["status"] in _STAGE_DONE:
            done += weight
        elif stage["name"] == "Train" and stage["status"] == STAGE_RUNNING and current_epoch and total_epochs:
            done += weight * min(current_epoch, total_epochs) / total_epochs
    return int(min(100, done))


def current_stage(stages: list[dict]) -> Optional[str]:
    running = [s["name"] for s in stages if s["status"] == STAGE_RUNNING]
    if running:
        return running[-1]
    for stage in stages:
        if stage["status"] == STAGE_PENDING:
            return stage["name"]
    return None


def _refresh_progress(doc: dict) -> None:
    # A function of the stages alone (never of the order events came in), so redeliveries agree.
    if doc["status"] in (COMPLETED, NOT_BLESSED):
        doc["current_stage"] = None
    elif doc["status"] == FAILED:
        doc["current_stage"] = doc.get("error_stage") or None
    elif doc["status"] == CANCELLED:
        doc["current_stage"] = doc.get("cancelled_at_stage")
    else:
        doc["current_stage"] = current_stage(doc["stage_details"])
    percent = progress_percent(doc["stage_details"], doc.get("current_epoch"), doc.get("total_epochs"))
    if doc["status"] in (COMPLETED, NOT_BLESSED):
        percent = 100
    doc["progress_percent"] = max(doc.get("progress_percent") or 0, percent)


def _set_stage(doc: dict, name: str, status: str, started: Optional[datetime] = None,
               ended: Optional[datetime] = None) -> None:
    """Move one stage forward (never back) and keep its timing."""
    stage = next(s for s in doc["stage_details"] if s["name"] == name)
    if _STAGE_RANK[status] < _STAGE_RANK[stage["status"]]:
        return
    if _STAGE_RANK[status] == _STAGE_RANK[stage["status"]] and status != stage["status"]:
        return  # already terminal in another way: the first word stands
    stage["status"] = status
    if started and not stage.get("started_at"):
        stage["started_at"] = started
    if ended and _STAGE_RANK[status] == 2:
        stage["completed_at"] = stage.get("completed_at") or ended
    if stage.get("started_at") and stage.get("completed_at"):
        stage["duration_seconds"] = round((stage["completed_at"] - stage["started_at"]).total_seconds(), 3)
    stage["duration"] = format_duration(stage.get("duration_seconds"))


def _advance_status(doc: dict, status: str) -> bool:
    if _STATUS_RANK[status] <= _STATUS_RANK[doc["status"]]:
        return False
    doc["status"] = status
    return True


# --------------------------------------------------------------------------- submit path


def claim_for_submit(doc: dict, attempt: int, at: datetime) -> Optional[dict]:
    """pending → submitting for this attempt; None when another delivery already claimed it."""
    if doc.get("attempt") != attempt or doc["status"] != PENDING:
        return None
    new = copy.deepcopy(doc)
    new["status"] = SUBMITTING
    _set_stage(new, "Compile", STAGE_RUNNING, started=at)
    new.setdefault("attempts", [])
    new["attempts"] = [a for a in new["attempts"] if a.get("attempt") != attempt] + [
        {"attempt": attempt, "claimed_at": at, "status": SUBMITTING}]
    _refresh_progress(new)
    return new


def claim_submit(doc: dict, attempt: int, at: datetime, lease: timedelta) -> Optional[dict]:
    """Claim the attempt for this delivery (shared/domain/claims.py: the submit lease). A claim older than
    `lease` (settings: the holder's request timeout plus a margin, so its holder is gone) or released by a
    holder that failed transiently is taken over; a younger one is another delivery's, and this one is
    refused as transient — the retry window outlasts the lease (terraform/pubsub.tf). None: past pending."""
    claimed = claim_for_submit(doc, attempt, at)
    if claimed is not None:
        return claimed
    if doc.get("attempt") != attempt or doc["status"] != SUBMITTING:
        return None
    entry = next((a for a in doc.get("attempts", []) if a.get("attempt") == attempt), None)
    taken = claims.claim(entry, at, lease)
    if taken is None:
        raise TransientError(f"run {doc['id']} attempt {attempt} is being submitted by another delivery")
    return _with_attempt_entry(doc, attempt, taken)


def release_submit(doc: dict, attempt: int, claimed_at: datetime) -> Optional[dict]:
    """This delivery's claim, given up after a transient failure, so that Pub/Sub's next redelivery
    takes it at once rather than waiting out the lease (a backend outage shorter than the retry
    window then dead-letters nothing). Only our own claim: a takeover since is left alone."""
    if doc.get("attempt") != attempt or doc["status"] != SUBMITTING:
        return None
    entry = next((a for a in doc.get("attempts", []) if a.get("attempt") == attempt), {})
    released = claims.release(entry, claimed_at)
    return None if released is None else _with_attempt_entry(doc, attempt, released)


def _with_attempt_entry(doc: dict, attempt: int, entry: Optional[dict]) -> dict:
    new = copy.deepcopy(doc)
    if entry is not None:
        new["attempts"] = [entry if a.get("attempt") == attempt else a for a in new.get("attempts", [])]
    return new


def record_submitted(doc: dict, attempt: int, job_name: str, artifacts_uri: str, at: datetime) -> Optional[dict]:
    if doc.get("attempt") != attempt or doc["status"] in TERMINAL:
        return None
    new = copy.deepcopy(doc)
    new["vertex_pipeline_job_name"] = job_name
    new["gcs_artifacts_path"] = artifacts_uri
    _set_stage(new, "Compile", STAGE_COMPLETED, ended=at)
    _advance_status(new, RUNNING)
    new["started_at"] = new.get("started_at") or at
    for entry in new.get("attempts", []):
        if entry.get("attempt") == attempt:
            entry.update(status=RUNNING, job_name=job_name, submitted_at=at)
    _refresh_progress(new)
    return new


def record_failure(doc: dict, attempt: int, stage: str, message: str, details: dict | None, at: datetime) -> Optional[dict]:
    if doc.get("attempt") != attempt or doc["status"] in TERMINAL:
        return None
    new = copy.deepcopy(doc)
    new["status"] = FAILED
    new["error_stage"] = stage
    new["error_message"] = message
    new["error_details"] = details or {}
    if stage in STAGES:
        _set_stage(new, stage, STAGE_FAILED, ended=at)
    _finish(new, at)
    for entry in new.get("attempts", []):
        if entry.get("attempt") == attempt:
            entry.update(status=FAILED, error_stage=stage, error_message=message, ended_at=at)
    return new


def _finish(doc: dict, at: datetime) -> None:
    doc["completed_at"] = doc.get("completed_at") or at
    if doc.get("started_at"):
        doc["duration_seconds"] = int((doc["completed_at"] - doc["started_at"]).total_seconds())
    _refresh_progress(doc)


# --------------------------------------------------------------------------- progress path


def _record_coercions(doc: dict, results: dict) -> None:
    """Non-numeric values a feature config asked to treat as missing (SchemaGen's data check): on the run
    however it ended, since a run that fails later still trained on the coerced data."""
    coercions = (results.get("data_check") or {}).get("coercions") or []
    if coercions:
        doc["data_coercions"] = coercions
        doc.setdefault("warnings", []).extend(c["warning"] for c in coercions)


def apply_job_snapshot(doc: dict, job: JobSnapshot, results: Optional[dict] = None) -> Optional[dict]:
    """Fold what the pipeline backend says about the job into the run document.

    `results` (metrics, evaluation, registry, artifacts) must be given when the job SUCCEEDED; when it
    FAILED, they may hold the data check (its coercions are recorded either way).
    """
    parsed = parse_job_id(job.job_id)
    if parsed is None or parsed[1] != doc.get("attempt") or doc["status"] in TERMINAL:
        return None
    new = copy.deepcopy(doc)
    for task in job.tasks:
        stage = stage_for_task(task.task_name)
        if stage:
            _set_stage(new, stage, TASK_STATE_TO_STAGE.get(task.state, STAGE_PENDING), task.start_time, task.end_time)
    if job.start_time:
        new["started_at"] = new.get("started_at") or job.start_time

    if job.state == "PIPELINE_STATE_SUCCEEDED":
        _complete(new, job, results or {})
    elif job.state == "PIPELINE_STATE_FAILED":
        failed = _failed_task(job.tasks)
        stage = stage_for_task(failed.task_name) if failed else None
        stage = stage or current_stage(new["stage_details"]) or "Examples"
        message = (failed.error if failed and failed.error else job.error) or "the pipeline failed"
        new["status"] = FAILED
        new["error_stage"] = stage
        new["error_message"] = message
        new["error_details"] = {"job_name": job.name, "task": failed.task_name if failed else None}
        _record_coercions(new, results or {})
        _set_stage(new, stage, STAGE_FAILED, ended=job.end_time)
        _finish(new, job.end_time or now())
    elif job.state == "PIPELINE_STATE_CANCELLED":
        new["status"] = CANCELLED
        for stage in new["stage_details"]:
            if stage["status"] == STAGE_RUNNING:
                _set_stage(new, stage["name"], STAGE_CANCELLED, ended=job.end_time)
        stopped = [s["name"] for s in new["stage_details"] if s["status"] == STAGE_CANCELLED]
        new["cancelled_at_stage"] = stopped[0] if stopped else current_stage(new["stage_details"])
        new["cancelled_at_epoch"] = new.get("current_epoch")
        _finish(new, job.end_time or now())
    else:
        _advance_status(new, RUNNING)
    _refresh_progress(new)
    for entry in new.get("attempts", []):
        if entry.get("attempt") == new["attempt"] and new["status"] in TERMINAL:
            entry.update(status=new["status"], ended_at=new.get("completed_at"),
                         error_stage=new.get("error_stage"), error_message=new.get("error_message"))
    return new if _changed(doc, new) else None


def _failed_task(tasks: list[TaskSnapshot]) -> Optional[TaskSnapshot]:
    failed = [t for t in tasks if t.state == "FAILED" and stage_for_task(t.task_name)]
    if not failed:
        return None
    order = {name: i for i, name in enumerate(STAGES)}
    return min(failed, key=lambda t: order[stage_for_task(t.task_name)])


# What a completed run keeps of its Evaluation (shared/contract/results.py): run_document.EvaluationResults'
# fields (tests/unit/test_run_document.py holds the two equal; run_document imports this module).
EVALUATION_FIELDS = ("blessed", "passed", "threshold_metric", "threshold_value", "actual_value", "evaluator_enabled",
                     "baseline_metrics", "baseline_value", "lift_percent", "required_lift_percent", "ease_value",
                     "lift_over_ease_percent", "required_lift_over_ease_percent", "ease_skipped_reason",
                     "champion_model", "champion_version", "champion_source", "champion_metrics", "champion_value",
                     "champion_tolerance", "champion_required_value", "champion_error", "reason")


def _complete(doc: dict, job: JobSnapshot, results: dict) -> None:
    evaluation = results.get("evaluation") or {}
    registry = results.get("registry")
    training = results.get("training_metrics") or {}
    blessed = bool(evaluation.get("blessed"))
    doc["status"] = COMPLETED if blessed else NOT_BLESSED
    doc["is_blessed"] = blessed
    doc["evaluation_results"] = {k: evaluation.get(k) for k in EVALUATION_FIELDS}
    metrics = {**training.get("final", {}), **evaluation.get("metrics", {})}
    for key in ("loss", "recall_at_5", "recall_at_10", "recall_at_50", "recall_at_100", "rmse", "mae",
                "test_rmse", "test_mae"):
        if key in metrics:
            doc[key] = metrics[key]
    doc["metrics"] = metrics
    if training.get("epochs"):
        last = training["epochs"][-1]
        doc["current_epoch"] = max(doc.get("current_epoch") or 0, last["epoch"])
        doc["total_epochs"] = last.get("total_epochs") or doc.get("total_epochs")
    doc["stopped_early"] = training.get("stopped_early", False)
    if training.get("warm_start_warning"):
        doc.setdefault("warnings", []).append(training["warm_start_warning"])
    if training.get("warm_start_record"):  # what the weights started from (shared/domain/warm_start.py)
        doc["warm_start"] = training["warm_start_record"]
    _record_coercions(doc, results)
    if registry:
        doc["vertex_model_name"] = registry.get("model_display_name")
        doc["vertex_model_resource_name"] = registry.get("model_resource_name")
        doc["vertex_model_version"] = registry.get("model_version_id")
    else:
        for stage in doc["stage_details"]:
            if stage["name"] == "Push" and stage["status"] == STAGE_PENDING:
                stage["status"] = STAGE_SKIPPED
    doc["artifacts"] = {k: v for k, v in (results.get("artifacts") or {}).items() if v}
    for stage in doc["stage_details"]:  # a succeeded job has no stage left running
        if stage["status"] in (STAGE_PENDING, STAGE_RUNNING) and stage["name"] != "Compile":
            _set_stage(doc, stage["name"], STAGE_COMPLETED if stage["status"] == STAGE_RUNNING else STAGE_SKIPPED,
                       ended=job.end_time)
    _finish(doc, job.end_time or now())


def apply_epoch(doc: dict, epoch: dict, at: datetime, min_interval_s: float) -> Optional[dict]:
    """Fold one EpochMetrics message into the live fields, at most about once per min_interval_s."""
    if epoch.get("attempt", 1) != doc.get("attempt") or doc["status"] in TERMINAL:
        return None
    if epoch["epoch"] <= (doc.get("current_epoch") or 0):
        return None
    last_write = doc.get("progress_written_at")
    final_epoch = epoch["epoch"] >= epoch["total_epochs"]
    if last_write and (at - last_write).total_seconds() < min_interval_s and not final_epoch:
        return None  # the history subcollection has it; the run document catches up on the next one
    new = copy.deepcopy(doc)
    new["current_epoch"] = epoch["epoch"]
    new["total_epochs"] = epoch["total_epochs"]
    new["live_metrics"] = {"loss": epoch.get("loss"), "val_loss": epoch.get("val_loss"),
                           "learning_rate": epoch.get("learning_rate"), "grad_norm": epoch.get("grad_norm"),
                           **epoch.get("metrics", {})}
    if epoch.get("tensorboard_experiment"):
        new["tensorboard_experiment"] = epoch["tensorboard_experiment"]
    new["progress_written_at"] = at
    _advance_status(new, RUNNING)
    _set_stage(new, "Train", STAGE_RUNNING)
    _refresh_progress(new)
    return new


def _changed(old: dict, new: dict) -> bool:
    ignore = {"updated_at", "version"}
    return {k: v for k, v in old.items() if k not in ignore} != {k: v for k, v in new.items() if k not in ignore}


def public_view(doc: dict) -> dict[str, Any]:
    """The run as the API returns it (internal bookkeeping left out, webhooks by host only)."""
    hidden = {"progress_written_at", "search_text", "search_tokens", "run_spec"}
    view = {k: v for k, v in doc.items() if k not in hidden}
    if view.get("notifications"):
        view["notifications"] = webhook_addresses.public_targets(view["notifications"])
    return view


# --------------------------------------------------------------------------- actions (shared/services/actions/)

CANCELLABLE = (AWAITING_APPROVAL, PENDING, SCHEDULED, SUBMITTING, RUNNING)
RETRYABLE = (FAILED, CANCELLED)
ACTIVE = (AWAITING_APPROVAL, PENDING, SCHEDULED, SUBMITTING, RUNNING, CANCELLING)
DELETABLE = (DRAFT, COMPLETED, FAILED, CANCELLED, NOT_BLESSED)  # nothing of it still runs
DEPLOYABLE = (COMPLETED, NOT_BLESSED)  # when its model is registered (a not_blessed one: pushed anyway)


def _upsert_attempt(doc: dict, attempt: int, **fields) -> None:
    entries = doc.setdefault("attempts", [])
    entry = next((a for a in entries if a.get("attempt") == attempt), None)
    if entry is None:
        entry = {"attempt": attempt}
        entries.append(entry)
    entry.update(fields)


# The notification ledger (shared/services/actions/notify.deliver): one entry per (attempt, event, target), at most
# once (claims without a lease). Its `status` (sending, sent, failed) is what readers see.
SENDING, SENT, SEND_FAILED = "sending", "sent", "failed"


def _notification_entry(doc: dict, key: str, at: datetime) -> dict:
    entry = dict((doc.get("notifications_sent") or {}).get(key) or {})
    # Entries written before claims.py say it by their status alone: read it as the claim it was.
    if entry.get("status") == SENDING and not entry.get(claims.CLAIMED_AT):
        entry[claims.CLAIMED_AT] = entry.get("at") or at
    if entry.get("status") == SENT and not entry.get("sent_at"):
        entry["sent_at"] = entry.get("at") or at
    return entry


def _with_notification(doc: dict, key: str, entry: dict) -> dict:
    return {**doc, "notifications_sent": {**(doc.get("notifications_sent") or {}), key: entry}}


def claim_notification(doc: dict, key: str, at: datetime) -> Optional[dict]:
    """The target claimed for this delivery (`sending`); None when it was sent or another delivery holds it."""
    entry = _notification_entry(doc, key, at)
    taken = claims.claim(entry, at, done_at="sent_at")
    if taken is None:
        return None
    return _with_notification(doc, key, {**taken, "status": SENDING, "at": at, "tries": entry.get("tries", 0) + 1})


def record_notification(doc: dict, key: str, sent: bool, at: datetime, error: Optional[str] = None) -> Optional[dict]:
    """The claimed target sent (done), or failed (its claim released, so a redelivery tries it again)."""
    entry = _notification_entry(doc, key, at)
    ended = claims.done(entry, at, done_at="sent_at") if sent else claims.release(entry, entry.get(claims.CLAIMED_AT))
    if ended is None:
        return None
    return _with_notification(doc, key, {**ended, "status": SENT if sent else SEND_FAILED, "error": error, "at": at})


def as_admitted(doc: dict, admitted: dict) -> dict:
    """The run as the spend guard admitted it (shared/services/spending.admit): reserved (`spend`), or
    awaiting approval above its team's per-run cap (`approval`)."""
    return {**doc, "status": admitted["status"], **{k: admitted[k] for k in ("spend", "approval") if k in admitted}}


def submit_draft(doc: dict, admitted: Optional[dict]) -> Optional[dict]:
    """A draft submitted, as admitted; None when it is no longer a draft (a repeat) or was not admitted."""
    if doc["status"] != DRAFT or admitted is None:
        return None
    return as_admitted(doc, admitted)


def admit_attempt(doc: dict, new: Optional[dict], admitted: Optional[dict]) -> Optional[dict]:
    """The run's next attempt (`new`, from prepare_retry; None: already retried) as admitted; Conflict when the
    run moved on to another attempt since it was admitted."""
    if new is None:
        return None
    if admitted is None or new["attempt"] != admitted["attempt"]:
        raise Conflict(f"run {doc['id']} changed while it was being retried; retry it again")
    new = {k: v for k, v in new.items() if k != "approval"}  # an earlier attempt's approval does not carry over
    return as_admitted(new, admitted)


def approve(doc: dict, spend: Optional[dict], by: str, at: datetime) -> Optional[dict]:
    """awaiting_approval → pending, reserved on the ledger (`spend`); None when it is no longer waiting."""
    if doc["status"] != AWAITING_APPROVAL:
        return None
    return {**doc, "status": PENDING, "spend": spend,
            "approval": {**doc.get("approval", {}), "approved_by": by, "approved_at": at}}


def reject(doc: dict, by: str, at: datetime, reason: str) -> Optional[dict]:
    """awaiting_approval → cancelled with the admin's reason; None for a repeat; Conflict in any other state."""
    if doc["status"] == CANCELLED and doc.get("approval", {}).get("rejected_by"):
        return None
    if doc["status"] != AWAITING_APPROVAL:
        raise Conflict(f"run {doc['id']} is {doc['status']}; only a run awaiting approval can be rejected")
    new = cancel_waiting(doc, by, at, f"rejected by {by}" + (f": {reason}" if reason else ""))
    new["approval"] = {**copy.deepcopy(doc.get("approval", {})), "rejected_by": by, "rejected_at": at,
                       "reason_given": reason}
    return new


def request_push_anyway(doc: dict, by: str, at: datetime) -> Optional[dict]:
    """A not-blessed run's model registered anyway: `pushing` until the run-commands consumer registers it.
    None when it is being pushed or was pushed (a repeat); Conflict in any other state."""
    state = (doc.get("push_anyway") or {}).get("status")
    if doc["status"] == NOT_BLESSED and state in (PUSHING, PUSHED):
        return None
    if doc["status"] != NOT_BLESSED:
        reason = "its model was registered when it completed" if doc["status"] == COMPLETED else \
            "only not_blessed runs can be pushed anyway"
        raise Conflict(f"run {doc['id']} is {doc['status']}; {reason}")
    return {**doc, "push_anyway": {"status": PUSHING, "requested_by": by, "requested_at": at, "error": None}}


def record_push(doc: dict, changes: dict, top: Optional[dict] = None) -> Optional[dict]:
    """What the push-anyway command found (`changes` on `push_anyway`, `top` on the run); None when the run
    is no longer being pushed (a late or repeated command)."""
    if (doc.get("push_anyway") or {}).get("status") != PUSHING:
        return None
    return {**doc, "push_anyway": {**doc["push_anyway"], **changes}, **(top or {})}


def request_cancel(doc: dict, by: str, at: datetime) -> dict:
    """A run that never reached the pipeline ends cancelled at once; one that has a job (or is
    creating it) becomes `cancelling` until the job itself reports CANCELLED."""
    new = copy.deepcopy(doc)
    new["cancelled_by"] = by
    new["cancel_requested_at"] = at
    new["cancel_requested_in"] = doc["status"]
    if doc["status"] in (AWAITING_APPROVAL, PENDING, SCHEDULED):
        new["status"] = CANCELLED
        new["cancelled_at_stage"] = None  # it never started
        new["cancelled_at_epoch"] = None
        _upsert_attempt(new, new["attempt"], status=CANCELLED, ended_at=at)
        _finish(new, at)
    else:
        new["status"] = CANCELLING
        _refresh_progress(new)
    return new


def prepare_retry(doc: dict, by: str, at: datetime, training_params: dict, gpu_config: dict,
                  changes: dict) -> dict:
    """The next attempt of a failed or cancelled run: back to pending with fresh stages; the finished
    attempt's outcome (error stage, message, details; where it was cancelled) stays in `attempts`."""
    new = copy.deepcopy(doc)
    previous = doc["attempt"]
    _upsert_attempt(new, previous, status=doc["status"], error_stage=doc.get("error_stage") or None,
                    error_message=doc.get("error_message") or None, error_details=doc.get("error_details") or {},
                    cancelled_at_stage=doc.get("cancelled_at_stage"), cancelled_at_epoch=doc.get("cancelled_at_epoch"),
                    cancelled_by=doc.get("cancelled_by"), ended_at=doc.get("completed_at"),
                    retried_by=by, retried_at=at, retry_changes=changes,
                    shape=gpu_fallback.shape_of(doc.get("gpu_config") or {}),
                    ended_because=gpu_fallback.cause(doc))
    new.update({
        "attempt": previous + 1, "status": PENDING, "training_params": training_params, "gpu_config": gpu_config,
        "total_epochs": training_params.get("epochs", doc.get("total_epochs")),
        "stage_details": initial_stages(), "current_stage": "Compile", "current_epoch": None, "progress_percent": 0,
        "live_metrics": {}, "vertex_pipeline_job_name": "", "error_message": "", "error_stage": "",
        "error_details": {}, "completed_at": None, "duration_seconds": None, "started_at": None,
        "last_retry": {"attempt": previous + 1, "by": by, "at": at, "changes": changes},
    })
    for key in ("cancelled_by", "cancel_requested_at", "cancel_requested_in", "cancelled_at_stage",
                "cancelled_at_epoch", "progress_written_at"):
        new.pop(key, None)
    return new


def release_scheduled(doc: dict) -> Optional[dict]:
    """A run waiting for its slot (or its place in a schedule's queue) is released for submission."""
    if doc["status"] != SCHEDULED:
        return None
    return {**doc, "status": PENDING}


def cancel_waiting(doc: dict, identity: str, at: datetime, reason: str) -> Optional[dict]:
    """A run that never started (scheduled, or awaiting approval) is cancelled outright: there is no job to stop."""
    if doc["status"] not in (SCHEDULED, AWAITING_APPROVAL):
        return None
    return {**doc, "status": CANCELLED, "cancelled_by": identity, "completed_at": at, "error_message": "",
            "cancelled_at_stage": None, "warnings": doc.get("warnings", []) + [reason]}


# --------------------------------------------------------------------------- deletion (security review M4)
#
# Deletion is not a status: a run is deleted only once nothing of it runs (its status is terminal, or a
# draft), so the forward-only status never moves again. It is a lifecycle of the document beside the
# status, forward only: live → deleted (hidden, artifacts kept until purge_after) → purging → gone.
# A restore takes deleted back to live until the purge has begun; a repeat of either is a no-op.

_DELETION_FIELDS = ("deleted_at", "deleted_by", "purge_after")


def is_deleted(doc: dict) -> bool:
    return bool(doc.get("deleted"))


def delete_refusal(doc: dict) -> Optional[str]:
    """Why this run cannot be deleted now (None: it can). A deleted run's model must not vanish from
    under an endpoint or a registration in flight (they would fail half-way, leaving what nothing tracks)."""
    if doc["status"] not in DELETABLE:
        return (f"it is {doc['status']}; only drafts and completed, failed, cancelled or not_blessed runs can be "
                f"deleted (cancel it first)")
    deployment = doc.get("deployment") or {}
    if deployment.get("status") in ("deploying", "canary", "deployed", "rolling_back"):  # deployments.UNDER_WAY, SERVING
        where = deployment.get("endpoint_resource_name") or deployment.get("endpoint_id") or "its endpoint"
        action = "wait for the deployment to finish, then undeploy it" if deployment["status"] == "deploying" \
            else "undeploy it first"
        return f"its model is {deployment['status']} to {where}; {action}"
    if (doc.get("push_anyway") or {}).get("status") == PUSHING:
        return "its model is being pushed anyway; wait for the push to finish"
    return None


def soft_delete(doc: dict, by: str, at: datetime, purge_after: datetime) -> Optional[dict]:
    """Hidden and kept until purge_after; None when it is deleted already (the first delete stands)."""
    if is_deleted(doc):
        return None
    new = copy.deepcopy(doc)
    new.update(deleted=True, deleted_at=at, deleted_by=by, purge_after=purge_after)
    new.pop("restored_at", None)
    new.pop("restored_by", None)
    return new


def restore(doc: dict, by: str, at: datetime) -> Optional[dict]:
    """Back in the lists with everything it had; None when it is not deleted (a repeat). The caller refuses
    it once the purge has begun (`purging`, see start_purge): its files may be gone already."""
    if not is_deleted(doc):
        return None
    new = copy.deepcopy(doc)
    for key in _DELETION_FIELDS:
        new.pop(key, None)
    new.update(deleted=False, restored_at=at, restored_by=by)
    return new


def start_purge(doc: dict, at: datetime) -> Optional[dict]:
    """The point of no return: a deleted run past its grace period is marked purging (None: not due, or
    restored meanwhile, or already purging)."""
    if not is_deleted(doc) or doc.get("purging") or not doc.get("purge_after") or doc["purge_after"] > at:
        return None
    return {**copy.deepcopy(doc), "purging": True, "purge_started_at": at}
