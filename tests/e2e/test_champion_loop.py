"""Champion vs challenger end to end (issue 27's Done-when): a schedule fired twice on the same data
through the local stack with real TFX. The first run (no champion yet) is blessed, registered and deployed
after training; the second challenger (one epoch at a learning rate too small to learn anything) clears the
threshold but loses to the champion, is neither registered nor deployed, and the notification — a signed
webhook to a local receiver — says why, with both figures.

The run template is frozen with its schedule and schedules have no edit, so the second firing is of the
schedule as a team changes it today: cancelled and made again under the same name (the runs' name, hence
the registered model's, stays the same)."""
from __future__ import annotations

import json
import time

import pytest

from shared.domain import runs as run_domain
from tests.e2e.conftest import NOTIFY_SECRET_NAME

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(2700)]  # two real TFX runs, one after the other

NAME = "e2e-weekly-retrain"


@pytest.fixture(scope="module")
def stack(local_stack):
    """The package's stack (tests/e2e/conftest.py) and a local webhook receiver."""
    from tests.integration.test_notifications_flow import Receiver

    receiver = Receiver(refuse=0)
    try:
        yield {**local_stack, "receiver": receiver}
    finally:
        receiver.stop()


def schedule(client, experiment, receiver, training_params) -> dict:
    template = {"name": NAME, "base_experiment_id": experiment, "training_params": training_params,
                "gpu_config": {"gpu_type": "NVIDIA_TESLA_T4", "gpu_count": 1},
                "evaluator_config": {"enabled": True, "champion_tolerance": 0.01,
                                     "blessing_threshold": {"metric": "recall_at_100", "min_value": 0.01}},
                "deployment_config": {"action": "deploy_new", "endpoint_name": "e2e-weekly"},
                "notifications": {"webhooks": [{"url": receiver.url, "secret": NOTIFY_SECRET_NAME}],
                                  "events": ["completed", "not_blessed"]}}
    body = {"name": NAME, "schedule_type": "weekly", "time_of_day": "03:00", "day_of_week": "sunday",
            "run_template": template}
    return client.post("/api/training/schedules", body)["schedule"]


def fire_and_finish(client, experiment, receiver, epochs: int, learning_rate: float, status: str) -> dict:
    """Schedule the weekly retrain with these training params, fire it now, and wait for its run to end."""
    made = schedule(client, experiment, receiver, {"epochs": epochs, "batch_size": 256, "learning_rate": learning_rate,
                                                   "lr_schedule": {"type": "constant"}})
    run_id = client.post(f"/api/training/schedules/{made['id']}/trigger", {})["training_run"]["id"]
    final = wait(client, run_id, lambda r: run_domain.is_terminal(r["status"]))
    assert final["status"] == status, (final.get("error_stage"), final.get("error_message"))
    return {**final, "schedule_id": made["id"]}


def wait(client, run_id, predicate, timeout_s=1200) -> dict:
    deadline = time.time() + timeout_s
    current = None
    while time.time() < deadline:
        current = client.get(f"/api/training-runs/{run_id}")["training_run"]
        if predicate(current):
            return current
        time.sleep(1)
    raise AssertionError(f"timed out; run is {current}")


def notification_for(receiver, run_id, timeout_s=120) -> dict:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for _, body in receiver.accepted:
            message = json.loads(body)
            if message.get("trainyard", {}).get("run_id") == run_id:
                return message
        time.sleep(0.5)
    raise AssertionError(f"no notification for {run_id}; got {[json.loads(b) for _, b in receiver.accepted]}")


def test_the_second_challenger_loses_to_the_champion_is_not_deployed_and_the_notification_says_why(stack):
    client, receiver = stack["client"], stack["receiver"]
    first = fire_and_finish(client, stack["experiment"], receiver, 4, 0.2, "completed")
    gate = first["evaluation_results"]
    assert gate["champion_value"] is None and gate["champion_error"] is None  # the model's first run
    assert gate["reason"].startswith("blessed:") and "no champion yet" in gate["reason"]
    deployed = wait(client, first["id"], lambda r: r.get("deployment_status") in ("deployed", "failed"), timeout_s=300)
    assert deployed["deployment_status"] == "deployed" and deployed["deployment"]["automatic"] is True

    client.post(f"/api/training/schedules/{first['schedule_id']}/cancel", {})
    second = fire_and_finish(client, stack["experiment"], receiver, 1, 0.0001, "not_blessed")
    second_id = second["id"]
    gate = second["evaluation_results"]
    # Scored on the same split through the champion's own signature: the champion's figure is the first
    # run's own test recall (the same rows, the same metric).
    assert gate["champion_value"] == pytest.approx(first["evaluation_results"]["actual_value"], rel=1e-6)
    assert gate["champion_source"] == "registry default" and gate["champion_version"] == first["vertex_model_version"]
    assert gate["actual_value"] >= 0.01  # it cleared the threshold: the champion alone held it back
    assert gate["actual_value"] < gate["champion_required_value"] == pytest.approx(gate["champion_value"] * 0.99)
    assert gate["reason"].startswith("not blessed: recall_at_100") and "< champion" in gate["reason"]
    assert not second.get("vertex_model_resource_name")  # not registered
    time.sleep(5)  # deploy-after-training would have been requested with the completing event
    again = client.get(f"/api/training-runs/{second_id}")["training_run"]
    assert not again.get("deployment") and not again.get("is_deployed")

    message = notification_for(receiver, second_id)
    assert message["trainyard"]["status"] == "not_blessed"
    assert message["trainyard"]["gate"]["champion_value"] == gate["champion_value"]
    assert f"Verdict: {gate['reason']}" in message["text"]
    assert f"champion v{gate['champion_version']} (registry default)" in message["text"]
