"""The champion's tolerance is a run setting (evaluator_config) a schedule carries in its run template, so
every retrain it makes is held to the champion the same way; out-of-range tolerances are refused."""
from __future__ import annotations

from tests.unit.test_schedules_api import api, get, post, schedule_body  # noqa: F401 (fixture)


def test_a_schedule_hands_its_champion_tolerance_to_every_run_it_makes(api):  # noqa: F811
    body = schedule_body(api["ids"])
    body["run_template"]["evaluator_config"] = {"enabled": True, "champion_tolerance": 0.05,
                                                "compare_to_champion": True}
    response = post(api, "/api/training/schedules", body)
    assert response.status_code == 201, response.get_json()
    schedule = response.get_json()["schedule"]
    assert schedule["run_template"]["evaluator_config"]["champion_tolerance"] == 0.05
    fired = post(api, f"/api/training/schedules/{schedule['id']}/trigger").get_json()["training_run"]
    run = get(api, f"/api/training-runs/{fired['id']}").get_json()["training_run"]
    assert run["evaluator_config"]["champion_tolerance"] == 0.05 and run["evaluator_config"]["compare_to_champion"]


def test_a_run_without_a_tolerance_gets_the_default_and_a_silly_one_is_refused(api):  # noqa: F811
    body = schedule_body(api["ids"])["run_template"]
    made = post(api, "/api/training-runs", {**body, "name": "default-tolerance"}).get_json()["training_run"]
    assert made["evaluator_config"]["champion_tolerance"] == 0.01
    refused = post(api, "/api/training-runs", {**body, "evaluator_config": {"champion_tolerance": 0.9}})
    assert refused.status_code == 400 and "champion_tolerance" in refused.get_data(as_text=True)
