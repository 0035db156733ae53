"""Roll a run's deployment back: the endpoint's traffic returns to the split it had before the run's model
was deployed, and the run's model stays on the endpoint at 0 % (so it can be looked at, or promoted by
deploying it again). Asked by hand (`POST …/rollback`, deployer on the run's team, `request`) or by a
canary's breach (actions/canary_watch.py); carried out by the run-commands consumer (`execute`, `roll_back`),
which records the traffic change in the run's endpoint history."""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

from shared import log
from shared.contract.messages import ROLLBACK, RunCommand
from shared.domain import canary, deployments, runs, teams
from shared.domain.teams import Caller
from shared.errors import Conflict, PermanentError
from shared.services import access, ports, run_writes
from shared.services.actions import Consumer, notify, outcome, owned, publish_command, run_for
from shared.validation import parse


class RollbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Optional[str] = Field(None, min_length=1, max_length=500, description="why, for the endpoint history")


def request(repo, effects: ports.Effects, run_id: str, who: Caller, body: Any) -> dict:
    """Deployer on the run's team. A repeat while the rollback is under way re-queues its command (a lost
    publish heals); once rolled back it is a no-op."""
    asked = parse(RollbackBody, body if body is not None else {})
    access.run(repo, who, run_id, teams.DEPLOYER, "rolling back a run's deployment")
    reason = asked.reason or f"rolled back by hand by {who.email}"
    run, changed = run_writes.write_or_read(
        repo, run_id, lambda doc: deployments.request_rollback(doc, who.email, reason, runs.now(), automatic=False))
    deployment = run.get("deployment") or {}
    warning = None
    if deployment.get("status") == deployments.ROLLING_BACK:
        warning = publish_command(effects.publisher, {"command": ROLLBACK, "run_id": run_id,
                                                      "deployment_id": deployment["id"]})
    message = ("rolling back" if changed else f"already {deployment.get('status')}") + \
        f" on {deployment.get('endpoint_resource_name') or deployment.get('endpoint_id')}"
    return {**outcome(run, changed, message), "warnings": [warning] if warning else []}


def execute(command: RunCommand, consumer: Consumer) -> str:
    run = run_for(command, consumer)
    deployment = (run or {}).get("deployment") or {}
    if run is None or deployment.get("id") != command.deployment_id or deployment.get("status") != deployments.ROLLING_BACK:
        return "skipped"  # gone, superseded, or rolled back already
    return roll_back(run, consumer)


def roll_back(run: dict, consumer: Consumer) -> str:
    """Set the endpoint's split back; idempotent (a repeat finds the split in place and sets nothing)."""
    deployment = run["deployment"]
    endpoints, name = consumer.serving.endpoints, deployment["endpoint_resource_name"]
    try:
        owned(consumer.declared, run, lambda team: access.check_endpoint(team, deployment.get("endpoint_id"), "endpoint_id"))
        before = endpoints.traffic(name)
        wanted = canary.restored(deployment.get("previous_traffic") or {}, before, deployment["deployed_model_id"])
        after = endpoints.set_traffic(name, wanted) if before != wanted else before
    except (PermanentError, Conflict) as exc:
        run_writes.write(consumer.repo, run["id"],
                         lambda doc: deployments.rollback_failed(doc, deployment["id"], str(exc), runs.now()))
        log.error("rollback failed", run_id=run["id"], endpoint=name, error=str(exc))
        return "rollback_failed"
    done = run_writes.write(consumer.repo, run["id"],
                            lambda doc: deployments.rolled_back(doc, deployment["id"], before, after, runs.now()))
    if done is not None:  # this delivery rolled it back (a repeat finds it done): its targets are told once
        notify.queue_rollback(consumer.effects.publisher, done)
    log.warning("deployment rolled back", run_id=run["id"], endpoint=name, traffic=after,
                reason=deployment["rollback"]["reason"])
    return "rolled_back"
