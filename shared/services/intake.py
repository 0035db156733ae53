"""A new run, now or later: the one way `POST /api/training-runs` becomes a stored run.

1. build: validate, inherit from the base experiment, default (shared/services/runs.build_run);
   a draft (`"draft": true`) is stored as it is and goes no further until it is submitted;
2. pre-flight: the run's GPUs against the project's quota — short is a warning on the run, never a
   refusal (the quota may be raised before the run reaches Train; an unreadable quota says nothing);
3. store: now → `pending` and queued for submission; with a future `scheduled_at` → a one-time schedule
   and its run, `scheduled` (shared/services/schedules.schedule_run), with the same schedules adapter as
   `POST /api/training/schedules`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from shared import runs, structured_log as log
from shared.errors import FieldError
from shared.messaging import Publisher
from shared.repository import Repository
from shared.services import queueing, runs as run_service, schedules as schedule_service


def create_run(repo: Repository, publisher: Publisher, body: Any, identity: str, jobs=None, run_data=None,
               settings=None, run_id: Optional[str] = None, at: Optional[datetime] = None) -> dict:
    """`run_data` and `settings` enable the GPU quota pre-flight (the API gives them; tests may not)."""
    at = at or runs.now()
    request, doc = run_service.build_run(repo, body, identity, at)
    warning = quota_warning(run_data, doc, settings) if run_data is not None and settings is not None else None
    if warning:
        doc = {**doc, "warnings": [*doc.get("warnings", []), warning]}
    if request.draft:  # kept, not queued: POST /api/training-runs/{id}/submit sends it on
        if doc["scheduled_at"] is not None:
            raise FieldError.one("draft", "a draft is not scheduled: leave scheduled_at out and submit the draft later")
        stored, _ = repo.create_run({**doc, "status": runs.DRAFT}, counter_key=request.name,
                                    run_id=run_id or run_service.new_run_id())
        return stored
    if doc["scheduled_at"] is not None:
        return schedule_service.schedule_run(repo, request, doc, identity, at, jobs)
    stored, created = repo.create_run(doc, counter_key=request.name, run_id=run_id or run_service.new_run_id())
    if created:
        queueing.queue_submit(publisher, stored)
    return stored


def quota_warning(sources, run: dict, settings) -> Optional[str]:
    """A warning (never a refusal) when the GPU quota cannot cover the run."""
    gpu = run.get("gpu_config") or {}
    try:
        gpus = gpu["gpu_count"] * gpu.get("machine_count", 1)  # every machine of the Trainer holds gpu_count
        check = sources.gpu_quota.check(settings.region, gpu["gpu_type"], gpus, gpu.get("preemptible", True))
    except Exception as exc:  # noqa: BLE001 — the pre-flight is advice: it never turns a create into an error
        log.warning("gpu quota pre-flight failed", run_name=run.get("name"), error=repr(exc))
        return None
    if check.get("sufficient") is False:
        return f"GPU quota: {check['message']}. The run is queued and will fail at Train unless quota is added."
    return None
