"""The local stand-in for Cloud Scheduler: publishes {"schedule_id": id} to `schedule-trigger` (on
the Pub/Sub emulator) when an active schedule's next_run_at comes, as its Cloud Scheduler job would.

    python -m scripts.ticker            # started and stopped by `make up` / `make down`

It reads the schedules from Firestore (active, next_run_at <= now: the same composite index the
cloud has) and publishes each slot once; functions/scheduler advances next_run_at. Like a paused
Cloud Scheduler job, it never fires a paused schedule. TRAINYARD_TICKER_INTERVAL_S sets how often
it looks (default 0.5 s). Every TRAINYARD_RECONCILE_INTERVAL_S (default 60 s) it also publishes to
`reconcile`, as Cloud Scheduler's reconcile job does in the cloud (terraform/reconciler.tf).
"""
from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.domain import runs  # noqa: E402
from shared import log
from shared.contract import topics
from shared.errors import TransientError  # noqa: E402
from shared.adapters.scheduler_jobs import trigger_payload  # noqa: E402

BATCH = 500


class Ticker:
    def __init__(self, repo, publisher, clock: Callable[[], datetime] = runs.now):
        self.repo = repo
        self.publisher = publisher
        self.clock = clock
        self.published: dict[str, datetime] = {}  # schedule id → the slot last published

    def tick(self, at: Optional[datetime] = None) -> list[tuple[str, datetime]]:
        """Publish one trigger for every due slot not published yet. Returns what was published."""
        at = at or self.clock()
        sent = []
        for schedule in self.repo.due_schedules(at, BATCH):
            slot = schedule["next_run_at"]
            if self.published.get(schedule["id"]) == slot:
                continue  # published; functions/scheduler has not moved next_run_at on yet
            try:
                message_id = self.publisher.publish(topics.SCHEDULE_TRIGGER, trigger_payload(schedule["id"]),
                                                    schedule_id=schedule["id"])
            except TransientError as exc:
                log.warning("ticker publish failed; retrying on the next tick", schedule_id=schedule["id"],
                            error=str(exc))
                continue
            self.published[schedule["id"]] = slot
            sent.append((schedule["id"], slot))
            log.info("schedule triggered", schedule_id=schedule["id"], slot=slot, message_id=message_id)
        return sent


def main() -> int:
    from shared.composition import root

    from scripts.poll_loop import run_until_stopped

    settings = root.settings
    ticker = Ticker(root.repo, root.publisher)
    next_reconcile = [time.monotonic() + settings.reconcile_interval_s]

    def step():
        ticker.tick()
        if time.monotonic() >= next_reconcile[0]:
            next_reconcile[0] = time.monotonic() + settings.reconcile_interval_s
            root.publisher.publish(topics.RECONCILE, {"at": runs.now().isoformat()})

    return run_until_stopped("ticker", settings.ticker_interval_s, step, project=settings.project)


if __name__ == "__main__":
    sys.exit(main())
