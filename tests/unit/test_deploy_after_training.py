"""Deploy after training: a completed, blessed run whose deployment_config says deploy_new /
deploy_existing is deployed by the pipeline-events consumer through the run-commands path, once,
whatever the events' order and however often they come (in-memory fakes, no I/O)."""
from __future__ import annotations

import random

import pytest

from shared.domain import runs
from shared.contract import topics
from shared.adapters.artifact_store import ArtifactStore
from shared.consumer import consume
from shared.contract.messages import DEPLOY, RunCommand
from shared.contract.pipeline_log_entry import PipelineLogEntry
from shared.errors import PermanentError, TransientError
from shared.adapters.serving import Serving
from shared.domain import deployments
from shared.services import commands, progress
from shared.services.actions import deletion, deploy
from shared.services.ports import Effects
from tests.unit.test_schedules import NoJobs
from shared.services import intake
from tests.builders import demo_member, run_body, seed_catalog
from tests.events import load_event
from tests.fakes import FakeBackend, FakePublisher, InMemoryRepository
from tests.unit.scenario import job_timeline, write_results
from tests.unit.test_actions import FakeEndpoints, FakeRegistrar, FakeTrainerJobs

DEV, DEMO = demo_member("dev@example.com")  # admin of the runs' team (demo: it owns every name and endpoint)

DEPLOY_NEW = {"action": "deploy_new", "endpoint_name": "recs-prod"}


class FlakyPublisher(FakePublisher):
    """Refuses the first `failures` run-commands publishes (Pub/Sub unavailable), then works."""

    def __init__(self, failures: int):
        super().__init__()
        self.failures = failures

    def publish(self, topic, payload, **attributes):
        if topic == topics.RUN_COMMANDS and self.failures:
            self.failures -= 1
            raise TransientError("pubsub unavailable")
        return super().publish(topic, payload, **attributes)


@pytest.fixture
def world(tmp_path):
    class World:
        pass

    w = World()
    w.repo, w.backend, w.store, w.publisher = InMemoryRepository(), FakeBackend(), ArtifactStore(), FakePublisher()
    w.serving = Serving(FakeRegistrar(), FakeEndpoints(), FakeTrainerJobs(), machine_type="n1-standard-4")
    w.ids = seed_catalog(w.repo)
    w.artifacts = str(tmp_path / "artifacts")
    return w


def running_run(w, deployment_config=None, blessed=True) -> dict:
    body = run_body(w.ids["experiment"], **({"deployment_config": deployment_config} if deployment_config else {}))
    run = intake.create_run(w.repo, Effects(FakePublisher(), NoJobs()), body, *demo_member("owner@example.com"))
    write_results(w.store, w.artifacts, blessed=blessed)
    return w.repo.mutate_run(run["id"], lambda d: {**d, "status": runs.RUNNING, "gcs_artifacts_path": w.artifacts,
                                                   "attempts": [{"attempt": 1, "status": runs.RUNNING}]})


def event(w, snapshot, publisher=None) -> str:
    """One pipeline-events push (the canonical sink entry) while the backend reports `snapshot`."""
    w.backend.jobs[snapshot.job_id] = snapshot
    body = load_event("pipeline_job_event.json", **{"tr-0123456789abcdef-a1": snapshot.job_id})
    return consume(body, PipelineLogEntry, lambda entry, _: progress.on_pipeline_event(entry, w.repo, w.backend, w.store,
                                                                        Effects(publisher or w.publisher, NoJobs())),
                   "pipeline_events")


def deploy_commands(publisher) -> list[dict]:
    return [p for t, p, _ in publisher.messages if t == topics.RUN_COMMANDS and p["command"] == DEPLOY]


def finish(w, run, publisher=None) -> dict:
    for snapshot in job_timeline(f"{run['id']}-a1"):
        event(w, snapshot, publisher)
    return w.repo.get_run(run["id"])


def test_completed_blessed_deploy_new_is_deployed_once_and_marked_automatic(world):
    run = running_run(world, DEPLOY_NEW)
    final = finish(world, run)
    assert final["status"] == runs.COMPLETED and final["deployment_status"] == "deploying"
    deployment = final["deployment"]
    assert deployment["automatic"] is True and deployment["requested_by"] == deployments.AUTOMATIC_DEPLOYER
    assert deployment["endpoint_name"] == "recs-prod" and deployment["endpoint_id"] is None
    assert deployment["traffic_split"] == 100 and deployment["queued_at"]
    assert deployment["model_resource_name"] == final["vertex_model_resource_name"]
    (command,) = deploy_commands(world.publisher)
    assert command == {"command": "deploy", "run_id": run["id"], "deployment_id": deployment["id"]}
    # the run-commands consumer does the rest, as for a manual deploy
    assert commands.handle_command(RunCommand.model_validate(command), world.repo, world.backend, world.store,
                                  world.serving, effects=Effects(world.publisher, NoJobs()), declared=DEMO) == "deployed"
    deployed = world.repo.get_run(run["id"])
    assert deployed["deployment_status"] == "deployed" and deployed["is_deployed"] is True
    assert deployed["deployment"]["automatic"] is True and deployed["deployment"]["predict_url"]
    assert world.serving.endpoints.requests[0].endpoint_display_name == "recs-prod"


def test_redelivered_and_reordered_final_events_publish_one_deployment(world):
    run = running_run(world, DEPLOY_NEW)
    timeline = job_timeline(f"{run['id']}-a1")
    events = timeline * 2
    random.Random(3).shuffle(events)
    for snapshot in events + [timeline[-1], timeline[-1]]:
        event(world, snapshot)
    first = world.repo.get_run(run["id"])
    assert first["status"] == runs.COMPLETED
    (command,) = deploy_commands(world.publisher)
    assert command["deployment_id"] == first["deployment"]["id"]
    # after the deploy finished (or failed), late events still move nothing and send nothing
    commands.handle_command(RunCommand.model_validate(command), world.repo, world.backend, world.store, world.serving, effects=Effects(world.publisher, NoJobs()), declared=DEMO)
    for snapshot in (timeline[-1], timeline[5]):
        assert event(world, snapshot) == "ignored"
    assert len(deploy_commands(world.publisher)) == 1
    assert world.repo.get_run(run["id"])["deployment"]["status"] == "deployed"


def test_deploy_existing_takes_the_endpoint_and_split_from_the_config(world):
    run = running_run(world, {"action": "deploy_existing", "existing_endpoint_id": "987", "traffic_split": 25})
    final = finish(world, run)
    assert final["deployment"]["endpoint_id"] == "987" and final["deployment"]["traffic_split"] == 25
    assert final["deployment"]["endpoint_name"] is None
    commands.handle_command(RunCommand.model_validate(deploy_commands(world.publisher)[0]), world.repo, world.backend,
                           world.store, world.serving, effects=Effects(world.publisher, NoJobs()), declared=DEMO)
    request = world.serving.endpoints.requests[0]
    assert request.endpoint_id == "987" and request.traffic_percent == 25


def test_a_not_blessed_run_is_never_deployed(world):
    run = running_run(world, DEPLOY_NEW, blessed=False)
    final = finish(world, run)
    assert final["status"] == runs.NOT_BLESSED and not final.get("deployment")
    assert not deploy_commands(world.publisher)
    # pushed anyway later: still not deployed automatically (only a blessed completion is)
    world.repo.mutate_run(run["id"], lambda d: {**d, "vertex_model_resource_name": "projects/p/locations/l/models/7",
                                                "pushed_anyway": True})
    event(world, job_timeline(f"{run['id']}-a1")[-1])
    assert not deploy_commands(world.publisher) and not world.repo.get_run(run["id"]).get("deployment")


def test_register_only_is_never_deployed(world):
    run = running_run(world)  # the default deployment_config: register_only
    final = finish(world, run)
    assert final["status"] == runs.COMPLETED and final["deployment_config"]["action"] == "register_only"
    assert not final.get("deployment") and not final.get("deployment_status")
    assert not deploy_commands(world.publisher)


def test_a_completed_run_without_a_registered_model_is_not_deployed(world):
    run = running_run(world, DEPLOY_NEW)
    world.store.delete_tree(world.artifacts + "/registry")  # the Pusher registered nothing
    final = finish(world, run)
    assert final["status"] == runs.COMPLETED and not final.get("vertex_model_resource_name")
    assert not final.get("deployment") and not deploy_commands(world.publisher)


def test_a_failed_publish_is_redelivered_and_the_redelivery_publishes(world):
    run = running_run(world, DEPLOY_NEW)
    flaky = FlakyPublisher(failures=2)
    timeline = job_timeline(f"{run['id']}-a1")
    for snapshot in timeline[:-1]:
        event(world, snapshot, flaky)
    with pytest.raises(TransientError):
        event(world, timeline[-1], flaky)  # completes the run, records the deployment, cannot queue it
    stored = world.repo.get_run(run["id"])
    assert stored["status"] == runs.COMPLETED and stored["deployment_status"] == "deploying"
    assert not stored["deployment"].get("queued_at") and not deploy_commands(flaky)
    deployment_id = stored["deployment"]["id"]
    with pytest.raises(TransientError):
        event(world, timeline[-1], flaky)  # Pub/Sub still down: redelivered again
    assert event(world, timeline[-1], flaky) == "ignored"  # the run was already final; the deploy is queued now
    (command,) = deploy_commands(flaky)
    assert command["deployment_id"] == deployment_id  # the same deployment, not a second one
    assert world.repo.get_run(run["id"])["deployment"]["queued_at"]
    event(world, timeline[-1], flaky)
    assert len(deploy_commands(flaky)) == 1


def completed_before_its_deploy(w, run) -> dict:
    """The run's job folded in, and the process gone before what follows the change ran (a crash between
    the write that completed the run and its automatic deploy request): the run's transitions alone."""
    for snapshot in job_timeline(f"{run['id']}-a1"):
        w.backend.jobs[snapshot.job_id] = snapshot
        found = progress.read_results(w.store, w.artifacts) if snapshot.state == "PIPELINE_STATE_SUCCEEDED" else {}
        w.repo.mutate_run(run["id"], lambda d: runs.apply_job_snapshot(d, snapshot, found))
    return w.repo.get_run(run["id"])


def test_a_deployment_already_on_the_run_is_left_alone(world):
    run = running_run(world, DEPLOY_NEW)
    assert completed_before_its_deploy(world, run)["status"] == runs.COMPLETED  # and someone deploys it by hand first
    manual = deploy.request(world.repo, Effects(world.publisher, NoJobs()), run["id"], DEV, {"endpoint_id": "555"}, DEMO)
    assert manual["changed"] is True and manual["training_run"]["deployment"]["automatic"] is False
    event(world, job_timeline(f"{run['id']}-a1")[-1])
    (command,) = deploy_commands(world.publisher)
    stored = world.repo.get_run(run["id"])
    assert command["deployment_id"] == stored["deployment"]["id"] and stored["deployment"]["endpoint_id"] == "555"
    assert stored["deployment"]["requested_by"] == "dev@example.com"


def test_a_failed_automatic_deploy_is_not_retried_by_events_but_can_be_by_hand(world):
    run = running_run(world, DEPLOY_NEW)
    finish(world, run)
    world.serving.endpoints.fail = PermanentError("quota exceeded for n1-standard-4", stage="Deploy")
    commands.handle_command(RunCommand.model_validate(deploy_commands(world.publisher)[0]), world.repo, world.backend,
                           world.store, world.serving, effects=Effects(world.publisher, NoJobs()), declared=DEMO)
    assert world.repo.get_run(run["id"])["deployment_status"] == "failed"
    event(world, job_timeline(f"{run['id']}-a1")[-1])
    assert len(deploy_commands(world.publisher)) == 1  # state only moves forward
    again = deploy.request(world.repo, Effects(world.publisher, NoJobs()), run["id"], DEV, None, DEMO)
    assert again["changed"] is True and again["training_run"]["deployment"]["endpoint_name"] == "recs-prod"
    assert len(deploy_commands(world.publisher)) == 2


def test_a_manual_repeat_of_the_automatic_deploy_is_a_no_op_that_requeues_it(world):
    run = running_run(world, DEPLOY_NEW)
    first = finish(world, run)
    repeat = deploy.request(world.repo, Effects(world.publisher, NoJobs()), run["id"], DEV, None, DEMO)
    assert repeat["changed"] is False and repeat["training_run"]["deployment"]["id"] == first["deployment"]["id"]
    assert [c["deployment_id"] for c in deploy_commands(world.publisher)] == [first["deployment"]["id"]] * 2


def test_a_completed_run_whose_deploy_was_not_requested_gets_it_on_the_next_event(world):
    run = running_run(world, DEPLOY_NEW)
    final = completed_before_its_deploy(world, run)
    assert final["status"] == runs.COMPLETED and not final.get("deployment")
    assert event(world, job_timeline(f"{run['id']}-a1")[-1]) == "ignored"  # a late event with the consumer's publisher
    (command,) = deploy_commands(world.publisher)
    assert command["deployment_id"] == world.repo.get_run(run["id"])["deployment"]["id"]


def test_a_run_deleted_before_its_automatic_deploy_is_not_deployed(world):
    """A completed run whose automatic deploy was not requested yet (completed_before_its_deploy) is deleted;
    the redelivered final event then deploys nothing and does not fail (a deleted run takes no action)."""
    run = running_run(world, DEPLOY_NEW)
    assert completed_before_its_deploy(world, run)["status"] == runs.COMPLETED
    assert deletion.delete(world.repo, run["id"], DEV, grace_days=7)["changed"] is True
    event(world, job_timeline(f"{run['id']}-a1")[-1])
    assert deploy_commands(world.publisher) == [] and not world.repo.get_run(run["id"]).get("deployment")


def test_a_challenger_that_loses_to_the_champion_is_not_deployed_and_the_run_says_why(world):
    from shared.contract import results

    run = running_run(world, DEPLOY_NEW, blessed=False)
    lost = results.Evaluation(
        metrics={"recall_at_100": 0.41}, threshold_metric="recall_at_100", threshold_value=0.3, actual_value=0.41,
        champion_model="projects/p/locations/l/models/42", champion_version="3", champion_source="registry default",
        champion_metrics={"recall_at_100": 0.52}, champion_value=0.52, champion_tolerance=0.01,
        champion_required_value=0.5148, reason="not blessed: recall_at_100 0.41 < champion 0.52 × 0.99",
        passed=False, blessed=False)
    world.store.write_text(results.join(world.artifacts, results.EVALUATION_FILE), lost.model_dump_json())
    final = finish(world, run)
    assert final["status"] == runs.NOT_BLESSED and not final.get("deployment") and not deploy_commands(world.publisher)
    gate = final["evaluation_results"]
    assert gate["reason"] == "not blessed: recall_at_100 0.41 < champion 0.52 × 0.99"
    assert (gate["champion_value"], gate["champion_version"], gate["champion_required_value"]) == (0.52, "3", 0.5148)
    # a run document that says completed but not blessed is never deployed either
    assert not deployments.deploys_after_training({**final, "status": runs.COMPLETED, "is_blessed": False,
                                                   "vertex_model_resource_name": "projects/p/locations/l/models/7"})
