"""By hand, `POST …/batch-predictions` names its users as batch_prediction_config does: a list, "all" (every
user of the run's data) or a file of them under the team's buckets; "all" and a file are read by the
run-commands consumer, which writes the job's input and counts them (in-memory fakes, the HTTP API)."""
from __future__ import annotations

import json

from shared.contract import results
from shared.domain import runs
from tests.unit.test_actions import ARTIFACTS, make_run, post, published_commands, world  # noqa: F401
from tests.unit.test_batch_predictions import FakeBatch, consume

USERS = ["c1", "c2", "c3"]


def with_vocabulary(w, run_id):
    vocabularies = f"{ARTIFACTS}/{results.VOCABULARIES_DIR}"
    w.store.write_text(f"{vocabularies}/customer_id", "\n".join(USERS) + "\n")
    w.repo.mutate_run(run_id, lambda d: {**d, "artifacts": {"vocabularies": vocabularies}})


def test_all_users_by_hand_are_read_by_the_consumer(world):
    world.serving.batch_predictions = FakeBatch()
    run = make_run(world, runs.COMPLETED)
    with_vocabulary(world, run["id"])
    response = post(world, f"/api/training-runs/{run['id']}/batch-predictions",
                    {"users": "all", "k": 4, "gcs_output": "gs://recs-data/batch/"})
    assert response.status_code == 202, response.get_json()
    assert "for all users" in response.get_json()["message"]
    batch = world.repo.get_run(run["id"])["batch_prediction"]
    assert batch["users_from"] == "all" and batch["users"] == 0 and batch["automatic"] is False
    assert batch["input_uri"] not in world.store.files  # the consumer writes it
    (command,) = published_commands(world)
    assert consume(world, command) == "done"
    done = world.repo.get_run(run["id"])["batch_prediction"]
    assert done["users"] == 3 and done["status"] == "succeeded"
    assert [json.loads(x) for x in world.store.files[batch["input_uri"]].splitlines()] == [
        {"customer_id": u} for u in USERS]


def test_a_users_file_by_hand_must_be_the_teams_and_exist(world):
    world.serving.batch_predictions = FakeBatch()
    run = make_run(world, runs.COMPLETED)
    bad = post(world, f"/api/training-runs/{run['id']}/batch-predictions",
               {"users": "ftp://x/users.txt", "gcs_output": "gs://recs-data/batch/"})
    assert bad.status_code == 400 and "users" in json.dumps(bad.get_json())
    response = post(world, f"/api/training-runs/{run['id']}/batch-predictions",
                    {"users": "gs://recs-data/missing.txt", "gcs_output": "gs://recs-data/batch/"})
    assert response.status_code == 202
    assert consume(world, published_commands(world)[0]) == "failed"
    failed = world.repo.get_run(run["id"])["batch_prediction"]
    assert failed["status"] == "failed" and "no file of users at gs://recs-data/missing.txt" in failed["error"]
    assert not world.serving.batch_predictions.started
