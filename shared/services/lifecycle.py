"""What follows a run change, in one room.

Every place that moves a run — the pipeline's events (progress), the submitter (including its
failure path), the API's actions, the run-commands consumer, the schedules — moves it with
`move_run(...)`, or hands what it changed to `after_change(before, after)`. What follows:

- a run that ended is counted on its schedule exactly once (auto-pause after N failures, its Cloud
  Scheduler job paused too), and the schedule's next waiting run is released for submission;
- a run that ended has its measured cost replace its spend reservation (shared/services/spending.py);
- a completed run whose deployment_config asks for it is deployed (shared/services/deployments.py);
- a run that reached a state its notification targets asked for (completed, failed, cancelled, not
  blessed; a schedule's auto-pause) is announced (shared/services/notify.py).

Each step is idempotent, so a redelivered event, a retried request or a second caller changes
nothing more; reading a schedule never writes (there is nothing left to catch up on).
"""
from __future__ import annotations

import copy
from datetime import datetime
from typing import Callable, Optional

from shared.domain import runs, schedules
from shared import log
from shared.errors import NotFound
from shared.adapters.messaging import Publisher
from shared.adapters.repository import Repository, mutate_or_read_run
from shared.services import deployments, notify, queueing, spending


def _watching(transition: Callable[[dict], Optional[dict]], seen: dict) -> Callable[[dict], Optional[dict]]:
    def apply(doc: dict) -> Optional[dict]:
        seen["before"] = copy.deepcopy(doc)  # the transaction's last attempt is the one that counts
        return transition(doc)
    return apply


def move_run(repo: Repository, run_id: str, transition: Callable[[dict], Optional[dict]],
             publisher: Optional[Publisher] = None, jobs=None, at: Optional[datetime] = None) -> Optional[dict]:
    """Apply a transition of shared/domain/runs.py in one transaction, then what follows from it. Returns the
    run as changed, or None when the transition changed nothing (what follows was done already)."""
    seen: dict = {}
    after = repo.mutate_run(run_id, _watching(transition, seen))
    after_change(repo, seen.get("before"), after, publisher, jobs, at)
    return after


def move_or_read(repo: Repository, run_id: str, transition: Callable[[dict], Optional[dict]],
                 publisher: Optional[Publisher] = None, jobs=None) -> tuple[dict, bool]:
    """move_run for a request: (the run, whether it changed); NotFound when there is no such run."""
    seen: dict = {}
    run, changed = mutate_or_read_run(repo, run_id, _watching(transition, seen))
    if changed:
        after_change(repo, seen.get("before"), run, publisher, jobs)
    return run, changed


def after_change(repo: Repository, before: Optional[dict], after: Optional[dict], publisher: Optional[Publisher] = None,
                 jobs=None, at: Optional[datetime] = None) -> None:
    """`after` is the run as a change left it (None: nothing changed); `before` as it was (None: unknown).
    With a publisher, a released run is queued and a deploy after training requested; without one
    (a request that must not publish), the schedule's next trigger releases it."""
    if after is None:
        return
    if runs.is_terminal(after["status"]):  # its measured cost replaces its spend reservation (idempotent)
        spending.settle(repo, after, at)
    if publisher is not None:  # the run's notification targets are told by the run-commands consumer
        notify.queue(publisher, before, after)
    if runs.is_terminal(after["status"]) and after.get("schedule_id"):
        settle_schedule(repo, after, publisher, at, jobs)
    if publisher is not None and after["status"] == runs.COMPLETED:
        deployments.deploy_after_training(repo, publisher, after)


def settle_schedule(repo: Repository, run: dict, publisher: Optional[Publisher] = None,
                    at: Optional[datetime] = None, jobs=None) -> Optional[dict]:
    """A run that is terminal is counted on its schedule (exactly once, however often this is called), auto-pause
    after N failures (and pause its Cloud Scheduler job, when `jobs` is given, so it stops firing),
    and promote a queued run (queued for submission when a publisher is given, else on the
    schedule's next trigger)."""
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
            if publisher is not None:
                notify.queue_schedule_paused(publisher, updated, run)
            if jobs is not None:
                try:
                    jobs.pause(updated)
                except Exception as exc:  # noqa: BLE001 — the run's event must not fail for it:
                    # a redelivery would find the run finished and pause nothing; the job's next
                    # trigger finds the schedule paused and pauses the job then (on_trigger).
                    log.warning("auto-paused schedule's job not paused yet", schedule_id=run["schedule_id"],
                                error=str(exc))
        if publisher is not None:
            release_active(repo, publisher, updated, strict=False)
    return updated


# --------------------------------------------------------------------------- releasing a waiting run


def release(repo: Repository, publisher: Publisher, run: dict, strict: bool) -> dict:
    """scheduled → pending, then run-submit. Published whenever the run is still pending, so a
    redelivered trigger re-queues a run whose first publish was lost (the submitter's claim
    makes extra messages harmless)."""
    run = repo.mutate_run(run["id"], runs.release_scheduled) or repo.get_run(run["id"])
    if run["status"] != runs.PENDING:
        return run
    if strict:
        queueing.publish_submit(publisher, run)
    else:
        queueing.queue_submit(publisher, run)
    if run.get("schedule_id"):
        repo.mutate_schedule(run["schedule_id"], lambda s: schedules.mark_last_run_status(s, run["id"], runs.PENDING))
    return run


def release_active(repo: Repository, publisher: Publisher, schedule: dict, strict: bool = True) -> list[str]:
    """Queue every admitted run that is still waiting in `scheduled` (promoted from the queue)."""
    released = []
    for run_id in list(schedule["active_runs"]):
        run = repo.get_run(run_id)
        if run is not None and run["status"] == runs.SCHEDULED:
            release(repo, publisher, run, strict)
            released.append(run_id)
    return released
