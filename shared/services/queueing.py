"""Queueing a run for submission: its `run-submit` message. Every place that makes a run pending
(create, retry, a schedule releasing a run, resubmit) queues it here; the submitter's claim makes a
duplicate message harmless."""
from __future__ import annotations

from shared import log
from shared.contract import topics
from shared.errors import TransientError
from shared.adapters.messaging import Publisher


def publish_submit(publisher: Publisher, run: dict) -> None:
    """Raises TransientError when the publish fails (a consumer's delivery then comes again)."""
    publisher.publish(topics.RUN_SUBMIT, {"run_id": run["id"], "attempt": run["attempt"]}, run_id=run["id"])


def queue_submit(publisher: Publisher, run: dict) -> None:
    """For a request in hand: a failed publish becomes a warning on the returned run, never an error."""
    try:
        publish_submit(publisher, run)
    except TransientError as exc:
        # The run is stored and pending; POST …/submit queues it again. Nothing is lost.
        log.error("run-submit publish failed", run_id=run["id"], error=str(exc))
        run.setdefault("warnings", []).append(
            f"queueing for submission failed ({exc}); POST /api/training-runs/{run['id']}/submit to retry")
