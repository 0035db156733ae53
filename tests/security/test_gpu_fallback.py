"""GPU fallback and roles: only the run's team's trainers set a run's fallback shapes (a fallback shape is a
GPU spend like the primary one), and the automatic attempt is Trainyard's, never a user's."""
from __future__ import annotations

import pytest

from shared.contract import topics
from shared.contract.messages import GPU_FALLBACK, RunCommand
from shared.domain import gpu_fallback, runs
from shared.services import commands, lifecycle
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.services.ports import Effects
from tests.security.test_ownership import refused, world  # noqa: F401 — the fixture
from tests.unit.test_gpu_fallback import QUOTA

SHAPES = {"gpu_type": "NVIDIA_L4", "gpu_count": 1,
          "fallbacks": [{"gpu_type": "NVIDIA_TESLA_A100", "gpu_count": 8, "region": "us-central1", "preemptible": False}]}


@pytest.mark.parametrize("who", ["mallory@example.com", "eve@example.com", "vic@example.com"])
def test_only_the_runs_teams_trainers_set_fallback_shapes(world, who):  # noqa: F811
    run_id = world.run("alice@example.com", world.recs_exp, "recs-v1", runs.FAILED)
    refused(world.call(who, "POST", f"/api/training-runs/{run_id}/retry", {"gpu_config": SHAPES}), needed="trainer")
    assert world.repo.get_run(run_id)["attempt"] == 1 and not world.publisher.messages
    allowed = world.call("tom@example.com", "POST", f"/api/training-runs/{run_id}/retry", {"gpu_config": SHAPES})
    assert allowed.status_code == 202, allowed.get_json()
    assert world.repo.get_run(run_id)["gpu_config"]["fallbacks"][0]["region"] == "us-central1"


def test_the_automatic_attempt_is_trainyards_not_a_users(world):  # noqa: F811
    run_id = world.run("alice@example.com", world.recs_exp, "recs-v1", runs.RUNNING, gpu_config=SHAPES)
    effects = Effects(world.publisher, LocalTickerJobs())
    lifecycle.move_run(world.repo, run_id, lambda d: runs.record_failure(d, 1, "Train", QUOTA, {}, runs.now()), effects)
    (queued,) = [p for t, p, _ in world.publisher.messages if t == topics.RUN_COMMANDS and p["command"] == GPU_FALLBACK]
    assert commands.handle_command(RunCommand(**queued), world.repo, None, None, None, effects=effects,
                                   declared=()) == "started"
    run = world.repo.get_run(run_id)
    assert run["attempt"] == 2 and run["gpu_config"]["gpu_type"] == "NVIDIA_TESLA_A100"
    assert run["attempts"][0]["retried_by"] == run["last_retry"]["by"] == gpu_fallback.AUTOMATIC_RETRIER
    assert "@" not in gpu_fallback.AUTOMATIC_RETRIER  # no user's identity: no user's role is borrowed
