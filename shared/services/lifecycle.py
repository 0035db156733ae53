"""What follows a run change, in one room.

Every place that moves a run (changes its status or attempt) — the pipeline's events (progress), the
submitter (including its failure path), the API's actions, the run-commands consumer, the schedules, the
reconciler — moves it with `move_run` / `move_or_read`, which then do `after_change(before, after)` with
the process's `Effects` (its publisher and scheduler jobs). A change that cannot move a run is a
`run_writes.write` (shared/services/run_writes.py, the one write path beneath this room). What follows:

- a run that ended is counted on its schedule exactly once (auto-pause after N failures, its Cloud
  Scheduler job paused too), and the schedule's next waiting run is released for submission;
- a run that failed at Train for quota or capacity with a GPU shape left is queued for its next attempt on
  it (shared/services/actions/gpu_fallback.py), and is not announced or counted as ended;
- a run that ended has its measured cost replace its spend reservation (shared/services/spending.py);
- a completed run whose deployment_config asks for it is deployed (shared/services/actions/deploy.py);
- a run that ended with a batch_prediction_config gets its batch predictions when blessed and registered,
  else the reason it gets none (shared/services/actions/batch_predict.py);
- a run that reached a state its notification targets asked for (completed, failed, cancelled, not
  blessed; a schedule's auto-pause) is announced (shared/services/actions/notify.py).

Each step is idempotent, so a redelivered event, a retried request or a second caller changes
nothing more; reading a schedule never writes (there is nothing left to catch up on).
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable, Optional

from shared.contract.messages import GPU_FALLBACK
from shared.domain import gpu_fallback, runs, schedules
from shared import log
from shared.errors import NotFound, TransientError
from shared.adapters.repository import Repository
from shared.services import queueing, run_writes, spending
from shared.services.actions import batch_predict, deploy, notify, publish_command
from shared.services.ports import Effects

Transition = Callable[[dict], Optional[dict]]


def move_run(repo: Repository, run_id: str, transition: Transition, effects: Effects,
             at: Optional[datetime] = None) -> Optional[dict]:
    """Apply a transition of shared/domain/runs.py in one transaction, then what follows from it. Returns the
    run as changed, or None when the transition changed nothing (what follows was done already)."""
    before, after = run_writes.move(repo, run_id, transition)
    after_change(repo, before, after, effects, at)
    return after


def move_or_read(repo: Repository, run_id: str, transition: Transition, effects: Effects) -> tuple[dict, bool]:
    """move_run for a request: (the run, whether it changed); NotFound when there is no such run."""
    before, run, changed = run_writes.move_or_read(repo, run_id, transition)
    if changed:
        after_change(repo, before, run, effects)
    return run, changed


def after_change(repo: Repository, before: Optional[dict], after: Optional[dict], effects: Effects,
                 at: Optional[datetime] = None) -> None:
    """`after` is the run as a change left it (None: nothing changed); `before` as it was (None: unknown)."""
    if after is None:
        return
    if runs.is_terminal(after["status"]):  # its measured cost replaces its spend reservation (idempotent)
        spending.settle(repo, after, at)
        if _falls_back(repo, after, effects, at):
            return  # the run goes on to its next GPU shape: this failure is not its end
    notify.queue(effects.publisher, before, after)  # the run's targets are told by the run-commands consumer
    if runs.is_terminal(after["status"]) and after.get("schedule_id"):
        settle_schedule(repo, after, effects, at)
    if after["status"] == runs.COMPLETED:
        deploy.after_training(repo, effects.publisher, after)
    if after["status"] in (runs.COMPLETED, runs.NOT_BLESSED):
        batch_predict.after_training(repo, effects.publisher, after)


def _falls_back(repo: Repository, run: dict, effects: Effects, at: Optional[datetime]) -> bool:
    """GPU fallback (shared/domain/gpu_fallback.py): a run that failed at Train for quota or capacity with a
    shape left is queued for its next attempt (shared/services/actions/gpu_fallback.py); on its last shape, its
    error gets the account of every shape tried. True when it moves on."""
    if gpu_fallback.next_config(run) is not None:
        warning = publish_command(effects.publisher, {"command": GPU_FALLBACK, "run_id": run["id"],
                                                      "attempt": run["attempt"]})
        if warning:
            raise TransientError(warning)  # the event is redelivered, and the redelivery queues it
        return True
    if gpu_fallback.exhausted(run) is not None:
        move_run(repo, run["id"], lambda doc: gpu_fallback.exhausted(doc) if doc["attempt"] == run["attempt"] else None,
                 effects, at)
    return False


def settle_schedule(repo: Repository, run: dict, effects: Effects, at: Optional[datetime] = None) -> Optional[dict]:
    """A run that is terminal is counted on its schedule (exactly once, however often this is called), auto-pause
    after N failures (and pause its Cloud Scheduler job, so it stops firing), and promote a queued run
    (queued for submission)."""
    if not run.get("schedule_id") or not runs.is_terminal(run["status"]):
        return None
    at = at or runs.now()
    try:
        updated = repo.mutate_schedule(run["schedule_id"], lambda s: schedules.settle(s, run, at))
    except NotFound:
        return None
    if updated is not None:
        log.info("schedule counted a finished run", schedule_id=run["schedule_id"], run_id=run["id"],
                 run_status=run["status"], schedule_status=updated["status"],
                 consecutive_failures=updated["consecutive_failures"])
        if updated["status"] == schedules.PAUSED and updated.get("paused_reason", "").startswith("auto-paused"):
            log.warning("schedule auto-paused", schedule_id=run["schedule_id"], reason=updated["paused_reason"])
            notify.queue_schedule_paused(effects.publisher, updated, run)
            try:
                effects.scheduler_jobs.pause(updated)
            except Exception as exc:  # noqa: BLE001 — the run's event must not fail for it:
                # a redelivery would find the run finished and pause nothing; the job's next
                # trigger finds the schedule paused and pauses the job then (on_trigger).
                log.warning("auto-paused schedule's job not paused yet", schedule_id=run["schedule_id"],
                            error=str(exc))
        release_active(repo, effects, updated, strict=False)
    return updated


# --------------------------------------------------------------------------- releasing a waiting run


def release(repo: Repository, effects: Effects, run: dict, strict: bool) -> dict:
    """scheduled → pending, then run-submit. Published whenever the run is still pending, so a
    redelivered trigger re-queues a run whose first publish was lost (the submitter's claim
    makes extra messages harmless)."""
    run = move_run(repo, run["id"], runs.release_scheduled, effects) or repo.get_run(run["id"])
    if run["status"] != runs.PENDING:
        return run
    if strict:
        queueing.publish_submit(effects.publisher, run)
    else:
        queueing.queue_submit(effects.publisher, run)
    if run.get("schedule_id"):
        repo.mutate_schedule(run["schedule_id"], lambda s: schedules.mark_last_run_status(s, run["id"], runs.PENDING))
    return run


def release_active(repo: Repository, effects: Effects, schedule: dict, strict: bool = True) -> list[str]:
    """Queue every admitted run that is still waiting in `scheduled` (promoted from the queue)."""
    released = []
    for run_id in list(schedule["active_runs"]):
        run = repo.get_run(run_id)
        if run is not None and run["status"] == runs.SCHEDULED:
            release(repo, effects, run, strict)
            released.append(run_id)
    return released
