"""The spend guard (docs/security.md "Spend guard", docs/cost.md "Before a run: the admission estimate").

What a run would cost before it runs, a team's monthly ledger, and the checks a run meets at admission:

- `estimate_run`: GPU-hours and money for a run not yet run. The Trainer trains at most `epochs` epochs
  (early stopping only shortens it), so Train time = epochs × seconds per epoch, where seconds per epoch
  comes from the team's own history (`epoch_seconds_from`: the slowest measured epoch of the team's recent
  runs on the same GPU shape, per percent of the data sampled; else of any shape), and only for a team with
  no history from the operator's `TRAINYARD_SPEND_EPOCH_SECONDS`. The other stages take what they took in
  the team's history (their slowest). Money is priced by shared/domain/cost.py, the one price table.
- the ledger: one document per team and calendar month (UTC). Each admitted attempt holds an entry keyed
  by run and attempt: `reserved` (its estimate) until it ends, then `actual` (its measured cost) or
  `released` (it never ran). Totals are the sum of the entries, so replaying any fold changes nothing.
- `admission`: over the month's budget → OverBudget (refused); above the team's per-run cap → the run waits
  for an admin's approval (`awaiting_approval`); else it is admitted.

Everything here is pure; shared/services/spending.py reads the repository and the settings.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Optional

from croniter import croniter

from shared.domain import cost, runs
from shared.errors import Conflict, FieldError, TrainyardError

RESERVED, ACTUAL, RELEASED = "reserved", "actual", "released"
HISTORY_RUNS = 50  # the team's most recent runs read for its per-epoch time: enough to see each GPU shape


class OverBudget(TrainyardError):
    """The run would take the team past its monthly budget (HTTP 409, error `over_budget`)."""

    def __init__(self, message: str, team: str, month: str, budget: dict, spent: dict, run_cost: dict):
        super().__init__(message)
        self.team, self.month, self.budget, self.spent, self.run_cost = team, month, budget, spent, run_cost


@dataclass(frozen=True)
class RunCost:
    gpu_hours: float
    usd: float
    gpus: int
    train_hours: float
    method: str  # how the per-epoch time was found: team history (same shape / any shape) or the setting

    def as_dict(self) -> dict:
        return {"gpu_hours": round(self.gpu_hours, 3), "usd": round(self.usd, 2), "gpus": self.gpus,
                "train_hours": round(self.train_hours, 3), "method": self.method}


def month_of(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"


def gpus_of(run: dict) -> int:
    gpu = run.get("gpu_config") or {}
    return int(gpu.get("gpu_count") or 0) * int(gpu.get("machine_count") or 1)


def _shape(run: dict) -> tuple:
    gpu = run.get("gpu_config") or {}
    return gpu.get("gpu_type"), gpu.get("gpu_count"), gpu.get("machine_count") or 1


def _stage_seconds(run: dict, name: str) -> Optional[float]:
    stage = next((s for s in run.get("stage_details") or [] if s.get("name") == name), None)
    value = (stage or {}).get("duration_seconds")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def epoch_seconds_from(history: Iterable[dict], run: dict) -> tuple[Optional[float], str]:
    """Seconds per epoch at 100 % of the data for `run`'s GPU shape, from runs that trained: the slowest
    measured (an upper bound beats an average for a cap); same shape first, else any shape."""
    same, other = [], []
    for past in history:
        train, epochs = _stage_seconds(past, "Train"), past.get("current_epoch")
        if train is None or not isinstance(epochs, int) or epochs < 1:
            continue
        percent = ((past.get("training_params") or {}).get("data_sample_percent") or 100)
        per_epoch = train / epochs * 100.0 / percent
        (same if _shape(past) == _shape(run) else other).append(per_epoch)
    if same:
        return max(same), "team history, same GPU shape"
    if other:
        return max(other), "team history, another GPU shape"
    return None, "TRAINYARD_SPEND_EPOCH_SECONDS (the team has no measured run yet)"


def estimate_run(run: dict, history: list[dict], table: dict, region: str, default_epoch_seconds: float) -> RunCost:
    """What `run` would cost if it trained all its epochs (see the module's docstring)."""
    params = run.get("training_params") or {}
    per_epoch, method = epoch_seconds_from(history, run)
    per_epoch = default_epoch_seconds if per_epoch is None else per_epoch
    epochs = int(params.get("epochs") or run.get("total_epochs") or 1)
    train_s = epochs * per_epoch * (params.get("data_sample_percent") or 100) / 100.0
    stages = [{"name": "Train", "status": runs.STAGE_COMPLETED, "duration_seconds": train_s}]
    for name in cost.PRICED_STAGES:
        if name != "Train":
            seen = [s for s in (_stage_seconds(p, name) for p in history) if s is not None]
            stages.append({"name": name, "status": runs.STAGE_COMPLETED, "duration_seconds": max(seen, default=0.0)})
    priced = cost.estimate({"gpu_config": run.get("gpu_config") or {}, "stage_details": stages, "attempt": 1},
                           table, region)
    gpus = gpus_of(run)
    return RunCost(gpu_hours=gpus * train_s / 3600.0, usd=float(priced["attempt_total"]), gpus=gpus,
                   train_hours=train_s / 3600.0, method=method)


def measured(run: dict) -> Optional[tuple[float, float]]:
    """(GPU-hours, money) the run's current attempt used, from its estimated_cost (shared/services/costing.py);
    (0, 0) for an attempt that never started; None when not known (its reservation then stands)."""
    priced = run.get("estimated_cost") or {}
    if priced.get("attempt") == run.get("attempt") and priced.get("attempt_total") is not None:
        gpu_hours = sum(float(s.get("machine_hours") or 0) * int(s.get("machine_count") or 1)
                        * int(s.get("accelerator_count") or 0) for s in priced.get("stages") or [])
        return gpu_hours, float(priced["attempt_total"])
    if not run.get("started_at") and not any(s.get("started_at") and s.get("name") != "Compile"
                                             for s in run.get("stage_details") or []):
        return 0.0, 0.0
    return None


# --------------------------------------------------------------------------- the ledger (one per team-month)


def entry_key(run_id: str, attempt: int) -> str:
    return f"{run_id}-a{attempt}"


def totals(ledger: Optional[dict]) -> dict:
    entries = (ledger or {}).get("entries") or {}
    return {"gpu_hours": round(sum(e["gpu_hours"] for e in entries.values()), 3),
            "usd": round(sum(e["usd"] for e in entries.values()), 2)}


def _with(ledger: Optional[dict], team: str, month: str, key: str, entry: dict, at: datetime) -> dict:
    new = copy.deepcopy(ledger) if ledger else {"team": team, "month": month, "entries": {}}
    new["entries"][key] = entry
    new.update(totals(new), updated_at=at)
    return new


def budget_view(budget) -> dict:
    return {"gpu_hours_per_month": budget.gpu_hours_per_month, "usd_per_month": budget.usd_per_month,
            "max_gpus_per_run": budget.max_gpus_per_run, "max_usd_per_run": budget.max_usd_per_run}


def check_month(ledger: Optional[dict], team: str, month: str, budget, run_cost: RunCost,
                leave_out: Optional[str] = None) -> None:
    """OverBudget when the run's estimate does not fit what is left of the month's budget."""
    spent = totals({"entries": {k: e for k, e in ((ledger or {}).get("entries") or {}).items() if k != leave_out}})
    over = []
    if budget.gpu_hours_per_month is not None and spent["gpu_hours"] + run_cost.gpu_hours > budget.gpu_hours_per_month:
        over.append("GPU-hours")
    if budget.usd_per_month is not None and spent["usd"] + run_cost.usd > budget.usd_per_month:
        over.append("money")
    if over:
        raise OverBudget(
            f"over the monthly budget ({' and '.join(over)}) of team {team!r} for {month}: the budget is "
            f"{_amount(budget.gpu_hours_per_month, budget.usd_per_month)}; spent or reserved this month "
            f"{_amount(spent['gpu_hours'], spent['usd'])}; this run would cost "
            f"{_amount(run_cost.gpu_hours, run_cost.usd)} ({run_cost.gpus} GPUs for {run_cost.train_hours:.1f} h "
            f"of training; per-epoch time from {run_cost.method})",
            team, month, budget_view(budget), spent, run_cost.as_dict())


def _amount(gpu_hours: Optional[float], usd: Optional[float]) -> str:
    hours = "no GPU-hour cap" if gpu_hours is None else f"{gpu_hours:,.1f} GPU-hours"
    money = "no money cap" if usd is None else f"{usd:,.2f} USD"
    return f"{hours} / {money}"


def reserve(ledger: Optional[dict], team: str, month: str, key: str, run_cost: RunCost, budget,
            at: datetime) -> Optional[dict]:
    """Hold the run's estimate (None: already held — a repeated admission). OverBudget when it does not fit."""
    if ledger and key in (ledger.get("entries") or {}):
        return None
    check_month(ledger, team, month, budget, run_cost)
    return _with(ledger, team, month, key, {"state": RESERVED, "gpu_hours": round(run_cost.gpu_hours, 4),
                                            "usd": round(run_cost.usd, 4), "at": at}, at)


def settle(ledger: Optional[dict], team: str, month: str, key: str, gpu_hours: float, usd: float,
           at: datetime) -> Optional[dict]:
    """The attempt's measured cost replaces its reservation (0 and 0: released). The same fold twice, or a
    late one after another, writes the same entry: None when nothing changes."""
    state = RELEASED if gpu_hours == 0 and usd == 0 else ACTUAL
    entry = {"state": state, "gpu_hours": round(gpu_hours, 4), "usd": round(usd, 4)}
    old = ((ledger or {}).get("entries") or {}).get(key)
    if old and all(old.get(k) == v for k, v in entry.items()):
        return None
    return _with(ledger, team, month, key, {**entry, "at": at}, at)


def over_run_cap(budget, run_cost: RunCost) -> Optional[str]:
    """Why the run needs an admin's approval (above the team's per-run cap), or None."""
    if budget.max_gpus_per_run is not None and run_cost.gpus > budget.max_gpus_per_run:
        return f"{run_cost.gpus} GPUs is above the team's cap of {budget.max_gpus_per_run} GPUs per run"
    if budget.max_usd_per_run is not None and run_cost.usd > budget.max_usd_per_run:
        return (f"an estimated {run_cost.usd:,.2f} USD is above the team's cap of {budget.max_usd_per_run:,.2f} USD "
                f"per run")
    return None


# --------------------------------------------------------------------------- schedules

# A leap year from a Monday: every day of the month, month and weekday combination a cron can name occurs.
_WINDOW_START, _WINDOW = datetime(2024, 1, 1), timedelta(days=366)


def smallest_gap_minutes(cron_expression: str, floor_minutes: float) -> float:
    """The smallest gap between two slots of the cron expression over a year (in UTC wall time; stops at
    the first gap below `floor_minutes`, which is all a check needs)."""
    it = croniter(cron_expression, _WINDOW_START)
    previous = it.get_next(datetime)
    smallest = float("inf")
    while previous < _WINDOW_START + _WINDOW:
        current = it.get_next(datetime)
        smallest = min(smallest, (current - previous).total_seconds() / 60.0)
        if smallest < floor_minutes:
            break
        previous = current
    return smallest


DAY_MINUTES, WEEK_MINUTES = 24 * 60, 7 * 24 * 60
NEVER_PAUSE_MIN_GAP = DAY_MINUTES  # auto_pause_after_failures=0 wastes at most ~31 failing runs a month


def slot_gap_minutes(schedule: dict, floor_minutes: float) -> Optional[float]:
    """The smallest gap between the schedule's slots in minutes (None: a one-time schedule). Daily and weekly
    slots are a day / a week apart in wall time (a DST change moves one by an hour)."""
    kind = schedule["schedule_type"]
    if kind in ("once", "data"):  # a data schedule's gap is its trigger's min_interval_minutes (scheduling.py)
        return None
    if kind == "daily":
        return float(DAY_MINUTES)
    if kind == "weekly":
        return float(WEEK_MINUTES)
    return smallest_gap_minutes(schedule["cron_expression"], max(floor_minutes, NEVER_PAUSE_MIN_GAP))


def schedule_problems(schedule: dict, limits, active_of_team: int) -> None:
    """FieldError naming the field when the schedule's slots are closer than the team's minimum interval or it
    never auto-pauses while firing more than daily; Conflict when the team already has `max_active` schedules."""
    gap = slot_gap_minutes(schedule, limits.min_interval_minutes)
    if gap is not None and gap < limits.min_interval_minutes:
        field = "cron_expression" if schedule["schedule_type"] == "cron" else "schedule_type"
        raise FieldError.one(field, f"slots {gap:g} minutes apart are closer than the team's minimum interval of "
                                    f"{limits.min_interval_minutes} minutes")
    if schedule["auto_pause_after_failures"] == 0 and gap is not None and gap < NEVER_PAUSE_MIN_GAP:
        raise FieldError.one("auto_pause_after_failures", f"0 (never pause) is only for schedules whose slots are a "
                                                          f"day or more apart; these are {gap:g} minutes apart")
    if schedule["status"] == "active" and active_of_team >= limits.max_active:
        raise Conflict(f"the team already has {active_of_team} active schedules, its cap (max_active = "
                       f"{limits.max_active}); pause or cancel one first")
