"""Run actions, one module each, holding both halves of the action:

- the request (the API): check the caller's role on the run's team and the run's state, record the
  intent on the run in one transaction (409 with the reason where the state does not allow it; a repeat
  is a no-op that re-queues the command, so a lost publish heals itself), and publish a command;
- the execution (the run-commands consumer, shared/services/commands.py dispatches to `execute`): the
  slow cloud work. It re-reads the run and does nothing unless the run still asks for it, so
  redeliveries and stale commands are harmless.

cancel, retry, approval (approve / reject above a team's per-run cap), deploy (by hand or after
training), push_anyway, notify (queued after a run change, delivered at most once), deletion (delete /
restore); endpoint_traffic and undeploy (changes by hand on an endpoint, recorded on a run deployed to it).
What they share is here.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Iterable, Optional

from shared import log
from shared.adapters.pipelines import PipelineBackend
from shared.contract import topics
from shared.contract.messages import RunCommand
from shared.domain import canary, deployments, runs, teams
from shared.errors import Conflict, FieldError, Forbidden, PermanentError, TransientError
from shared.services import access, ports, run_writes


@dataclass(frozen=True)
class Consumer:
    """What the run-commands consumer hands an action's `execute` (built by functions/run_commands)."""

    repo: object
    pipelines: PipelineBackend
    store: object
    serving: object
    notifier: object
    effects: ports.Effects
    declared: tuple  # the deployment's teams, checked again here (the API checked them when it was asked)


def outcome(run: dict, changed: bool, message: str) -> dict:
    return {"training_run": runs.public_view(run), "changed": changed, "message": message}


def publish_command(publisher, payload: dict) -> Optional[str]:
    """Queue an action's command; a failure is a warning for the caller (the intent is recorded, so
    repeating the request queues it again)."""
    try:
        publisher.publish(topics.RUN_COMMANDS, payload, run_id=payload["run_id"], command=payload["command"])
        return None
    except TransientError as exc:
        log.error("run-commands publish failed", run_id=payload["run_id"], error=str(exc))
        return f"queueing the {payload['command']} command failed ({exc}); repeat the request to queue it again"


def run_for(command: RunCommand, consumer: Consumer) -> Optional[dict]:
    run = consumer.repo.get_run(command.run_id)
    if run is None:
        log.info("command for a run that no longer exists", run_id=command.run_id, command=command.command)
    return run


def owned(declared: Iterable[teams.Team], run: dict, check) -> None:
    """Defence in depth: the run's team must still own what the command touches; a refusal fails the
    action with its reason (PermanentError), as any other reason the cloud gives."""
    try:
        check(access.declared_team(declared, run.get("team")))
    except (Forbidden, FieldError) as exc:
        raise PermanentError(f"refused: {exc}") from None


def queue_endpoint_change(effects, run: dict, payload: dict, message: str) -> dict:
    """Publish an endpoint change's command on its acting run (the run-commands consumer carries it out) and
    answer as the run actions do: a failed publish is a warning, and repeating the request queues it again."""
    warning = publish_command(effects.publisher, {**payload, "run_id": run["id"], "change_id": uuid.uuid4().hex[:12]})
    return {"changed": True, "message": message, "run_id": run["id"], "warnings": [warning] if warning else []}


def record_endpoint_change(consumer, run: dict, command, action: str, model_id: Optional[str], before: dict,
                           after: dict) -> Optional[dict]:
    """The change in the acting run's endpoint history, once per command (a redelivery finds it there)."""
    entry = canary.history_entry(runs.now(), command.requested_by or "?", action, command.endpoint, model_id,
                                 before, after, command.reason)
    return run_writes.write(consumer.repo, run["id"],
                            lambda doc: deployments.endpoint_changed(doc, command.change_id, entry))


def carry_endpoint_change(command: RunCommand, consumer: Consumer, action: str, model_id: Optional[str],
                          change) -> str:
    """Carry out a change by hand on an endpoint (`change(endpoints, split now) -> split after`) for the command's
    run, whose team must still own the endpoint (defence in depth, as a rollback's), and record it once. A
    refusal (the endpoint changed meanwhile, or is no longer the team's) is logged and acknowledged."""
    run = run_for(command, consumer)
    if run is None:
        return "skipped"
    endpoints = consumer.serving.endpoints
    try:
        owned(consumer.declared, run, lambda team: access.check_endpoint(
            team, (run.get("deployment") or {}).get("endpoint_id"), "endpoint_id"))
        before = endpoints.traffic(command.endpoint)
        after = change(endpoints, before)
    except (PermanentError, Conflict, FieldError) as exc:
        log.error(f"{action} refused", run_id=run["id"], endpoint=command.endpoint, error=str(exc))
        return "refused"
    record_endpoint_change(consumer, run, command, action, model_id, before, after)
    log.info(f"endpoint {action}", run_id=run["id"], endpoint=command.endpoint, traffic=after)
    return action
