"""A run's estimated cost: machine-hours per stage × the price table (shared/domain/pricing/prices.json, or
the file TRAINYARD_PRICE_TABLE names).

What runs where on Vertex, per stage (the model `estimate` prices):
- every pipeline step runs as a custom job on `pipeline_step_machine` (e2-standard-4 unless set) for
  the stage's duration — Examples, Stats, Schema, Transform, Train (its launcher), Evaluate, Push;
- Train also runs the Trainer's custom job: the run's `gpu_config` machine + its accelerators, times
  `machine_count` (a chief and its workers, all alike), at the Spot multiplier when preemptible;
- when the data stages ran on Dataflow (the job's label trainyard-data-runner=dataflow), Examples,
  Stats, Transform and Evaluate also pay Dataflow workers: at most `max_workers` of the configured
  machine for the stage's duration — an upper bound, because autoscaling may have used fewer;
- one pipeline-run fee per attempt. Compile runs in the submitter (Cloud Run): not priced here.
Cached stages take no time and cost nothing. A machine the table does not price is listed in
`unpriced` and the total says it is partial.

`estimate` is pure (run document + table in, a dict out); `load_table` reads the file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

DEFAULT_TABLE = Path(__file__).resolve().parent / "pricing" / "prices.json"
PRICED_STAGES = ("Examples", "Stats", "Schema", "Transform", "Train", "Evaluate", "Push")
BEAM_STAGES = ("Examples", "Stats", "Transform", "Evaluate")  # the stages that run Beam (Dataflow at scale)


@dataclass(frozen=True)
class DataflowShape:
    machine_type: str = "e2-standard-4"
    max_workers: int = 10
    disk_gb: int = 50


def load_table(path: Optional[str] = None) -> dict:
    """The price table: the repository's, or the override file (same shape)."""
    source = Path(path) if path else DEFAULT_TABLE
    try:
        table = json.loads(source.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"price table {source} cannot be read: {exc}") from None
    for key in ("currency", "as_of", "machines", "accelerators", "regions", "spot_multiplier"):
        if key not in table:
            raise ValueError(f"price table {source} has no {key!r}")
    return table


def _seconds(stage: dict, run_end: Any) -> float:
    if stage.get("status") in ("cached", "skipped", "pending"):
        return 0.0
    if isinstance(stage.get("duration_seconds"), (int, float)):
        return float(stage["duration_seconds"])
    started, ended = stage.get("started_at"), stage.get("completed_at") or run_end
    if isinstance(started, datetime) and isinstance(ended, datetime):
        return max(0.0, (ended - started).total_seconds())
    return 0.0


def estimate(run: dict, table: dict, region: str, data_runner: Optional[str] = None,
             dataflow: DataflowShape = DataflowShape()) -> dict:
    """The estimated cost of the run's current attempt, per stage and in total (rounded to the cent's
    hundredth: small runs cost fractions of a cent)."""
    multiplier = table["regions"].get(region)
    region_priced = multiplier is not None
    multiplier = 1.0 if multiplier is None else float(multiplier)
    gpu = run.get("gpu_config") or {}
    spot = bool(gpu.get("preemptible", True))
    step_machine = table.get("pipeline_step_machine", "e2-standard-4")
    unpriced: set[str] = set()

    def hourly(kind: str, name: Optional[str], is_spot: bool = False) -> float:
        price = table[kind].get(name) if name else None
        if price is None:
            unpriced.add(str(name))
            return 0.0
        return float(price) * multiplier * (float(table["spot_multiplier"]) if is_spot else 1.0)

    dataflow_hourly = 0.0
    if data_runner == "dataflow":
        rates = table.get("dataflow") or {}
        shape = (rates.get("machine_shapes") or {}).get(dataflow.machine_type)
        if shape is None:
            unpriced.add(f"dataflow {dataflow.machine_type}")
        else:
            vcpus, memory = shape
            dataflow_hourly = dataflow.max_workers * multiplier * (
                vcpus * rates["vcpu_hour"] + memory * rates["memory_gb_hour"] + dataflow.disk_gb * rates["disk_gb_hour"])

    stages = []
    for stage in run.get("stage_details") or []:
        if stage.get("name") not in PRICED_STAGES:
            continue
        hours = _seconds(stage, run.get("completed_at")) / 3600.0
        item: dict[str, Any] = {"stage": stage["name"], "seconds": round(hours * 3600, 3),
                                "machine_type": step_machine, "machine_hours": round(hours, 6), "spot": False,
                                "accelerator_type": None, "accelerator_count": 0}
        cost = hours * hourly("machines", step_machine)
        if stage["name"] == "Train":
            count = int(gpu.get("gpu_count") or 0)
            machines = int(gpu.get("machine_count") or 1)
            item.update(machine_type=gpu.get("machine_type"), spot=spot, accelerator_type=gpu.get("gpu_type"),
                        accelerator_count=count, machine_count=machines, launcher_machine_type=step_machine)
            cost += hours * machines * (hourly("machines", gpu.get("machine_type"), spot)
                                        + count * hourly("accelerators", gpu.get("gpu_type"), spot))
        if stage["name"] in BEAM_STAGES and dataflow_hourly:
            item.update(dataflow_machine_type=dataflow.machine_type, dataflow_max_workers=dataflow.max_workers)
            cost += hours * dataflow_hourly
        item["cost"] = round(cost, 6)
        stages.append(item)
    started = any(s["seconds"] for s in stages)
    fee = float(table.get("pipeline_run_fee", 0.0)) if started else 0.0
    attempt_total = round(sum(s["cost"] for s in stages) + fee, 4)
    # A retried run keeps what its earlier attempts cost (the estimate each attempt ended with).
    earlier = run.get("estimated_cost") or {}
    attempt = run.get("attempt", 1)
    earlier_total = 0.0
    if earlier.get("attempt") and earlier["attempt"] < attempt:
        earlier_total = float(earlier.get("total") or 0.0)
    elif earlier.get("attempt") == attempt:
        earlier_total = float(earlier.get("earlier_attempts_total") or 0.0)
    return {
        "currency": table["currency"], "total": round(attempt_total + earlier_total, 4),
        "attempt_total": attempt_total, "earlier_attempts_total": round(earlier_total, 4),
        "pipeline_run_fee": fee, "region": region,
        "region_priced": region_priced, "attempt": attempt, "spot": spot,
        "data_runner": data_runner or "direct", "stages": stages, "unpriced": sorted(unpriced),
        "partial": bool(unpriced), "prices_as_of": table["as_of"],
        "upper_bound": data_runner == "dataflow",
    }


def add(total: Optional[dict], cost: Optional[dict]) -> Optional[dict]:
    """A schedule's running sum of its runs' estimates."""
    if not cost or cost.get("total") is None:
        return total
    total = dict(total or {"total": 0.0, "runs": 0, "currency": cost.get("currency", "USD")})
    total["total"] = round(total["total"] + cost["total"], 4)
    total["runs"] = total.get("runs", 0) + 1
    return total
