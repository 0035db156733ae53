"""Batch predictions after training write the team's model's answers where products read them: asking for
them on a run or a schedule's run_template needs deployer on the run's team (as a deploy after training),
and the outputs and the users' file must lie in the team's own buckets — checked at creation, replayed
through the HTTP app (tests/security/test_ownership.py's world). Nothing is stored when refused."""
from __future__ import annotations

from tests.security.test_ownership import refused, world  # noqa: F401 - the fixture

MINE = {"k": 5, "gcs_output": "gs://recs-data/batch/"}


def fields(response) -> list[str]:
    assert response.status_code == 400, response.get_json()
    return [e["field"] for e in response.get_json()["errors"]]


def test_a_trainer_may_not_ask_for_batch_predictions_after_training(world):  # noqa: F811
    made = world.call("tom@example.com", "POST", "/api/training-runs", {
        "name": "recs-v1", "base_experiment_id": world.recs_exp, "batch_prediction_config": MINE})
    refused(made, needed="deployer")
    assert not world.repo.runs


def test_outputs_or_users_in_another_teams_bucket_are_refused_naming_the_field(world):  # noqa: F811
    for config, field in (({**MINE, "gcs_output": "gs://ads-data/steal/"}, "batch_prediction_config.gcs_output"),
                          ({**MINE, "users": "gs://ads-data/users.txt"}, "batch_prediction_config.users")):
        made = world.call("dan@example.com", "POST", "/api/training-runs", {
            "name": "recs-v1", "base_experiment_id": world.recs_exp, "batch_prediction_config": config})
        assert field in fields(made)
    schedule = world.call("alice@example.com", "POST", "/api/training/schedules", {
        "name": "weekly", "schedule_type": "daily", "time_of_day": "02:00",
        "run_template": {"name": "recs-v1", "base_experiment_id": world.recs_exp,
                         "batch_prediction_config": {**MINE, "gcs_output": "gs://ads-data/x/"}}})
    assert "run_template.batch_prediction_config.gcs_output" in fields(schedule)
    assert not world.repo.runs and not world.repo.schedules


def test_the_teams_deployer_may(world):  # noqa: F811
    made = world.call("dan@example.com", "POST", "/api/training-runs", {
        "name": "recs-v1", "base_experiment_id": world.recs_exp,
        "batch_prediction_config": {**MINE, "users": "gs://recs-data/users.txt"}})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["training_run"]["batch_prediction_config"]["users"] == "gs://recs-data/users.txt"
