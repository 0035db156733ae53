"""The reconciler's repairs of issue 27's commands (in-memory fakes): a batch job that outlived its command's
redeliveries is followed to its end by a re-sent `batch_predict`; a failed run whose `gpu_fallback` command
was lost moves on to its next shape. Each repair is counted in the reconciler's status, and repeats are harmless."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared.contract import topics
from shared.contract.messages import BATCH_PREDICT, GPU_FALLBACK
from shared.domain import runs
from shared.errors import TransientError
from shared.services import lifecycle, reconcile
from tests.builders import local_settings
from tests.fakes import FakeBackend
from tests.unit.test_actions import make_run, post, published_commands, world  # noqa: F401 - the fixture
from tests.unit.test_batch_predictions import BODY, FakeBatch, consume
from tests.unit.test_gpu_fallback import CAPACITY, World

LATER = timedelta(days=1)  # past every threshold


def commands_of(w, kind):
    return [p for p in published_commands(w) if p["command"] == kind]


def test_a_batch_job_outliving_its_commands_is_followed_to_its_end(world):
    world.serving.batch_predictions = FakeBatch(states=("running",))
    world.serving.batch_predictions.wait_s = 0.0
    run = make_run(world, runs.COMPLETED)
    post(world, f"/api/training-runs/{run['id']}/batch-predictions", BODY)
    (command,) = commands_of(world, BATCH_PREDICT)
    with pytest.raises(TransientError, match="still running"):
        consume(world, command)
    world.publisher.messages.clear()  # its redeliveries ran out (dead-lettered): nobody follows the job now
    settings = world.deps.settings
    assert reconcile.reconcile(world.repo, world.deps.effects, FakeBackend(), world.store, settings)["repaired"] == {}
    report = reconcile.reconcile(world.repo, world.deps.effects, FakeBackend(), world.store, settings,
                                 at=runs.now() + LATER)
    assert report["repaired"] == {"batch_followed": 1} and report["checked"]["batch_prediction"] == 1
    (follow_up,) = commands_of(world, BATCH_PREDICT)
    assert follow_up == command
    world.serving.batch_predictions.states = ["succeeded"]
    assert consume(world, follow_up) == "done"
    stored = world.repo.get_run(run["id"])
    assert stored["batch_prediction"]["status"] == "succeeded" and stored["batch_prediction_status"] == "succeeded"
    assert stored["batch_prediction"]["outputs"]["gcs"]["rows"] == 3
    assert len(world.serving.batch_predictions.started) == 1  # followed, never started again
    again = reconcile.reconcile(world.repo, world.deps.effects, FakeBackend(), world.store, settings,
                                at=runs.now() + LATER)
    assert again["repaired"] == {} and "batch_prediction" not in again["checked"]
    assert world.repo.get_status(reconcile.STATUS)["totals"]["batch_followed"] == 1


def test_a_lost_gpu_fallback_command_is_sent_again_and_the_run_moves_on_once():
    w = World()
    attempt = w.repo.get_run(w.run["id"])["attempt"]
    w.repo.mutate_run(w.run["id"], lambda d: {**d, "status": runs.RUNNING})
    lifecycle.move_run(w.repo, w.run["id"], lambda d: runs.record_failure(
        d, attempt, "Train", CAPACITY, {"task": "Trainer"}, runs.now()), w.effects)
    w.publisher.messages.clear()  # the gpu_fallback command is lost
    settings = local_settings()

    def reconcile_pass(later=LATER):
        return reconcile.reconcile(w.repo, w.effects, FakeBackend(), None, settings, at=runs.now() + later)

    assert reconcile_pass(timedelta(0))["repaired"] == {}  # not stale yet: the command may be on its way
    report = reconcile_pass()
    assert report["repaired"] == {"gpu_fallback_resent": 1} and report["checked"]["gpu_fallback"] == 1
    sent = [p for t, p, _ in w.publisher.messages if t == topics.RUN_COMMANDS and p["command"] == GPU_FALLBACK]
    assert sent == [{"command": GPU_FALLBACK, "run_id": w.run["id"], "attempt": 1}]
    assert "NVIDIA_TESLA_T4" in w.repo.get_status(reconcile.STATUS)["recent_repairs"][0]["shape"]
    assert w.consume() == ["started"]
    run = w.repo.get_run(w.run["id"])
    assert run["attempt"] == 2 and run["status"] == runs.PENDING
    assert reconcile_pass()["repaired"] == {}  # moved on: nothing more to repair


def test_a_failed_run_with_no_shape_left_is_not_a_lost_fallback():
    w = World()
    w.repo.mutate_run(w.run["id"], lambda d: {**d, "status": runs.RUNNING})
    lifecycle.move_run(w.repo, w.run["id"], lambda d: runs.record_failure(
        d, 1, "Train", "ResourceExhaustedError: OOM when allocating tensor", {"task": "Trainer"}, runs.now()),
        w.effects)
    report = reconcile.reconcile(w.repo, w.effects, FakeBackend(), None, local_settings(), at=runs.now() + LATER)
    assert report["repaired"] == {} and "gpu_fallback" not in report["checked"]
