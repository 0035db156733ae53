"""Run actions, one module each, holding both halves of the action:

- the request (the API): check the caller's role on the run's team and the run's state, record the
  intent on the run in one transaction (409 with the reason where the state does not allow it; a repeat
  is a no-op that re-queues the command, so a lost publish heals itself), and publish a command;
- the execution (the run-commands consumer, shared/services/commands.py dispatches to `execute`): the
  slow cloud work. It re-reads the run and does nothing unless the run still asks for it, so
  redeliveries and stale commands are harmless.

cancel, retry, approval (approve / reject above a team's per-run cap), deploy (by hand or after
training), push_anyway, notify (queued after a run change, delivered at most once), deletion (delete /
restore). What they share is here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from shared import log
from shared.adapters.pipelines import PipelineBackend
from shared.contract import topics
from shared.contract.messages import RunCommand
from shared.domain import runs, teams
from shared.errors import FieldError, Forbidden, PermanentError, TransientError
from shared.services import access, ports


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
