"""Training on new data through both emulators: the canonical bucket notification published to data-landed with
the official Pub/Sub client makes one run (the same notification again: still one; another within the
interval: recorded, no run), and a file dropped in a watched folder is found by scripts/watcher.py (started
with the stack) and makes a run through the same consumer."""
from __future__ import annotations

import base64
import json
import time

import pytest

from shared.contract import topics
from tests.builders import post_catalog
from tests.events import load_event

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def experiment(local_stack):
    return post_catalog(local_stack.post, "data-triggered quick test", {"batch_size": 512, "learning_rate": 0.05},
                        {"recall_at_100": 0.5})


def create(local_stack, experiment, name, trigger) -> dict:
    response = local_stack.post("/api/training/schedules", {
        "name": name, "schedule_type": "data", "data_trigger": trigger,
        "run_template": {"name": name, "base_experiment_id": experiment, "training_params": {"epochs": 2}}})
    assert response.status_code == 201, response.text
    return response.json()["schedule"]


def publish_canonical(local_stack, **changes) -> str:
    """tests/events/storage_object_finalize.json as Cloud Storage publishes it: its data and attributes."""
    message = load_event("storage_object_finalize.json")["message"]
    data, attributes = json.loads(base64.b64decode(message["data"])), dict(message["attributes"])
    for key, value in changes.items():
        data[key] = value
        attributes[{"generation": "objectGeneration", "name": "objectId"}.get(key, key)] = value
    client = local_stack.publisher()
    topic = client.topic_path(local_stack.stack.config.project, topics.DATA_LANDED)
    return client.publish(topic, json.dumps(data).encode(), **attributes).result()


def schedule_of(local_stack, schedule_id) -> dict:
    response = local_stack.get(f"/api/training/schedules/{schedule_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_runs(local_stack, schedule_id, count, timeout_s=45) -> list[dict]:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        made = schedule_of(local_stack, schedule_id)["runs"]
        if len(made) >= count:
            return made
        time.sleep(0.2)
    raise AssertionError(f"schedule {schedule_id} made {len(made)} runs, not {count}, within {timeout_s}s")


def test_a_bucket_notification_makes_one_run_and_duplicates_and_close_ones_make_none(local_stack, experiment):
    schedule = create(local_stack, experiment, "on-landing", {"source": "gcs", "bucket": "acme-recs-landing",
                                                              "prefix": "interactions/", "min_interval_minutes": 60})
    assert schedule["next_run_at"] is None and schedule["cloud_scheduler_job_name"] is None
    first = publish_canonical(local_stack)
    (run,) = wait_for_runs(local_stack, schedule["id"], 1)
    run = local_stack.wait_for(run["id"], lambda r: r["status"] == "running", what="the data run to be submitted")
    assert run["triggered_by"] == "data"
    assert run["data_trigger"]["location"] == "gs://acme-recs-landing/interactions/2026-12-06/part-0001.csv"
    assert run["data_trigger"]["version"] == "1765011600123456"

    again = publish_canonical(local_stack)  # Cloud Storage's at-least-once delivery: the same object, generation
    assert again != first
    local_stack.wait_handled("data_triggers", again)
    close = publish_canonical(local_stack, generation="1765011900000000", name="interactions/2026-12-06/part-0002.csv",
                              timeCreated="2026-12-06T09:05:00.000Z")
    local_stack.wait_handled("data_triggers", close)
    view = schedule_of(local_stack, schedule["id"])
    assert [r["id"] for r in view["runs"]] == [run["id"]]
    last = view["schedule"]["last_data_trigger"]
    assert last["outcome"] == "recorded" and last["location"].endswith("part-0002.csv") and last["run_id"] is None
    assert view["schedule"]["data_triggers_received"] == 2  # the duplicate changed nothing


def test_a_file_dropped_in_a_watched_folder_makes_a_run(local_stack, experiment, tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    schedule = create(local_stack, experiment, "on-folder", {"source": "folder", "path": str(folder),
                                                             "min_interval_minutes": 1})
    time.sleep(1.5)  # the watcher has seen the empty folder (its first sight reports nothing older)
    dropped = folder / "2026-12-06" / "interactions.csv"
    dropped.parent.mkdir()
    dropped.write_text("customer_id,product_id,ts,quantity\nu1,i1,2026-12-06T09:00:00Z,1\n")
    (run,) = wait_for_runs(local_stack, schedule["id"], 1, timeout_s=30)
    run = local_stack.run(run["id"])
    assert run["triggered_by"] == "data" and run["data_trigger"]["source"] == "folder"
    assert run["data_trigger"]["location"] == str(dropped)
    assert any("new data published" in line for line in local_stack.log_lines("watcher"))
