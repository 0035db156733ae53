"""GPU fallback at work: a run that failed at Train for quota or capacity moves on by itself to its next shape.

No request half: lifecycle.after_change queues the command for every run that ended that way with a shape
left (so every path that fails a run, a redelivered event included, gets here), and holds back what follows
a run's end (its notification, its schedule's count). The execution (the run-commands consumer) starts the
next attempt as a retry (shared/services/actions/retry.start) on behalf of Trainyard, for the attempt that
failed: it resumes from the checkpoint exactly as a retry does and the spend guard admits it as any
attempt; a second delivery finds the run on its next attempt and starts nothing. A refusal by the spend
guard stops the fallback: the run stays failed with an error naming each shape tried and why it failed
(shared/domain/gpu_fallback.py), and its end is announced then.
"""
from __future__ import annotations

from shared import log
from shared.contract.messages import RunCommand
from shared.domain import gpu_fallback
from shared.domain.spend import OverBudget
from shared.services import lifecycle
from shared.services.actions import Consumer, notify, retry, run_for


def execute(command: RunCommand, consumer: Consumer) -> str:
    run = run_for(command, consumer)
    if run is None or run.get("attempt") != command.attempt or gpu_fallback.next_config(run) is None:
        return "ignored"  # moved on already (a redelivered command), or nothing left to fall back to
    try:
        started = retry.start(consumer.repo, consumer.effects, run["id"], gpu_fallback.AUTOMATIC_RETRIER,
                              retry.RetryBody(attempt=run["attempt"], gpu_config=gpu_fallback.next_config(run)))
    except OverBudget as exc:
        reason = gpu_fallback.stopped_by(str(exc))
        stopped = lifecycle.move_run(consumer.repo, run["id"], lambda doc: gpu_fallback.stop(doc, reason)
                                     if doc["attempt"] == run["attempt"] else None, consumer.effects)
        if stopped is not None:  # the run's end, held back while it could move on, is announced now
            notify.queue(consumer.effects.publisher, None, stopped)
        log.warning("gpu fallback stopped by the spend guard", run_id=run["id"], reason=str(exc))
        return "stopped"
    attempt = started["training_run"]["attempt"]
    log.info("gpu fallback: next attempt", run_id=run["id"], attempt=attempt,
             shape=gpu_fallback.describe(gpu_fallback.shape_of(started["training_run"]["gpu_config"])),
             cause=gpu_fallback.cause(run))
    return "started" if started["changed"] else "ignored"
