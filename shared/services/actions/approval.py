"""Approve or reject a run waiting above its team's per-run cap (an admin of the team; the routes check it,
shared/http/spend_routes.py). No consumer half: an approved run is queued for submission."""
from __future__ import annotations

from shared.adapters.repository import Repository
from shared.domain import runs
from shared.errors import Conflict, FieldError
from shared.services import lifecycle, ports, queueing, spending
from shared.services.run_data import get_run


def approve(repo: Repository, effects: ports.Effects, run_id: str, identity: str, settings=None) -> dict:
    """awaiting_approval → pending and queued, reserved on the ledger (the month's budget still applies)."""
    run = get_run(repo, run_id)
    if run["status"] != runs.AWAITING_APPROVAL:
        if run.get("approval", {}).get("approved_by"):
            return run  # a repeat
        raise Conflict(f"run {run_id} is {run['status']}; only a run awaiting approval can be approved")
    at = runs.now()
    admitted = spending.admit(repo, run, run_id, settings, at, approval_needed=False)

    moved, changed = lifecycle.move_or_read(repo, run_id, lambda doc: runs.approve(doc, admitted.get("spend"), identity, at),
                                            effects)
    if not changed and moved.get("spend", {}).get("key") != (admitted.get("spend") or {}).get("key"):
        spending.release(repo, admitted, at)
    if moved["status"] == runs.PENDING:
        queueing.queue_submit(effects.publisher, moved)
    return moved


def reject(repo: Repository, effects: ports.Effects, run_id: str, identity: str, body) -> dict:
    """awaiting_approval → cancelled, with the admin's reason on the run."""
    body = body if body is not None else {}
    reason = body.get("reason", "") if isinstance(body, dict) else None
    if not isinstance(reason, str) or len(reason) > 2000 or (isinstance(body, dict) and set(body) - {"reason"}):
        raise FieldError.one("reason", "an optional string of at most 2000 characters (the only field)")
    at = runs.now()

    run, _ = lifecycle.move_or_read(repo, run_id, lambda doc: runs.reject(doc, identity, at, reason), effects)
    return run
