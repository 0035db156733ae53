"""The spend guard at work (shared/domain/spend.py has the rules; docs/security.md "Spend guard").

A run is admitted before it is queued — at create, draft submit, retry, approval and each schedule slot:
its estimate is reserved on its team's ledger for this month in one transaction (two admissions against
the last of a budget serialise there: one passes, the other is refused), or it waits for an admin's approval
when it is above the team's per-run cap, or it is refused (OverBudget, HTTP 409 `over_budget`). When the
attempt ends, its measured cost replaces the reservation (`settle`, from lifecycle.after_change, so every
path that ends a run settles it; idempotent, as each consumer may see a change twice or late).
A team without any cap (the local demo team) is not estimated at all.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from shared import log
from shared.domain import runs, spend, teams
from shared.domain.spend import OverBudget, RunCost
from shared.adapters.repository import Repository
from shared.services import costing


def settings_or_default(settings):
    if settings is None:
        from shared.settings import get_settings

        settings = get_settings()
    return settings


def guarded_team(settings, run: dict) -> Optional[teams.Team]:
    """The run's team when it has a budget or a per-run cap; None: nothing to guard."""
    team = teams.by_name(settings.teams, run.get("team") or "")
    if team is None or team.budget == teams.Budget():
        return None
    return team


def quote(repo: Repository, settings, team: teams.Team, run: dict) -> RunCost:
    """What `run` would cost, from the team's history (shared/domain/spend.estimate_run)."""
    history = [r for r in repo.list_runs({"team": team.name}, spend.HISTORY_RUNS)
               if runs.is_terminal(r.get("status", "")) and r.get("id") != run.get("id")]
    return spend.estimate_run(run, history, costing.price_table(settings.price_table), settings.region,
                              settings.spend_epoch_seconds)


def admit(repo: Repository, run: dict, run_id: str, settings=None, at: Optional[datetime] = None,
          approval_needed: bool = True) -> dict:
    """`run` (its next attempt) as admitted: reserved on the ledger (`spend` says where), or
    `awaiting_approval` above the team's per-run cap. Raises OverBudget over the month's budget."""
    settings = settings_or_default(settings)
    team = guarded_team(settings, run)
    if team is None:
        return run
    at = at or runs.now()
    month, key = spend.month_of(at), spend.entry_key(run_id, run.get("attempt", 1))
    run_cost = quote(repo, settings, team, run)
    # Over the month's budget is a refusal even above the per-run cap: an approval could not make it fit.
    spend.check_month(repo.get_ledger(team.name, month), team.name, month, team.budget, run_cost, leave_out=key)
    reason = spend.over_run_cap(team.budget, run_cost) if approval_needed else None
    if reason:
        log.info("run awaits approval", run_id=run_id, team=team.name, reason=reason)
        return {**run, "status": runs.AWAITING_APPROVAL,
                "approval": {"reason": reason, "estimate": run_cost.as_dict(), "requested_at": at}}
    repo.mutate_ledger(team.name, month, lambda ledger: spend.reserve(ledger, team.name, month, key, run_cost,
                                                                      team.budget, at))
    return {**run, "spend": {"team": team.name, "month": month, "key": key, "estimate": run_cost.as_dict()}}


def release(repo: Repository, run: dict, at: Optional[datetime] = None) -> None:
    """Give back the reservation of an admission that stored nothing (a failed create)."""
    held = run.get("spend")
    if held:
        repo.mutate_ledger(held["team"], held["month"], lambda ledger: spend.settle(
            ledger, held["team"], held["month"], held["key"], 0.0, 0.0, at or runs.now()))


def settle(repo: Repository, run: Optional[dict], at: Optional[datetime] = None) -> None:
    """A run that ended: its attempt's measured cost replaces its reservation (0 for one that never ran)."""
    held = (run or {}).get("spend")
    if not held or not runs.is_terminal(run.get("status", "")) or \
            held.get("key") != spend.entry_key(run["id"], run.get("attempt", 1)):
        return
    used = spend.measured(run)
    if used is None:  # it ran but its cost is not known: the (conservative) reservation stands
        log.warning("run ended without a measured cost; its spend reservation stands", run_id=run["id"])
        return
    repo.mutate_ledger(held["team"], held["month"], lambda ledger: spend.settle(
        ledger, held["team"], held["month"], held["key"], used[0], used[1], at or runs.now()))


def month_view(repo: Repository, settings, team_name: str, at: Optional[datetime] = None) -> dict:
    """The team's budget and what is spent or reserved this month (GET /api/teams/{team}/spend)."""
    settings = settings_or_default(settings)
    team = teams.by_name(settings.teams, team_name)
    month = spend.month_of(at or runs.now())
    ledger = repo.get_ledger(team_name, month)
    return {"team": team_name, "month": month, "budget": spend.budget_view(team.budget) if team else None,
            "spent": spend.totals(ledger),
            "entries": {k: {**e} for k, e in ((ledger or {}).get("entries") or {}).items()}}


__all__ = ["OverBudget", "admit", "release", "settle", "quote", "month_view", "guarded_team"]
