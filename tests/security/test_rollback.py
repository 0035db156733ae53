"""Rolling back a run's deployment moves production traffic: deployer on the run's team only. Replayed
through the HTTP app (tests/security/test_ownership.py's world): another team's admin, a signed-in
stranger, the team's viewer and trainer are refused and nothing is queued; the team's deployer is let through."""
from __future__ import annotations

import pytest

from shared.domain import runs
from tests.security.test_ownership import refused, world  # noqa: F401 - the fixture

SERVING = {"id": "d-1", "status": "canary", "endpoint_id": "recs-prod", "traffic_split": 10,
           "endpoint_resource_name": "projects/p/locations/europe-west4/endpoints/recs-prod",
           "deployed_model_id": "2", "previous_traffic": {"1": 100}, "requested_by": "dan@example.com",
           "requested_at": runs.now(), "canary": {"percent": 10, "watch_minutes": 30, "max_error_rate": 0.01,
                                                  "min_requests": 20, "status": "watching"}}


def serving_run(world) -> str:  # noqa: F811
    run_id = world.run("alice@example.com", world.recs_exp, "recs-v1")
    world.repo.mutate_run(run_id, lambda d: {**d, "deployment": SERVING, "deployment_status": "canary",
                                             "is_deployed": True})
    return run_id


@pytest.mark.parametrize("caller", ["mallory@example.com", "eve@example.com", "vic@example.com", "tom@example.com"])
def test_rolling_back_alices_deployment_is_refused_below_deployer(world, caller):  # noqa: F811
    run_id = serving_run(world)
    refused(world.call(caller, "POST", f"/api/training-runs/{run_id}/rollback", {}), needed="deployer")
    assert world.repo.get_run(run_id)["deployment_status"] == "canary" and not world.publisher.messages


def test_the_teams_deployer_rolls_it_back(world):  # noqa: F811
    run_id = serving_run(world)
    response = world.call("dan@example.com", "POST", f"/api/training-runs/{run_id}/rollback", {"reason": "QA"})
    assert response.status_code == 202, response.get_json()
    stored = world.repo.get_run(run_id)
    assert stored["deployment_status"] == "rolling_back" and stored["deployment"]["rollback"]["requested_by"] == \
        "dan@example.com"
    assert [p["command"] for _, p, _ in world.publisher.messages] == ["rollback"]
