"""A canary's watch: the reconciler sends `canary_check` for every deployment in `canary` each pass
(shared/services/reconcile.py; Cloud Scheduler drives it in the cloud, the local ticker locally). The
run-commands consumer reads what the new deployed model served since the watch began (serving metrics:
Cloud Monitoring on Vertex, the prediction server's counters locally) and acts on the verdict of
shared/domain/canary.py `judge`: wait (the figures are kept on the canary), promote (100 %), or roll back
(actions/rollback.py). A repeat or a late check of a canary decided already is skipped: the state only
moves forward."""
from __future__ import annotations

from shared import log
from shared.contract.messages import RunCommand
from shared.domain import canary, deployments, runs
from shared.errors import PermanentError
from shared.services import run_writes
from shared.services.actions import Consumer, run_for
from shared.services.actions.rollback import roll_back


def execute(command: RunCommand, consumer: Consumer) -> str:
    run = run_for(command, consumer)
    deployment = (run or {}).get("deployment") or {}
    watched = deployment.get("canary") or {}
    if (run is None or deployment.get("id") != command.deployment_id or deployment.get("status") != deployments.CANARY
            or watched.get("status") != canary.WATCHING):
        return "skipped"
    repo, endpoints, name = consumer.repo, consumer.serving.endpoints, deployment["endpoint_resource_name"]
    at = runs.now()
    seen = consumer.serving.metrics.read(name, deployment["deployed_model_id"], watched["watch_started_at"], at)
    verdict = canary.judge(watched, seen, at)
    if verdict.action == canary.ROLLBACK:
        log.warning("canary breached its limits", run_id=run["id"], endpoint=name, reason=verdict.reason)
        decided = run_writes.write(repo, run["id"], lambda doc: deployments.request_rollback(
            doc, deployments.AUTOMATIC_WATCHER, verdict.reason, at, automatic=True, seen=seen.as_dict()))
        return roll_back(decided, consumer) if decided else "skipped"
    if verdict.action == canary.PROMOTE:
        try:
            before = endpoints.traffic(name)
            wanted = canary.promoted(before, deployment["deployed_model_id"])
            after = endpoints.set_traffic(name, wanted) if before != wanted else before
        except PermanentError as exc:  # still watched: the next pass tries again, the error kept meanwhile
            run_writes.write(repo, run["id"], lambda doc: deployments.checked(
                doc, deployment["id"], {**seen.as_dict(), "error": f"promoting failed: {exc}"}, at))
            log.error("canary promotion failed", run_id=run["id"], endpoint=name, error=str(exc))
            return "watching"
        run_writes.write(repo, run["id"], lambda doc: deployments.promoted(
            doc, deployment["id"], before, after, seen.as_dict(), verdict.reason, at))
        log.info("canary promoted", run_id=run["id"], endpoint=name, reason=verdict.reason)
        return "promoted"
    run_writes.write(repo, run["id"], lambda doc: deployments.checked(doc, deployment["id"], seen.as_dict(), at))
    return "watching"
