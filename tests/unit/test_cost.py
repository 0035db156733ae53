"""The run cost estimate (shared/domain/cost.py): machine-hours per stage × the price table, by hand."""
from __future__ import annotations

import json

import pytest

from shared.domain import cost

TABLE = cost.load_table()


def run_doc(train_s=3600.0, other_s=60.0, gpu=None, attempt=1, cached=(), **extra) -> dict:
    stages = [{"name": "Compile", "status": "completed", "duration_seconds": 3.0}]
    for name in cost.PRICED_STAGES:
        stages.append({"name": name, "status": "cached" if name in cached else "completed",
                       "duration_seconds": train_s if name == "Train" else other_s})
    return {"attempt": attempt, "stage_details": stages, **extra,
            "gpu_config": gpu or {"gpu_type": "NVIDIA_L4", "gpu_count": 2, "machine_type": "g2-standard-24",
                                  "preemptible": True}}


def test_the_table_says_where_its_prices_come_from_and_when():
    assert TABLE["as_of"] == "2026-12-04" and TABLE["currency"] == "USD"
    assert all(url.startswith("https://cloud.google.com/") for url in TABLE["sources"].values())


def test_spot_l4_run_in_the_base_region():
    estimate = cost.estimate(run_doc(), TABLE, "us-central1")
    steps = (6 * 60 + 3600) / 3600 * 0.1541                 # every step's e2-standard-4, Train's launcher included
    trainer = 1.0 * (1.0147 + 2 * 0.6440) * 0.4               # g2-standard-24 + 2 L4, Spot
    assert estimate["total"] == pytest.approx(steps + trainer + 0.03, abs=1e-4)
    train = next(s for s in estimate["stages"] if s["stage"] == "Train")
    assert train["machine_type"] == "g2-standard-24" and train["accelerator_count"] == 2 and train["spot"] is True
    assert train["machine_hours"] == 1.0 and train["cost"] == pytest.approx(trainer + 0.1541, abs=1e-4)
    assert [s["stage"] for s in estimate["stages"]] == list(cost.PRICED_STAGES)  # Compile is the submitter's
    assert estimate["partial"] is False and estimate["region_priced"] is True and estimate["upper_bound"] is False


def test_several_machines_pay_for_every_machine_and_its_gpus():
    gpu = {"gpu_type": "NVIDIA_L4", "gpu_count": 2, "machine_type": "g2-standard-24", "preemptible": True}
    one = cost.estimate(run_doc(gpu=gpu), TABLE, "us-central1")
    three = cost.estimate(run_doc(gpu={**gpu, "machine_count": 3}), TABLE, "us-central1")
    trainer = 1.0 * (1.0147 + 2 * 0.6440) * 0.4  # one g2-standard-24 + 2 L4, Spot, for the hour
    assert three["total"] == pytest.approx(one["total"] + 2 * trainer, abs=1e-4)
    train = next(s for s in three["stages"] if s["stage"] == "Train")
    assert train["machine_count"] == 3 and train["cost"] == pytest.approx(3 * trainer + 0.1541, abs=1e-4)
    assert next(s for s in one["stages"] if s["stage"] == "Train")["machine_count"] == 1


def test_on_demand_costs_more_and_the_region_scales_it():
    on_demand = run_doc(gpu={"gpu_type": "NVIDIA_TESLA_A100", "gpu_count": 1, "machine_type": "a2-highgpu-1g",
                             "preemptible": False})
    us = cost.estimate(on_demand, TABLE, "us-central1")
    assert us["total"] == pytest.approx((6 * 60 + 3600) / 3600 * 0.1541 + (0.8497 + 3.3741) + 0.03, abs=1e-4)
    eu = cost.estimate(on_demand, TABLE, "europe-west4")
    assert eu["attempt_total"] == pytest.approx((us["total"] - 0.03) * 1.1 + 0.03, abs=1e-4)
    elsewhere = cost.estimate(on_demand, TABLE, "me-central2")
    assert elsewhere["region_priced"] is False and elsewhere["total"] == us["total"]


def test_cached_stages_are_free_and_dataflow_is_an_upper_bound():
    cached = cost.estimate(run_doc(cached=("Examples", "Stats", "Schema", "Transform")), TABLE, "us-central1")
    full = cost.estimate(run_doc(), TABLE, "us-central1")
    assert full["total"] - cached["total"] == pytest.approx(4 * 60 / 3600 * 0.1541, abs=1e-4)
    flow = cost.estimate(run_doc(), TABLE, "us-central1", "dataflow", cost.DataflowShape("e2-standard-4", 10, 50))
    worker = 4 * 0.056 + 16 * 0.003557 + 50 * 0.000054
    assert flow["total"] - full["total"] == pytest.approx(4 * 60 / 3600 * 10 * worker, abs=1e-4)
    assert flow["upper_bound"] is True and flow["data_runner"] == "dataflow"


def test_an_unpriced_machine_is_named_and_the_total_is_partial():
    estimate = cost.estimate(run_doc(gpu={"gpu_type": "NVIDIA_L4", "gpu_count": 1, "machine_type": "g2-custom-9",
                                          "preemptible": True}), TABLE, "us-central1")
    assert estimate["partial"] is True and estimate["unpriced"] == ["g2-custom-9"]


def test_a_run_that_never_started_costs_nothing():
    estimate = cost.estimate(run_doc(train_s=0, other_s=0), TABLE, "us-central1")
    assert estimate["total"] == 0 and estimate["pipeline_run_fee"] == 0


def test_a_retry_keeps_what_the_earlier_attempts_cost():
    first = cost.estimate(run_doc(), TABLE, "us-central1")
    second = cost.estimate(run_doc(attempt=2, estimated_cost=first), TABLE, "us-central1")
    assert second["earlier_attempts_total"] == first["total"]
    assert second["total"] == pytest.approx(first["total"] + second["attempt_total"], abs=1e-4)
    again = cost.estimate(run_doc(attempt=2, estimated_cost=second), TABLE, "us-central1")
    assert again["total"] == second["total"]  # re-estimating the same attempt does not count it twice


def test_an_override_table_is_read_and_a_broken_one_refused(tmp_path):
    cheaper = {**TABLE, "spot_multiplier": 0.1, "as_of": "2027-01-01"}
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(cheaper))
    assert cost.load_table(str(path))["as_of"] == "2027-01-01"
    path.write_text(json.dumps({"currency": "USD"}))
    with pytest.raises(ValueError, match="has no 'as_of'"):
        cost.load_table(str(path))


def test_schedule_sum():
    total = cost.add(None, {"total": 1.25, "currency": "USD"})
    total = cost.add(total, {"total": 0.5, "currency": "USD"})
    assert total == {"total": 1.75, "runs": 2, "currency": "USD"} and cost.add(total, None) == total


# ----------------------------------------------------------------------------- on the run and the schedule

from tests.unit.test_control_plane import do_submit, env, feed  # noqa: E402,F401 (fixture)
from tests.unit.scenario import job_timeline, write_results  # noqa: E402


def test_a_finished_run_carries_its_estimate(env):  # noqa: F811
    """Through the progress path: every stage 30 s, the default run (2 x L4 on g2-standard-24, Spot), in the
    settings' region (europe-west4: x1.1)."""
    do_submit(env)
    run = env["repo"].get_run(env["run"]["id"])
    write_results(env["store"], run["gcs_artifacts_path"])
    timeline = job_timeline(f"{run['id']}-a1")
    running = feed(env, timeline[:-1])
    assert "estimated_cost" not in running  # only when it ends
    final = feed(env, timeline[-1:])
    estimate = final["estimated_cost"]
    steps = 7 * 30 / 3600 * 0.1541 * 1.1
    trainer = 30 / 3600 * (1.0147 + 2 * 0.6440) * 0.4 * 1.1
    assert estimate["region"] == "europe-west4" and estimate["prices_as_of"] == "2026-12-04"
    assert estimate["total"] == pytest.approx(steps + trainer + 0.03, abs=1e-4)


def test_a_failed_run_costs_what_ran_until_it_failed(env):  # noqa: F811
    do_submit(env)
    run = env["repo"].get_run(env["run"]["id"])
    final = feed(env, job_timeline(f"{run['id']}-a1", fail_at="Transform"))
    stages = {s["stage"]: s["seconds"] for s in final["estimated_cost"]["stages"]}
    assert final["status"] == "failed" and stages["Transform"] == 30 and stages["Train"] == 0
    assert final["estimated_cost"]["total"] == pytest.approx(4 * 30 / 3600 * 0.1541 * 1.1 + 0.03, abs=1e-4)


def test_a_schedule_sums_its_runs_estimates():
    from datetime import datetime, timezone

    from shared.domain import schedules

    at = datetime(2026, 12, 4, tzinfo=timezone.utc)
    request = schedules.parse_request({"name": "nightly", "schedule_type": "daily", "time_of_day": "02:00",
                                       "run_template": {"name": "x"}}, at)
    schedule = schedules.new_schedule(request, {"name": "x"}, "ts-1", "dev@example.com", at, "demo")
    for n, (status, total) in enumerate((("completed", 1.5), ("failed", 0.25))):
        schedule = schedules.admit(schedule, f"tr-{n}", at, at, manual=True) or schedule
        schedule = schedules.settle(schedule, {"id": f"tr-{n}", "status": status,
                                               "estimated_cost": {"total": total, "currency": "USD"}}, at)
    assert schedule["estimated_cost"] == {"total": 1.75, "runs": 2, "currency": "USD"}
