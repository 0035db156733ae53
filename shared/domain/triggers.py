"""What started a run's current attempt: the run's `trigger` (shared/domain/run_document.py Trigger), set where
each attempt begins — a person through the API or the CLI (intake), a schedule's clock, run now, or new data
(scheduling), a retry or a GPU fallback (actions/retry.py). A retry's or fallback's trigger keeps what started the
run's first attempt under `first`. `describe` says it in words (`trainyard runs get`)."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

MANUAL, SCHEDULE, RUN_NOW, DATA, RETRY, GPU_FALLBACK = "manual", "schedule", "run_now", "data", "retry", "gpu_fallback"
KINDS = (MANUAL, SCHEDULE, RUN_NOW, DATA, RETRY, GPU_FALLBACK)
CLI, API = "cli", "api"
CLI_USER_AGENT = "trainyard-cli"  # trainyard_cli/client.py sends it; anything else (the dashboard, curl) is the API
SCHEDULE_CLOCK = "trainyard (schedule)"


def via(user_agent: Optional[str]) -> str:
    """Which client asked (shown, never trusted: the caller is who their token says)."""
    return CLI if (user_agent or "").startswith(CLI_USER_AGENT) else API


def manual(by: str, at: datetime, client: Optional[str] = None) -> dict:
    return {"kind": MANUAL, "by": by, "at": at, "via": client, "attempt": 1}


def scheduled(schedule_id: str, slot: datetime, at: datetime, by: Optional[str] = None,
              data: Optional[dict] = None) -> dict:
    """A schedule's run: new data (`data`, the event), run now (`by`, who pressed it), else its clock's slot."""
    kind = DATA if data else RUN_NOW if by else SCHEDULE
    return {"kind": kind, "by": by or SCHEDULE_CLOCK, "at": at, "attempt": 1, "schedule_id": schedule_id,
            "slot": slot, "data": data}


def retried(doc: dict, by: str, at: datetime, attempt: int, automatic_retrier: str) -> dict:
    """The next attempt's trigger: a retry by `by`, or a GPU fallback when Trainyard retried it."""
    started = doc.get("trigger") or {}
    first = started.get("first") or ({k: v for k, v in started.items() if k != "first"} or None)
    return {"kind": GPU_FALLBACK if by == automatic_retrier else RETRY, "by": by, "at": at, "attempt": attempt,
            "first": first}


def describe(trigger: Optional[dict]) -> Optional[str]:
    """One line for people: what started this attempt, and for a retry what started the run."""
    if not trigger:
        return None
    kind, by, data = trigger.get("kind"), trigger.get("by"), trigger.get("data") or {}
    words = {
        MANUAL: lambda: f"manual, by {by}" + (f" ({trigger['via'].upper()})" if trigger.get("via") else ""),
        SCHEDULE: lambda: f"schedule {trigger.get('schedule_id')}, slot {_time(trigger.get('slot'))}",
        RUN_NOW: lambda: f"run now on schedule {trigger.get('schedule_id')}, by {by}",
        DATA: lambda: (f"new data on schedule {trigger.get('schedule_id')}: {data.get('source')} {data.get('location')}"
                       f" (version {data.get('version')})"),
        RETRY: lambda: f"retry by {by} (attempt {trigger.get('attempt')})",
        GPU_FALLBACK: lambda: f"GPU fallback (attempt {trigger.get('attempt')})",
    }.get(kind, lambda: str(kind))()
    return words + (f"; first: {describe(trigger['first'])}" if trigger.get("first") else "")


def _time(value) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
