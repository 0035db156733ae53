"""The ports what follows a run change reaches (shared/services/lifecycle.after_change), as one typed object
built once per process in shared/composition.py: there is no mode in which they are silently absent."""
from __future__ import annotations

from dataclasses import dataclass

from shared.adapters.messaging import Publisher
from shared.adapters.scheduler_jobs import SchedulerJobs


@dataclass(frozen=True)
class Effects:
    """The publisher (notifications, an automatic deploy, a released run's submit) and the schedules' jobs
    (paused when a run auto-pauses its schedule)."""

    publisher: Publisher
    scheduler_jobs: SchedulerJobs
