"""The spend guard's rules (shared/domain/spend.py) and its ledger through the services: the a-priori estimate
from a team's history, the ledger's folds (idempotent, order-tolerant), the measured cost replacing the
reservation when a run ends, and the cron gap."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from shared.domain import cost, runs, spend, teams
from shared.services import costing, intake, lifecycle
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.services.ports import Effects
from shared.settings import get_settings
from tests.builders import run_body, seed_catalog
from tests.fakes import FakePublisher

TABLE = cost.load_table()
L4 = {"gpu_type": "NVIDIA_L4", "gpu_count": 2, "machine_count": 1, "machine_type": "g2-standard-24", "preemptible": True}
AT = datetime(2026, 12, 6, 12, tzinfo=timezone.utc)


def past(gpu=L4, train_s=3600.0, epochs=10, percent=100, examples_s=120.0) -> dict:
    return {"gpu_config": gpu, "current_epoch": epochs, "training_params": {"data_sample_percent": percent},
            "stage_details": [{"name": "Examples", "duration_seconds": examples_s},
                              {"name": "Train", "duration_seconds": train_s}]}


def new_run(epochs=20, percent=100, gpu=L4) -> dict:
    return {"gpu_config": gpu, "training_params": {"epochs": epochs, "data_sample_percent": percent}}


def test_the_estimate_takes_the_slowest_epoch_of_the_same_gpu_shape_scaled_to_the_data_sampled():
    history = [past(train_s=3600, epochs=10), past(train_s=1000, epochs=10, percent=50),  # 360 s and 200 s at 100 %
               past(gpu={**L4, "gpu_count": 1}, train_s=99999, epochs=1)]  # another shape: not used
    estimate = spend.estimate_run(new_run(epochs=20, percent=50), history, TABLE, "europe-west4", 600)
    assert estimate.method == "team history, same GPU shape"
    assert estimate.train_hours == pytest.approx(20 * 360 * 0.5 / 3600)
    assert estimate.gpu_hours == pytest.approx(2 * estimate.train_hours)
    # money: the Train machine and its GPUs (spot) plus Examples' slowest step on the pipeline machine, + the fee
    hourly = (TABLE["machines"]["g2-standard-24"] + 2 * TABLE["accelerators"]["NVIDIA_L4"]) * 1.1 * TABLE["spot_multiplier"]
    step = TABLE["machines"][TABLE.get("pipeline_step_machine", "e2-standard-4")] * 1.1
    expected = estimate.train_hours * (hourly + step) + 120 / 3600 * step + TABLE["pipeline_run_fee"]
    assert estimate.usd == pytest.approx(expected, rel=1e-3)


def test_without_the_same_shape_any_shape_counts_and_without_history_the_setting():
    other = spend.estimate_run(new_run(), [past(gpu={**L4, "gpu_count": 1}, train_s=500, epochs=1)], TABLE,
                               "europe-west4", 600)
    assert other.method == "team history, another GPU shape" and other.train_hours == pytest.approx(20 * 500 / 3600)
    fresh = spend.estimate_run(new_run(), [], TABLE, "europe-west4", 600)
    assert fresh.method.startswith("TRAINYARD_SPEND_EPOCH_SECONDS") and fresh.train_hours == pytest.approx(20 * 600 / 3600)


def test_the_ledger_reserves_once_settles_idempotently_and_refuses_past_the_budget():
    budget = teams.Budget(gpu_hours_per_month=10, usd_per_month=None)
    run_cost = spend.RunCost(gpu_hours=6, usd=5, gpus=2, train_hours=3, method="m")
    ledger = spend.reserve(None, "recs", "2026-12", "r1-a1", run_cost, budget, AT)
    assert spend.totals(ledger) == {"gpu_hours": 6, "usd": 5}
    assert spend.reserve(ledger, "recs", "2026-12", "r1-a1", run_cost, budget, AT) is None  # a repeat holds nothing more
    with pytest.raises(spend.OverBudget) as refused:
        spend.reserve(ledger, "recs", "2026-12", "r2-a1", run_cost, budget, AT)
    assert "10.0 GPU-hours / no money cap" in str(refused.value) and "6.0 GPU-hours / 5.00 USD" in str(refused.value)
    settled = spend.settle(ledger, "recs", "2026-12", "r1-a1", 2.5, 1.25, AT)
    assert settled["entries"]["r1-a1"]["state"] == spend.ACTUAL and spend.totals(settled) == {"gpu_hours": 2.5, "usd": 1.25}
    assert spend.settle(settled, "recs", "2026-12", "r1-a1", 2.5, 1.25, AT + timedelta(hours=1)) is None
    released = spend.settle(None, "recs", "2026-12", "late-a1", 0, 0, AT)  # a late settle before any reserve
    assert released["entries"]["late-a1"]["state"] == spend.RELEASED


def test_what_a_run_used_comes_from_its_estimated_cost_or_is_nothing_when_it_never_started():
    assert spend.measured({"attempt": 1, "stage_details": runs.initial_stages()}) == (0.0, 0.0)
    started = {"attempt": 1, "started_at": AT, "stage_details": runs.initial_stages()}
    assert spend.measured(started) is None  # ran, cost unknown: the reservation stands
    doc = {**started, "status": runs.COMPLETED, "gpu_config": L4,
           "stage_details": [{"name": "Train", "status": "completed", "duration_seconds": 1800}]}
    priced = cost.estimate(doc, TABLE, "europe-west4")
    gpu_hours, usd = spend.measured({**doc, "estimated_cost": priced})
    assert gpu_hours == pytest.approx(2 * 0.5) and usd == priced["attempt_total"]


@pytest.mark.parametrize("cron, gap", [("0 3 * * *", 1440), ("0,5 3 * * *", 5), ("0 9 * * 1-5", 1440),
                                       ("*/20 * * * *", 20), ("0 0 1 * *", 29 * 1440)])
def test_the_smallest_gap_of_a_cron_is_found_over_a_leap_year(cron, gap):
    assert spend.smallest_gap_minutes(cron, 0) == gap  # (the window is 2024: February has 29 days)
    assert spend.smallest_gap_minutes(cron, 60) < 60 if gap < 60 else spend.smallest_gap_minutes(cron, 60) >= 60


def test_a_run_that_ends_has_its_measured_cost_replace_its_reservation_once(repo, publisher):
    team = teams.Team(name="recs", members={"user:dev@example.com": teams.TRAINER}, model_names=("*",),
                      datasets=("*",), buckets=("*",), budget=teams.Budget(gpu_hours_per_month=100))
    settings = replace(get_settings(), teams=(team,), spend_epoch_seconds=600.0)
    ids = seed_catalog(repo, member=(teams.caller("dev@example.com", (team,)), (team,)))
    run = intake.create_run(repo, Effects(publisher, LocalTickerJobs()),
                            run_body(ids["experiment"]), teams.caller("dev@example.com", (team,)),
                            (team,), settings=settings)
    month = run["spend"]["month"]
    assert repo.get_ledger("recs", month)["entries"][f"{run['id']}-a1"]["state"] == spend.RESERVED

    def complete(doc):
        stages = [{**s, "status": "completed", "duration_seconds": 900.0 if s["name"] == "Train" else 10.0}
                  for s in doc["stage_details"]]
        return costing.priced({**doc, "status": runs.COMPLETED, "started_at": AT, "completed_at": AT,
                               "stage_details": stages}, {}, settings)

    for _ in range(2):  # a redelivered event finds the run terminal: the entry is settled once
        lifecycle.move_run(repo, run["id"], lambda d: complete(d) if d["status"] != runs.COMPLETED else None,
                           Effects(FakePublisher(), LocalTickerJobs()))
    entry = repo.get_ledger("recs", month)["entries"][f"{run['id']}-a1"]
    assert entry["state"] == spend.ACTUAL and entry["gpu_hours"] == pytest.approx(2 * 900 / 3600)
