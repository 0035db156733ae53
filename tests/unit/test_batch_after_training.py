"""Batch predictions after training (`batch_prediction_config` on a run or a schedule's run_template): a
blessed run that registered its model gets them through the run-commands path, once, whatever the final
events' order and however often they come; a not-blessed run gets none and says why on the run; the config
is validated at creation by the manual request's own rules (in-memory fakes, the pipeline-events path)."""
from __future__ import annotations

import json
import random

import pytest

from shared.contract import results, topics
from shared.contract.messages import BATCH_PREDICT, RunCommand
from shared.domain import batch_predictions, runs, schedules, teams
from shared.errors import FieldError, Forbidden
from shared.services import commands, intake, run_builder
from shared.services.ports import Effects
from tests.builders import demo_member, run_body
from tests.fakes import FakePublisher
from tests.unit.scenario import job_timeline, write_results
from tests.unit.test_batch_predictions import FakeBatch
from tests.unit.test_deploy_after_training import FlakyPublisher, event, finish, world  # noqa: F401
from tests.unit.test_schedules import NoJobs

DEV, DEMO = demo_member("dev@example.com")
USERS = ["u3", "u1", "u7", "u2"]


def config(**changes) -> dict:
    return {"k": 5, "gcs_output": "/tmp/recs/batch", **changes}


def running_run(w, batch_config, blessed=True) -> dict:
    run = intake.create_run(w.repo, Effects(FakePublisher(), NoJobs()),
                            run_body(w.ids["experiment"], batch_prediction_config=batch_config),
                            *demo_member("owner@example.com"))
    write_results(w.store, w.artifacts, blessed=blessed)
    vocabularies = results.join(w.artifacts, results.VOCABULARIES_DIR)
    w.store.write_text(results.join(w.artifacts, results.ARTIFACTS_FILE), results.ArtifactLocations(
        saved_model=results.join(w.artifacts, results.SAVED_MODEL_DIR), vocabularies=vocabularies).model_dump_json())
    w.store.write_text(f"{vocabularies}/customer_id", "\n".join(USERS) + "\n")  # the Transform's, one id a line
    return w.repo.mutate_run(run["id"], lambda d: {**d, "status": runs.RUNNING, "gcs_artifacts_path": w.artifacts,
                                                   "attempts": [{"attempt": 1, "status": runs.RUNNING}]})


def batch_commands(publisher) -> list[dict]:
    return [p for t, p, _ in publisher.messages if t == topics.RUN_COMMANDS and p["command"] == BATCH_PREDICT]


def consume(w, command) -> str:
    return commands.handle_command(RunCommand.model_validate(command), w.repo, w.backend, w.store, w.serving,
                                   effects=Effects(w.publisher, NoJobs()), declared=DEMO)


def test_a_blessed_run_writes_top_k_for_every_user_of_its_data_once(world):
    world.serving.batch_predictions = FakeBatch()
    run = running_run(world, config())
    timeline = job_timeline(f"{run['id']}-a1")
    events = timeline * 2
    random.Random(5).shuffle(events)
    for snapshot in events + [timeline[-1], timeline[-1]]:  # redelivered and reordered final events
        event(world, snapshot)
    final = world.repo.get_run(run["id"])
    assert final["status"] == runs.COMPLETED
    batch = final["batch_prediction"]
    assert batch["automatic"] is True and batch["requested_by"] == batch_predictions.AUTOMATIC_REQUESTER
    assert batch["status"] == "running" and batch["users_from"] == "all" and batch["k"] == 5 and batch["queued_at"]
    (command,) = batch_commands(world.publisher)
    assert command == {"command": BATCH_PREDICT, "run_id": run["id"], "batch_id": batch["id"]}
    assert consume(world, command) == "done"
    done = world.repo.get_run(run["id"])["batch_prediction"]
    assert done["status"] == "succeeded" and done["users"] == len(USERS) and done["input_written"]
    lines = [json.loads(line) for line in world.store.read_text(batch["input_uri"]).splitlines()]
    assert lines == [{"customer_id": u} for u in USERS]  # every user the run's data had, as instances
    (started,) = world.serving.batch_predictions.started
    assert started.k == 5 and started.destination == "/tmp/recs/batch" and started.input_uri == batch["input_uri"]
    event(world, timeline[-1])  # a late final event after it all: nothing more
    assert len(batch_commands(world.publisher)) == 1 and consume(world, command) == "skipped"


def test_a_not_blessed_run_writes_nothing_and_says_why(world):
    run = running_run(world, config(), blessed=False)
    final = finish(world, run)
    assert final["status"] == runs.NOT_BLESSED
    batch = final["batch_prediction"]
    assert batch["status"] == batch_predictions.SKIPPED and "not blessed" in batch["error"]
    assert not batch_commands(world.publisher)
    assert not world.store.read_text(batch_predictions.input_uri(world.artifacts, batch["id"]))
    event(world, job_timeline(f"{run['id']}-a1")[-1])
    assert world.repo.get_run(run["id"])["batch_prediction"] == batch  # a redelivery writes nothing more


def test_without_the_config_nothing_is_asked(world):
    run = running_run(world, None)
    final = finish(world, run)
    assert final["status"] == runs.COMPLETED and not final.get("batch_prediction") and not batch_commands(world.publisher)


def test_a_list_file_of_users_is_read_by_the_consumer(world, tmp_path):
    world.serving.batch_predictions = FakeBatch()
    users = tmp_path / "users.txt"
    users.write_text('c9\n\n{"customer_id": "c8", "segment": "b2b"}\n')
    run = running_run(world, config(users=str(users)))
    finish(world, run)
    assert consume(world, batch_commands(world.publisher)[0]) == "done"
    batch = world.repo.get_run(run["id"])["batch_prediction"]
    assert batch["users"] == 2 and batch["status"] == "succeeded"
    assert [json.loads(x) for x in world.store.read_text(batch["input_uri"]).splitlines()] == [
        {"customer_id": "c9"}, {"customer_id": "c8", "segment": "b2b"}]


def test_no_vocabulary_of_the_user_column_fails_the_batch_with_its_reason(world):
    world.serving.batch_predictions = FakeBatch()
    run = running_run(world, config())
    world.store.delete_tree(results.join(world.artifacts, results.VOCABULARIES_DIR))
    finish(world, run)
    assert consume(world, batch_commands(world.publisher)[0]) == "failed"
    batch = world.repo.get_run(run["id"])["batch_prediction"]
    assert batch["status"] == "failed" and "user id vocabulary" in batch["error"]
    assert not world.serving.batch_predictions.started


def test_a_failed_publish_is_redelivered_and_queues_the_same_batch(world):
    run = running_run(world, config())
    flaky = FlakyPublisher(failures=1)
    timeline = job_timeline(f"{run['id']}-a1")
    for snapshot in timeline[:-1]:
        event(world, snapshot, flaky)
    with pytest.raises(Exception):
        event(world, timeline[-1], flaky)
    stored = world.repo.get_run(run["id"])["batch_prediction"]
    assert stored["status"] == "running" and not stored.get("queued_at")
    event(world, timeline[-1], flaky)
    (command,) = batch_commands(flaky)
    assert command["batch_id"] == stored["id"] and world.repo.get_run(run["id"])["batch_prediction"]["queued_at"]


# ----------------------------------------------------------------------------- at creation

@pytest.mark.parametrize("batch, field", [
    (config(k=101), "batch_prediction_config.k"),
    ({"k": 5}, "batch_prediction_config"),
    (config(users="s3://x/users.txt"), "batch_prediction_config.users"),
    (config(gcs_output="gs://other-bucket/out"), "batch_prediction_config.gcs_output"),
    (config(gcs_output=None, bigquery_output="p.d.t"), "batch_prediction_config.bigquery_output"),
    (config(extra=1), "batch_prediction_config.extra"),
])
def test_the_config_is_checked_at_creation_naming_the_field(world, batch, field):
    team = teams.Team(name="recs", members={"user:owner@example.com": teams.DEPLOYER}, model_names=("*",),
                      buckets=("gs://recs-data",), datasets=("recs-proj.recs_out",))
    who = teams.caller("owner@example.com", (team,))
    with pytest.raises(FieldError) as raised:
        intake.create_run(world.repo, Effects(FakePublisher(), NoJobs()),
                          run_body(world.ids["experiment"], team="recs", batch_prediction_config=batch), who, (team,))
    assert field in [e["field"] for e in raised.value.errors], raised.value.errors


def test_a_trainer_may_not_ask_for_batch_predictions(world):
    team = teams.Team(name="recs", members={"user:t@example.com": teams.TRAINER}, model_names=("*",),
                      buckets=("gs://recs-data",))
    with pytest.raises(Forbidden, match="batch_prediction_config"):
        intake.create_run(world.repo, Effects(FakePublisher(), NoJobs()),
                          run_body(world.ids["experiment"], team="recs",
                                   batch_prediction_config=config(gcs_output="gs://recs-data/out")),
                          teams.caller("t@example.com", (team,)), (team,))


def test_a_schedules_template_keeps_the_config_for_its_runs(world):
    _, doc = run_builder.build_run(world.repo, run_body(world.ids["experiment"], batch_prediction_config=config()),
                                   "dev@example.com", runs.now(), None)
    template = schedules.run_template_from({**doc, "id": "x"})
    assert template["batch_prediction_config"]["gcs_output"] == "/tmp/recs/batch"
    _, slot_run = run_builder.build_run(world.repo, template, "dev@example.com", runs.now(), None)
    assert slot_run["batch_prediction_config"] == doc["batch_prediction_config"]
    assert slot_run["batch_prediction_config"]["users"] == batch_predictions.ALL_USERS

