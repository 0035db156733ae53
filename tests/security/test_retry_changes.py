"""Retry with changes (the dashboard's retry form): more GPU memory is more spend, so only the run's team's
trainers may ask for it; a viewer of the team, or another team's admin, changes nothing."""
from __future__ import annotations

import pytest

from shared.domain import runs
from tests.security.test_ownership import refused, world  # noqa: F401 — the fixture

MORE_MEMORY = {"gpu_config": {"gpu_type": "NVIDIA_TESLA_A100", "gpu_count": 8, "machine_count": 4, "preemptible": False},
               "training_params": {"epochs": 1000, "batch_size": 4096}}


@pytest.mark.parametrize("who", ["vic@example.com", "mallory@example.com", "eve@example.com"])
def test_a_viewer_or_an_outsider_cannot_retry_with_more_gpus(world, who):  # noqa: F811
    run_id = world.run("alice@example.com", world.recs_exp, "recs-oom", runs.FAILED)
    world.repo.mutate_run(run_id, lambda d: {**d, "error_stage": "Train",
                                             "error_message": "ResourceExhaustedError: OOM when allocating tensor"})
    refused(world.call(who, "POST", f"/api/training-runs/{run_id}/retry", MORE_MEMORY), needed="trainer")
    stored = world.repo.get_run(run_id)
    assert stored["attempt"] == 1 and stored["gpu_config"]["gpu_type"] != "NVIDIA_TESLA_A100"
    assert not world.publisher.messages
    allowed = world.call("tom@example.com", "POST", f"/api/training-runs/{run_id}/retry",
                         {"gpu_config": {"gpu_type": "NVIDIA_TESLA_A100"}})
    assert allowed.status_code == 202, allowed.get_json()
    assert allowed.get_json()["changes"]["gpu_config"]["gpu_type"] == "NVIDIA_TESLA_A100"
