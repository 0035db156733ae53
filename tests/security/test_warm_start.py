"""Warm starts (issue 27 part 7) through the HTTP app: the weights a run loads are confined like its data.
mallory (admin of `ads`) may not warm-start from alice's run (403, as for her experiments), and an
experiment's saved_model_uri outside the run's team's buckets is a 400 naming the field."""
from __future__ import annotations

from tests.security.test_ownership import refused, world  # noqa: F401 - the fixture

WARM = "training_params.warm_restart"


def _trained(world, who, experiment, name):
    run_id = world.run(who, experiment, name)
    world.repo.mutate_run(run_id, lambda d: {**d, "artifacts": {"saved_model": f"gs://b/runs/{run_id}/model"}})
    return run_id


def test_warm_starting_from_another_teams_run_is_refused(world):
    alices = _trained(world, "alice@example.com", world.recs_exp, "recs-v1")
    body = {"name": "ads-v1", "base_experiment_id": world.ads_exp,
            "training_params": {"warm_restart": {"enabled": True, "run_id": alices}}}
    message = refused(world.call("mallory@example.com", "POST", "/api/training-runs", body), needed="viewer")
    assert "warm-starting from a run" in message
    schedule = world.call("mallory@example.com", "POST", "/api/training/schedules", {
        "name": "sneaky", "schedule_type": "daily", "time_of_day": "02:00", "run_template": body})
    refused(schedule, needed="viewer")
    mallorys = _trained(world, "mallory@example.com", world.ads_exp, "ads-v0")  # her own: allowed
    made = world.call("mallory@example.com", "POST", "/api/training-runs",
                      {**body, "training_params": {"warm_restart": {"enabled": True, "run_id": mallorys}}})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["training_run"]["warm_source"]["source_id"] == mallorys


def test_an_experiments_model_outside_the_teams_buckets_is_a_400(world):
    def experiment(uri):
        base = world.repo.get_catalog("experiments", world.recs_exp)
        return world.call("alice@example.com", "POST", "/api/experiments", {
            **{k: base[k] for k in ("model_type", "dataset_id", "feature_config_id", "model_config_id", "metrics")},
            "name": f"model at {uri}", "saved_model_uri": uri}).get_json()["item"]["id"]

    outside = experiment("gs://ads-data/models/secret")
    made = world.call("alice@example.com", "POST", "/api/training-runs", {
        "name": "recs-v2", "base_experiment_id": world.recs_exp,
        "training_params": {"warm_restart": {"enabled": True, "experiment_id": outside}}})
    assert made.status_code == 400, made.get_json()
    error = made.get_json()["errors"][0]
    assert error["field"] == f"{WARM}.experiment_id" and "not under a bucket team 'recs' may read" in error["message"]
    inside = experiment("gs://recs-data/models/v1")
    made = world.call("alice@example.com", "POST", "/api/training-runs", {
        "name": "recs-v2", "base_experiment_id": world.recs_exp,
        "training_params": {"warm_restart": {"enabled": True, "experiment_id": inside}}})
    assert made.status_code == 201, made.get_json()
