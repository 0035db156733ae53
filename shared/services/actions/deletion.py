"""Delete a run (soft: restorable within its grace period, then purged by the reconciler) and restore it.
No consumer half."""
from __future__ import annotations

from datetime import timedelta

from shared.adapters.repository import Repository
from shared.domain import runs, teams
from shared.domain.teams import Caller
from shared.errors import Conflict, NotFound
from shared.services import access, run_writes
from shared.services.actions import outcome


def delete(repo: Repository, run_id: str, who: Caller, grace_days: float) -> dict:
    """A soft delete: the run leaves every list and read at once; its document and artifacts stay until the
    grace period ends (the reconciler then purges both: shared/services/reconcile.py), and
    POST …/restore brings it back until then. Refused while its model is deploying, deployed or pushing.
    Needs admin on the run's team."""
    access.run(repo, who, run_id, teams.ADMIN, "deleting a run", deleted_ok=True)
    identity = who.email

    def decide(doc):
        if runs.is_deleted(doc):
            return None  # a repeat: the first delete's grace period stands
        why = runs.delete_refusal(doc)
        if why:
            raise Conflict(f"run {run_id} cannot be deleted: {why}")
        at = runs.now()
        return runs.soft_delete(doc, identity, at, at + timedelta(days=grace_days))

    updated = run_writes.write(repo, run_id, decide)
    run = updated or repo.get_run(run_id)
    if run is None:
        raise NotFound(f"training run {run_id}")
    until = run["purge_after"]
    return {"deleted": run_id, "changed": updated is not None, "deleted_at": run["deleted_at"],
            "deleted_by": run["deleted_by"], "purge_after": until,
            "message": f"deleted; restorable until {until.isoformat()} (POST /api/training-runs/{run_id}/restore)"}


def restore(repo: Repository, run_id: str, who: Caller) -> dict:
    """A deleted run back as it was, within its grace period; a repeat (or a run never deleted) changes nothing.
    Needs admin on the run's team, as the delete did."""
    access.run(repo, who, run_id, teams.ADMIN, "restoring a run", deleted_ok=True)
    identity = who.email
    def decide(doc):
        if doc.get("purging"):
            raise Conflict(f"run {run_id} cannot be restored: its grace period is over and it is being purged")
        return runs.restore(doc, identity, runs.now())

    updated = run_writes.write(repo, run_id, decide)  # NotFound once purged
    run = updated or repo.get_run(run_id)
    if run is None:
        raise NotFound(f"training run {run_id}")
    return outcome(run, updated is not None, "restored" if updated is not None else "not deleted; nothing to restore")
