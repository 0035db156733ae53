"""H4 (spend is unbounded), replayed through the HTTP app and the schedule-trigger consumer as an attacker
would do it (docs/security.md "Spend guard"): each request must be refused, or wait for a team admin.

The team `recs`: dev@example.com is a trainer, boss@example.com its admin; a monthly budget of 100 GPU-hours
and 1,000 USD, at most 8 GPUs or 300 USD per run without approval; schedules at least an hour apart, at most
two active. No run of the team has been measured, so each estimate takes TRAINYARD_SPEND_EPOCH_SECONDS (600 s)
per epoch (shared/domain/spend.py).
"""
from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from shared.adapters.artifact_store import ArtifactStore
from shared.contract import topics
from shared.contract.messages import ScheduleTrigger
from shared.domain import runs, schedules, spend, teams
from shared.http.app import Dependencies, create_app
from shared.services import scheduling
from shared.services.ports import Effects
from shared.settings import get_settings
from tests.builders import demo_member, run_body, seed_catalog
from tests.fakes import FakePublisher, InMemoryRepository
from tests.unit.test_schedules import NoJobs

TOKEN = "test-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
TRAINER, ADMIN = "dev@example.com", "boss@example.com"
TEAMS = teams.parse({"recs": {
    "members": {f"user:{TRAINER}": "trainer", f"user:{ADMIN}": "admin"},
    "model_names": ["*"], "endpoints": ["*"], "datasets": ["*"], "buckets": ["*"],
    "budget": {"gpu_hours_per_month": 100, "usd_per_month": 1000, "max_gpus_per_run": 8, "max_usd_per_run": 300},
    "schedules": {"min_interval_minutes": 60, "max_active": 2}}})
ATTACK_GPU = {"gpu_type": "NVIDIA_TESLA_A100", "gpu_count": 8, "machine_count": 16, "preemptible": False}
TWO_MACHINES = {"gpu_type": "NVIDIA_TESLA_A100", "gpu_count": 8, "machine_count": 2, "preemptible": False}


@pytest.fixture
def env():
    repo, publisher, jobs = InMemoryRepository(), FakePublisher(), NoJobs()
    base = replace(get_settings(), auth_mode="local", dev_token=TOKEN, teams=TEAMS, admins=frozenset(),
                   spend_epoch_seconds=600.0)

    def client(identity):
        deps = Dependencies(repo=repo, publisher=publisher, store=ArtifactStore(),
                            settings=replace(base, dev_identity=identity))
        deps.scheduler_jobs = jobs
        return create_app(deps).test_client()

    return {"repo": repo, "publisher": publisher, "jobs": jobs, "ids": seed_catalog(repo, member=demo_member(TRAINER, TEAMS)), "settings": base,
            "trainer": client(TRAINER), "admin": client(ADMIN)}


def post(client, path, body=None):
    return client.post(path, data=json.dumps(body or {}), headers=HEADERS)


def submitted(env) -> list[str]:
    return [m[1]["run_id"] for m in env["publisher"].messages if m[0] == topics.RUN_SUBMIT]


def month() -> str:
    return spend.month_of(runs.now())


def spent(env) -> dict:
    return spend.totals(env["repo"].get_ledger("recs", month()))


def fill_ledger(env, gpu_hours: float, usd: float) -> None:
    """What the team's other runs hold this month (reserved by runs outside this test)."""
    env["repo"].mutate_ledger("recs", month(), lambda ledger: spend.settle(
        ledger, "recs", month(), "earlier-run-a1", gpu_hours, usd, runs.now()))


def assert_over_budget(response, would_cost_gpu_hours: str):
    assert response.status_code == 409, response.get_json()
    answer = response.get_json()
    assert answer["error"] == "over_budget" and answer["team"] == "recs"
    message = answer["message"]
    assert "100.0 GPU-hours / 1,000.00 USD" in message  # the budget
    assert "spent or reserved this month" in message  # what is spent
    assert f"this run would cost {would_cost_gpu_hours} GPU-hours" in message and "USD" in message  # the run
    assert answer["run_cost"]["gpu_hours"] > 0 and answer["run_cost"]["usd"] > 0


# ----------------------------------------------------------------------------- create and retry


def test_the_review_attack_16x8_a100_on_demand_for_1000_epochs_is_refused_with_the_numbers(env):
    body = run_body(env["ids"]["experiment"], gpu_config=ATTACK_GPU, training_params={"epochs": 1000})
    response = post(env["trainer"], "/api/training-runs", body)
    # 128 GPUs × 1000 epochs × 600 s = 21,333.3 GPU-hours; on demand about 99,000 USD
    assert_over_budget(response, "21,333.3")
    assert response.get_json()["run_cost"]["usd"] > 90_000
    assert env["repo"].runs == {} and submitted(env) == [] and spent(env) == {"gpu_hours": 0, "usd": 0}


def test_a_run_above_the_per_run_cap_waits_for_a_team_admin_and_is_not_queued(env):
    body = run_body(env["ids"]["experiment"], gpu_config=TWO_MACHINES, training_params={"epochs": 1})
    response = post(env["trainer"], "/api/training-runs", body)
    assert response.status_code == 201, response.get_json()
    run = response.get_json()["training_run"]
    assert run["status"] == runs.AWAITING_APPROVAL
    assert "16 GPUs is above the team's cap of 8 GPUs per run" in run["approval"]["reason"]
    assert submitted(env) == [] and spent(env)["gpu_hours"] == 0  # nothing held before approval

    refused = post(env["trainer"], f"/api/training-runs/{run['id']}/approve")  # the trainer approves their own
    assert refused.status_code == 403 and refused.get_json()["needed"] == "admin"
    assert post(env["trainer"], f"/api/training-runs/{run['id']}/submit").status_code in (200, 202, 409)
    assert submitted(env) == []  # a submit does not skip the approval

    approved = post(env["admin"], f"/api/training-runs/{run['id']}/approve")
    assert approved.status_code == 202, approved.get_json()
    assert approved.get_json()["training_run"]["status"] == runs.PENDING
    assert approved.get_json()["training_run"]["approval"]["approved_by"] == ADMIN
    assert submitted(env) == [run["id"]]
    assert spent(env)["gpu_hours"] == pytest.approx(16 * 600 / 3600, abs=0.01)


def test_a_rejected_run_is_cancelled_with_the_reason(env):
    body = run_body(env["ids"]["experiment"], gpu_config=TWO_MACHINES, training_params={"epochs": 1})
    run = post(env["trainer"], "/api/training-runs", body).get_json()["training_run"]
    assert post(env["trainer"], f"/api/training-runs/{run['id']}/reject", {"reason": "no"}).status_code == 403
    rejected = post(env["admin"], f"/api/training-runs/{run['id']}/reject", {"reason": "use 8 GPUs"})
    assert rejected.status_code == 200, rejected.get_json()
    assert rejected.get_json()["training_run"]["status"] == runs.CANCELLED
    assert "use 8 GPUs" in " ".join(rejected.get_json()["training_run"]["warnings"])
    assert post(env["admin"], f"/api/training-runs/{run['id']}/approve").status_code == 409
    assert submitted(env) == []


def _failed_run(env) -> dict:
    run = post(env["trainer"], "/api/training-runs", run_body(env["ids"]["experiment"])).get_json()["training_run"]
    env["repo"].mutate_run(run["id"], lambda d: runs.record_failure(d, 1, "Compile", "boom", None, runs.now()))
    return run


def test_a_retry_onto_the_attack_config_is_refused_as_a_create_is(env):
    run = _failed_run(env)
    response = post(env["trainer"], f"/api/training-runs/{run['id']}/retry",
                    {"gpu_config": ATTACK_GPU, "training_params": {"epochs": 1000}})
    assert_over_budget(response, "21,333.3")
    assert env["repo"].get_run(run["id"])["attempt"] == 1 and submitted(env) == [run["id"]]  # only the create


def test_a_retry_above_the_per_run_cap_waits_for_approval(env):
    run = _failed_run(env)
    response = post(env["trainer"], f"/api/training-runs/{run['id']}/retry",
                    {"gpu_config": TWO_MACHINES, "training_params": {"epochs": 1}})
    assert response.status_code in (200, 202), response.get_json()
    assert response.get_json()["training_run"]["status"] == runs.AWAITING_APPROVAL
    assert submitted(env) == [run["id"]]  # only the first attempt's create


def test_a_draft_submitted_over_the_budget_is_refused(env):
    fill_ledger(env, 99.5, 10)
    draft = post(env["trainer"], "/api/training-runs", run_body(env["ids"]["experiment"], draft=True))
    assert draft.status_code == 201  # a draft is kept: it costs nothing until it is submitted
    response = post(env["trainer"], f"/api/training-runs/{draft.get_json()['training_run']['id']}/submit")
    assert_over_budget(response, "1.7")
    assert submitted(env) == []


def test_two_concurrent_creates_against_the_last_of_the_budget_only_one_passes(env):
    fill_ledger(env, 100 - 2.5, 10)  # room for one 1.7 GPU-hour run (2 L4 × 5 epochs × 600 s), not two
    barrier, answers = threading.Barrier(2), []

    def create():
        barrier.wait()
        answers.append(post(env["trainer"], "/api/training-runs", run_body(env["ids"]["experiment"])).status_code)

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [201, 409]
    assert spent(env)["gpu_hours"] <= 100 and len(submitted(env)) == 1


def test_a_cancelled_run_gives_its_reservation_back(env):
    run = post(env["trainer"], "/api/training-runs", run_body(env["ids"]["experiment"])).get_json()["training_run"]
    assert spent(env)["gpu_hours"] > 0
    assert post(env["trainer"], f"/api/training-runs/{run['id']}/cancel").status_code == 200
    assert spent(env) == {"gpu_hours": 0, "usd": 0}
    ledger = env["repo"].get_ledger("recs", month())
    assert ledger["entries"][f"{run['id']}-a1"]["state"] == spend.RELEASED


# ----------------------------------------------------------------------------- schedules


def schedule_body(env, **overrides) -> dict:
    body = {"name": "nightly", "schedule_type": "daily", "time_of_day": "03:00", "timezone": "UTC",
            "run_template": {"name": "nightly-recs", "base_experiment_id": env["ids"]["experiment"]}}
    return {**body, **overrides}


def test_a_schedule_every_minute_is_refused_naming_cron_expression(env):
    response = post(env["trainer"], "/api/training/schedules",
                    schedule_body(env, schedule_type="cron", cron_expression="* * * * *", time_of_day=None))
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["errors"][0]
    assert error["field"] == "cron_expression" and "minimum interval of 60 minutes" in error["message"]
    # a cron whose slots are mostly hours apart but bunch up once is refused too
    bunched = post(env["trainer"], "/api/training/schedules",
                   schedule_body(env, schedule_type="cron", cron_expression="0,5 3 * * *", time_of_day=None))
    assert bunched.status_code == 400 and bunched.get_json()["errors"][0]["field"] == "cron_expression"


def test_the_reviews_other_schedule_bounds_are_refused(env):
    for field, value in (("max_concurrent_runs", 20), ("catch_up_limit", 50), ("max_queued_runs", 50)):
        response = post(env["trainer"], "/api/training/schedules", schedule_body(env, **{field: value}))
        assert response.status_code == 400 and response.get_json()["errors"][0]["field"] == field
    never_pause = post(env["trainer"], "/api/training/schedules",
                       schedule_body(env, schedule_type="cron", cron_expression="0 * * * *", time_of_day=None,
                                     auto_pause_after_failures=0))
    assert never_pause.status_code == 400
    assert never_pause.get_json()["errors"][0]["field"] == "auto_pause_after_failures"


def test_more_active_schedules_than_the_teams_cap_are_refused(env):
    for n in range(2):
        assert post(env["trainer"], "/api/training/schedules", schedule_body(env, name=f"s{n}")).status_code == 201
    response = post(env["trainer"], "/api/training/schedules", schedule_body(env, name="one too many"))
    assert response.status_code == 409, response.get_json()
    assert "max_active = 2" in response.get_json()["message"]


def test_a_schedule_whose_run_cannot_fit_this_month_is_refused(env):
    fill_ledger(env, 60, 10)
    response = post(env["trainer"], "/api/training/schedules", schedule_body(env))
    assert_over_budget(response, "50.0")  # the experiment's 150 epochs × 600 s on 2 L4s


def test_a_trigger_when_the_month_is_spent_makes_no_run_and_says_why_on_the_schedule(env):
    created = post(env["trainer"], "/api/training/schedules", schedule_body(env)).get_json()["schedule"]
    fill_ledger(env, 100, 1000)  # the month is spent
    slot = created["next_run_at"]
    slot = datetime.fromisoformat(slot.replace("Z", "+00:00")) if isinstance(slot, str) else slot
    outcome = scheduling.on_trigger(env["repo"], Effects(env["publisher"], env["jobs"]), ScheduleTrigger(schedule_id=created["id"]),
                                    slot + timedelta(seconds=1), at=slot + timedelta(seconds=1),
                                    settings=env["settings"])
    assert outcome == "dropped"
    assert env["repo"].get_run(schedules.slot_run_id(created["id"], slot)) is None and submitted(env) == []
    schedule = env["trainer"].get(f"/api/training/schedules/{created['id']}", headers=HEADERS).get_json()["schedule"]
    reason = schedule["skipped_slots"][-1]["reason"]
    assert reason.startswith("over budget") and "100.0 GPU-hours / 1,000.00 USD" in reason
    assert schedule["last_error"] == reason


def test_a_team_sees_its_spend_this_month(env):
    post(env["trainer"], "/api/training-runs", run_body(env["ids"]["experiment"]))
    answer = env["trainer"].get("/api/teams/recs/spend", headers=HEADERS).get_json()
    assert answer["budget"]["gpu_hours_per_month"] == 100 and answer["spent"]["gpu_hours"] > 0
    assert answer["month"] == month() and datetime.now(timezone.utc).strftime("%Y-%m") == answer["month"]


def test_a_manual_trigger_when_the_month_is_spent_makes_no_run(env):
    created = post(env["trainer"], "/api/training/schedules", schedule_body(env)).get_json()["schedule"]
    fill_ledger(env, 100, 1000)
    response = post(env["trainer"], f"/api/training/schedules/{created['id']}/trigger")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["outcome"] == "dropped" and response.get_json()["training_run"] is None
    assert submitted(env) == [] and all(not r.get("schedule_id") for r in env["repo"].runs.values())


def test_scheduling_a_big_run_a_minute_ahead_does_not_skip_the_approval(env):
    """Not in the review: a run above the per-run cap made with `scheduled_at` (a one-time schedule) and
    started with run-now still waits for a team admin instead of being queued."""
    later = (runs.now() + timedelta(minutes=1)).isoformat()
    body = run_body(env["ids"]["experiment"], gpu_config=TWO_MACHINES, training_params={"epochs": 1},
                    scheduled_at=later)
    run = post(env["trainer"], "/api/training-runs", body).get_json()["training_run"]
    assert run["status"] == runs.SCHEDULED
    started = post(env["trainer"], f"/api/training-runs/{run['id']}/run-now")
    assert started.status_code in (200, 202), started.get_json()
    assert env["repo"].get_run(run["id"])["status"] == runs.AWAITING_APPROVAL and submitted(env) == []
