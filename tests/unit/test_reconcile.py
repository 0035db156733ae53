"""The reconciler on the in-memory fakes: runs whose events stopped are re-read and repaired through the
paths their events take; a run that is moving, or young, is left alone; a second pass repairs nothing."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from shared.contract.labels import job_id_for
from shared.domain.deployments import DEPLOYING
from shared.domain import runs
from shared.contract import topics
from shared.adapters.artifact_store import ArtifactStore
from shared.services import reconcile, submission
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.services.ports import Effects
from tests.builders import local_settings
from tests.fakes import FakePublisher, InMemoryRepository
from tests.unit.scenario import job_timeline, write_results

HOUR = timedelta(hours=1)


@pytest.fixture
def env(tmp_path):
    from tests.unit.test_control_plane import env as control_plane_env

    base = control_plane_env.__wrapped__(tmp_path)  # the control plane's fakes, one run created
    publisher = FakePublisher()
    return {**base, "publisher": publisher, "effects": Effects(publisher, LocalTickerJobs()), "run_id": base["run"]["id"]}


def submit(env, attempt=1) -> str:
    compiler = submission.Compiler(env["compiler"].compile_run, env["compiler"].module_files)
    return submission.submit(submission.RunSubmit(run_id=env["run_id"], attempt=attempt), env["repo"],
                             env["backend"], env["store"], compiler, env["settings"], env["effects"])


def reconcile_at(env, later: timedelta) -> dict:
    return reconcile.reconcile(env["repo"], env["effects"], env["backend"], env["store"], env["settings"],
                               at=runs.now() + later)


def run(env) -> dict:
    return env["repo"].get_run(env["run_id"])


def test_a_submitter_that_died_after_its_claim_is_requeued_past_the_lease_and_the_run_completes_one_job(env):
    repo = env["repo"]
    repo.mutate_run(env["run_id"], lambda d: runs.claim_for_submit(d, 1, runs.now()))  # claimed, then died
    assert reconcile_at(env, timedelta(seconds=60))["repaired"] == {}  # inside the lease: another delivery's
    assert env["publisher"].messages == []

    report = reconcile_at(env, timedelta(seconds=env["settings"].submit_lease_s + 1))
    assert report["repaired"] == {"submit_requeued": 1}
    assert env["publisher"].messages == [(topics.RUN_SUBMIT, {"run_id": env["run_id"], "attempt": 1},
                                          {"run_id": env["run_id"]})]
    # The redelivered run-submit arrives after the lease: the submitter takes the stale claim over.
    repo.mutate_run(env["run_id"], lambda d: {**d, "attempts": [{**d["attempts"][0],
                                                                  "claimed_at": runs.now() - HOUR}]})
    assert submit(env) == "submitted"
    assert run(env)["status"] == runs.RUNNING and len(env["backend"].jobs) == 1


def test_a_job_the_dead_submitter_did_create_stays_one_job(env):
    assert submit(env) == "submitted"
    # As if the holder died after creating the job but before recording it: back to submitting.
    env["repo"].mutate_run(env["run_id"], lambda d: {**d, "status": runs.SUBMITTING, "attempts": [
        {**d["attempts"][0], "status": runs.SUBMITTING, "claimed_at": runs.now() - HOUR}]})
    assert reconcile_at(env, HOUR)["repaired"] == {"submit_requeued": 1}
    assert submit(env) == "submitted"
    assert len(env["backend"].jobs) == 1 and run(env)["status"] == runs.RUNNING


def test_a_lost_final_event_is_recovered_by_reading_the_job(env):
    assert submit(env) == "submitted"
    job_id = job_id_for(env["run_id"], 1)
    timeline = job_timeline(job_id)
    env["backend"].jobs[job_id] = timeline[-1]  # SUCCEEDED; its event never arrived
    write_results(env["store"], run(env)["gcs_artifacts_path"])
    assert reconcile_at(env, timedelta(seconds=5))["repaired"] == {}  # a young run: its events may come
    assert run(env)["status"] == runs.RUNNING

    report = reconcile_at(env, HOUR)
    assert report["repaired"] == {"job_state_applied": 1}
    done = run(env)
    assert done["status"] == runs.COMPLETED and done["metrics"]["recall_at_100"] == pytest.approx(0.47)
    assert reconcile_at(env, 2 * HOUR)["repaired"] == {}  # terminal now: nothing more


def test_a_running_run_whose_job_is_still_running_is_left_as_it_is(env):
    assert submit(env) == "submitted"
    job_id = job_id_for(env["run_id"], 1)
    env["backend"].jobs[job_id] = job_timeline(job_id)[3]
    first = reconcile_at(env, HOUR)  # the stages move forward: that is a repair of missed events
    assert first["repaired"] == {"job_state_applied": 1}
    before = run(env)
    assert reconcile_at(env, 2 * HOUR)["repaired"] == {} and run(env) == before


def test_a_failed_job_whose_event_was_lost_fails_the_run_at_its_stage(env):
    assert submit(env) == "submitted"
    job_id = job_id_for(env["run_id"], 1)
    env["backend"].jobs[job_id] = job_timeline(job_id, fail_at="Trainer")[-1]
    assert reconcile_at(env, HOUR)["repaired"] == {"job_state_applied": 1}
    assert run(env)["status"] == runs.FAILED and run(env)["error_stage"] == "Train"


def test_cancelling_is_sent_again_until_the_job_is_cancelled(env):
    assert submit(env) == "submitted"
    job_id = job_id_for(env["run_id"], 1)
    env["backend"].jobs[job_id] = job_timeline(job_id)[2]
    env["repo"].mutate_run(env["run_id"], lambda d: runs.request_cancel(d, "dev@example.com", runs.now()))
    assert run(env)["status"] == runs.CANCELLING
    report = reconcile_at(env, HOUR)
    assert report["repaired"] == {"cancel_resent": 1}
    assert env["publisher"].messages[-1] == (topics.RUN_COMMANDS, {"command": "cancel", "run_id": env["run_id"],
                                                                   "attempt": 1},
                                             {"run_id": env["run_id"], "command": "cancel"})
    cancelled = replace(env["backend"].jobs[job_id], state="PIPELINE_STATE_CANCELLED")
    env["backend"].jobs[job_id] = cancelled
    assert reconcile_at(env, 2 * HOUR)["repaired"] == {"job_state_applied": 1}
    assert run(env)["status"] == runs.CANCELLED


def test_a_deployment_left_deploying_gets_its_command_again(env):
    env["repo"].mutate_run(env["run_id"], lambda d: {**d, "status": runs.COMPLETED, "deployment_status": "deploying",
                                                     "deployment": {"id": "dep1", "status": DEPLOYING}})
    assert reconcile_at(env, timedelta(seconds=60))["repaired"] == {}
    assert reconcile_at(env, HOUR)["repaired"] == {"deploy_resent": 1}
    assert env["publisher"].messages[-1][1] == {"command": "deploy", "run_id": env["run_id"], "deployment_id": "dep1"}


def test_a_push_anyway_left_pushing_gets_its_command_again(env):
    env["repo"].mutate_run(env["run_id"], lambda d: {**d, "status": runs.NOT_BLESSED,
                                                     "push_anyway": {"status": runs.PUSHING}})
    assert reconcile_at(env, HOUR)["repaired"] == {"push_anyway_resent": 1}
    assert env["publisher"].messages[-1][1] == {"command": "push_anyway", "run_id": env["run_id"]}


def test_a_failed_publish_is_tried_again_on_the_next_pass(env):
    env["repo"].mutate_run(env["run_id"], lambda d: runs.claim_for_submit(d, 1, runs.now()))
    env["publisher"].fail = True
    assert reconcile_at(env, HOUR)["repaired"] == {}
    env["publisher"].fail = False
    assert reconcile_at(env, HOUR)["repaired"] == {"submit_requeued": 1}


def test_passes_are_counted_and_shown_by_the_api(env):
    from shared.http.app import Dependencies, create_app
    from tests.unit.test_api import AUTH

    env["repo"].mutate_run(env["run_id"], lambda d: runs.claim_for_submit(d, 1, runs.now()))
    reconcile_at(env, HOUR)
    reconcile_at(env, timedelta(seconds=1))
    settings = replace(env["settings"], auth_mode="local", dev_token="test-token", dev_identity="dev@example.com")
    client = create_app(Dependencies(repo=env["repo"], publisher=FakePublisher(), store=ArtifactStore(),
                                     settings=settings)).test_client()
    status = client.get("/api/reconciler", headers=AUTH).get_json()["reconciler"]
    assert status["passes"] == 2 and status["totals"] == {"submit_requeued": 1}
    assert status["last_pass"] == {"checked": {}, "repaired": {}}
    assert [r["run_id"] for r in status["recent_repairs"]] == [env["run_id"]]
    assert status["recent_repairs"][0]["action"] == "submit_requeued"


def test_before_any_pass_the_api_says_so():
    from shared.http.app import Dependencies, create_app
    from tests.unit.test_api import AUTH

    settings = local_settings("dev@example.com", "test-token")
    client = create_app(Dependencies(repo=InMemoryRepository(), publisher=FakePublisher(), store=ArtifactStore(),
                                     settings=settings)).test_client()
    assert client.get("/api/reconciler", headers=AUTH).get_json()["reconciler"]["passes"] == 0
