"""A new run, now or later: the one way `POST /api/training-runs` becomes a stored run, and the way a draft is
submitted (`POST …/submit`).

1. build: validate, inherit from the base experiment, default (shared/services/run_builder.build_run);
   a draft (`"draft": true`) is stored as it is and goes no further until it is submitted;
2. pre-flight: the run's GPUs against the project's quota — short is a warning on the run, never a
   refusal (the quota may be raised before the run reaches Train; an unreadable quota says nothing).
   It waits at most `settings.preflight_deadline_s`: past it the run is stored with a warning that the
   quota was not checked, and the check finishes on a worker thread (warming the quota reader's caches
   for the next create). Not attached to the run later: Cloud Run gives an instance CPU only while it
   serves a request (https://cloud.google.com/run/docs/configuring/billing-settings), so a write after
   the response may never happen, and the submitter may already hold the run;
3. spend guard (shared/services/spending.py): the run's estimate is reserved on its team's monthly ledger,
   or it waits in `awaiting_approval` above the team's per-run cap, or it is refused over the month's budget;
4. store: now → `pending` and queued for submission; with a future `scheduled_at` → a one-time schedule
   and its run, `scheduled` (shared/services/scheduling.schedule_run), with the same schedules adapter as
   `POST /api/training/schedules`.
"""
from __future__ import annotations

import concurrent.futures
from datetime import datetime
from typing import Any, Iterable, Optional

from shared.domain import gpu_fallback, runs, teams, triggers
from shared.domain.teams import Caller
from shared import log
from shared.errors import Conflict, FieldError
from shared.adapters.repository import Repository
from shared.services import (access, catalog_entries, lifecycle, notification_targets, ports, queueing, run_builder,
                             scheduling, spending)
from shared.services.run_data import get_run


def create_run(repo: Repository, effects: ports.Effects, body: Any, who: Caller, declared: Iterable[teams.Team],
               run_data=None, settings=None, run_id: Optional[str] = None, at: Optional[datetime] = None,
               targets=None, client: Optional[str] = None) -> dict:
    """A run owned by the team the body names (or the caller's only team where they are trainer);
    `declared` is the deployment's teams. `run_data` and `settings` enable the GPU quota pre-flight
    (the API gives them; tests may not); `targets` checks and seals the run's notification targets
    (shared/services/notification_targets.py). The effects' publisher queues a run for now; their
    scheduler jobs hold a run with a future scheduled_at (its one-time schedule's job)."""
    at = at or runs.now()
    team = teams.team_for_new(who, run_builder.requested_team(body), declared, teams.TRAINER, "creating a run")
    identity = who.email
    request, doc = run_builder.build_run(repo, body, identity, at, team)
    doc["trigger"] = triggers.manual(identity, at, client)  # `client`: cli or api (triggers.via)
    access.check_new_run(repo, who, declared, doc)
    catalog_entries.require_usable_dataset(repo, doc["dataset_id"], team, declared,
                                           settings.admins if settings is not None else frozenset())
    notification_targets.check(targets, (doc["notifications"], "notifications"))
    if request.draft and doc["scheduled_at"] is not None:
        raise FieldError.one("draft", "a draft is not scheduled: leave scheduled_at out and submit the draft later")
    if run_data is not None and settings is not None:
        doc = ranked_shapes(run_data, doc, settings)
    warning = quota_warning(run_data, doc, settings) if run_data is not None and settings is not None else None
    if warning:
        doc = {**doc, "warnings": [*doc.get("warnings", []), warning]}
    if doc["scheduled_at"] is not None:  # its one-time schedule seals the targets under the schedule's id
        return scheduling.schedule_run(repo, request, doc, identity, at, effects.scheduler_jobs, targets=targets)
    run_id = run_id or run_builder.new_run_id()
    doc = {**doc, "notifications": notification_targets.seal(targets, doc["notifications"], ("run", run_id))}
    if request.draft:  # kept, not queued: POST /api/training-runs/{id}/submit sends it on
        stored, _ = repo.create_run({**doc, "status": runs.DRAFT}, counter_key=run_builder.run_counter(settings),
                                    run_id=run_id)
        return stored
    doc = spending.admit(repo, doc, run_id, settings, at)  # OverBudget, or awaiting_approval above the run cap
    try:
        stored, created = repo.create_run(doc, counter_key=run_builder.run_counter(settings), run_id=run_id)
    except Exception:
        spending.release(repo, doc, at)
        raise
    if created and stored["status"] == runs.PENDING:
        queueing.queue_submit(effects.publisher, stored)
    return stored


# Pre-flight checks run here so a create can stop waiting for one; a few workers, as a slow check holds one.
_PREFLIGHT = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="gpu-preflight")


def quota_warning(sources, run: dict, settings) -> Optional[str]:
    """A warning (never a refusal) when the GPU quota cannot cover the run, or was not read in time."""
    gpu = run.get("gpu_config") or {}
    try:
        check = _quota_check(sources, settings, gpu).result(timeout=settings.preflight_deadline_s)
    except concurrent.futures.TimeoutError:  # distinct from the builtin before Python 3.11; kept explicit
        log.info("gpu quota pre-flight past its deadline", run_name=run.get("name"),
                 deadline_s=settings.preflight_deadline_s)
        return (f"GPU quota: not checked (the quota services did not answer within {settings.preflight_deadline_s:g} s); "
                f"GET /api/gpu-availability checks it.")
    except Exception as exc:  # noqa: BLE001 — the pre-flight is advice: it never turns a create into an error
        log.warning("gpu quota pre-flight failed", run_name=run.get("name"), error=repr(exc))
        return None
    if check.get("sufficient") is False:
        return f"GPU quota: {check['message']}. The run is queued and will fail at Train unless quota is added."
    return None


def _quota_check(sources, settings, gpu: dict) -> concurrent.futures.Future:
    """The quota check of one GPU shape, on a pre-flight worker, in the shape's region (else the deployment's)."""
    gpus = gpu["gpu_count"] * gpu.get("machine_count", 1)  # every machine of the Trainer holds gpu_count
    return _PREFLIGHT.submit(sources.gpu_quota.check, gpu.get("region") or settings.region, gpu["gpu_type"], gpus,
                             gpu.get("preemptible", True))


def ranked_shapes(sources, run: dict, settings) -> dict:
    """A run that lists GPU fallbacks, its shapes ranked by the quota the pre-flight sees (shared/domain/
    gpu_fallback.rank): it starts on the first, and records the order it started with. All shapes are checked
    at once, within the one pre-flight deadline; an unanswered check ranks as unknown (the user's order)."""
    gpu = run.get("gpu_config") or {}
    if not gpu.get("fallbacks"):
        return run
    shapes = gpu_fallback.shapes(run)
    checks = [_quota_check(sources, settings, {**gpu, **shape}) for shape in shapes]
    done, _ = concurrent.futures.wait(checks, timeout=settings.preflight_deadline_s)
    free = [check.result().get("sufficient") if check in done and check.exception() is None else None
            for check in checks]
    order = gpu_fallback.rank(shapes, free)
    run = {**run, "gpu_fallback": {"shapes": order}}
    if order[0] != shapes[0]:
        run["gpu_config"] = {**gpu, **order[0]}
        run["warnings"] = [*run.get("warnings", []), f"GPU quota: starts on {gpu_fallback.describe(order[0])}, "
                           f"the first listed shape with free quota ({gpu_fallback.describe(shapes[0])} has none)"]
    return run


def submit_run(repo: Repository, effects: ports.Effects, run_id: str, who: Caller, settings=None) -> dict:
    """Submit a draft (draft → pending, or awaiting_approval above the team's per-run cap; admitted by the
    spend guard), or queue a pending run again (e.g. after a failed publish).
    Idempotent: the submitter's claim makes a repeated message harmless."""
    draft = access.run(repo, who, run_id, teams.TRAINER, "submitting a run")  # 404 for an unknown run
    admitted = None
    if draft["status"] == runs.DRAFT:
        admitted = spending.admit(repo, {**draft, "status": runs.PENDING}, run_id, settings)

    run = lifecycle.move_run(repo, run_id, lambda doc: runs.submit_draft(doc, admitted), effects)
    if run is None:
        run = get_run(repo, run_id)
        if admitted is not None and (run.get("spend") or {}).get("key") != (admitted.get("spend") or {}).get("key"):
            spending.release(repo, admitted)
    if run["status"] == runs.AWAITING_APPROVAL:
        return run
    if run["status"] != runs.PENDING:
        raise Conflict(f"run {run_id} is {run['status']}; only drafts and pending runs can be submitted")
    queueing.publish_submit(effects.publisher, run)
    return run
