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
3. store: now → `pending` and queued for submission; with a future `scheduled_at` → a one-time schedule
   and its run, `scheduled` (shared/services/scheduling.schedule_run), with the same schedules adapter as
   `POST /api/training/schedules`.
"""
from __future__ import annotations

import concurrent.futures
from datetime import datetime
from typing import Any, Iterable, Optional

from shared.domain import runs, teams
from shared.domain.teams import Caller
from shared import log
from shared.errors import Conflict, FieldError
from shared.adapters.messaging import Publisher
from shared.adapters.repository import Repository
from shared.services import queueing, run_builder, scheduling
from shared.services.run_data import get_run


def create_run(repo: Repository, publisher: Publisher, body: Any, who: Caller, declared: Iterable[teams.Team],
               jobs=None, run_data=None, settings=None, run_id: Optional[str] = None,
               at: Optional[datetime] = None) -> dict:
    """A run owned by the team the body names (or the caller's only team where they are trainer);
    `declared` is the deployment's teams. `run_data` and `settings` enable the GPU quota pre-flight
    (the API gives them; tests may not)."""
    at = at or runs.now()
    team = teams.team_for_new(who, run_builder.requested_team(body), declared, teams.TRAINER, "creating a run")
    identity = who.email
    request, doc = run_builder.build_run(repo, body, identity, at, team)
    warning = quota_warning(run_data, doc, settings) if run_data is not None and settings is not None else None
    if warning:
        doc = {**doc, "warnings": [*doc.get("warnings", []), warning]}
    if request.draft:  # kept, not queued: POST /api/training-runs/{id}/submit sends it on
        if doc["scheduled_at"] is not None:
            raise FieldError.one("draft", "a draft is not scheduled: leave scheduled_at out and submit the draft later")
        stored, _ = repo.create_run({**doc, "status": runs.DRAFT}, counter_key=run_builder.run_counter(settings),
                                    run_id=run_id or run_builder.new_run_id())
        return stored
    if doc["scheduled_at"] is not None:
        return scheduling.schedule_run(repo, request, doc, identity, at, jobs)
    stored, created = repo.create_run(doc, counter_key=run_builder.run_counter(settings),
                                      run_id=run_id or run_builder.new_run_id())
    if created:
        queueing.queue_submit(publisher, stored)
    return stored


# Pre-flight checks run here so a create can stop waiting for one; a few workers, as a slow check holds one.
_PREFLIGHT = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="gpu-preflight")


def quota_warning(sources, run: dict, settings) -> Optional[str]:
    """A warning (never a refusal) when the GPU quota cannot cover the run, or was not read in time."""
    gpu = run.get("gpu_config") or {}
    try:
        gpus = gpu["gpu_count"] * gpu.get("machine_count", 1)  # every machine of the Trainer holds gpu_count
        check = _PREFLIGHT.submit(sources.gpu_quota.check, settings.region, gpu["gpu_type"], gpus,
                                  gpu.get("preemptible", True)).result(timeout=settings.preflight_deadline_s)
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


def _submitted(doc: dict) -> Optional[dict]:
    return {**doc, "status": runs.PENDING} if doc["status"] == runs.DRAFT else None


def submit_run(repo: Repository, publisher: Publisher, run_id: str) -> dict:
    """Submit a draft (draft → pending), or queue a pending run again (e.g. after a failed publish).
    Idempotent: the submitter's claim makes a repeated message harmless."""
    get_run(repo, run_id)  # 404 for an unknown run
    run = repo.mutate_run(run_id, _submitted) or get_run(repo, run_id)
    if run["status"] != runs.PENDING:
        raise Conflict(f"run {run_id} is {run['status']}; only drafts and pending runs can be submitted")
    queueing.publish_submit(publisher, run)
    return run
