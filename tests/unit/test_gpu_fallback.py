"""GPU fallback (issue 27 part 6): Vertex's quota and capacity texts classified, the fallback's state machine
through the path every failure takes (lifecycle.move_run → after_change), the spend guard's refusal, the
list's end, duplicates, and the 400 that names a bad fallback's field."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from shared.contract import topics
from shared.contract.messages import GPU_FALLBACK, RunCommand
from shared.domain import gpu_fallback, runs, teams
from shared.domain.run_config import GpuConfig
from shared.errors import FieldError
from shared.services import commands, intake, lifecycle, spending
from shared.services.ports import Effects
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.validation import parse
from tests.builders import demo_member, run_body, seed_catalog
from tests.events import HERE
from tests.fakes import FakePublisher, InMemoryRepository

CASES = json.loads((HERE / "gpu_failures.json").read_text())["cases"]
QUOTA = next(c["text"] for c in CASES if c["cause"] == "quota")
CAPACITY = next(c["text"] for c in CASES if c["cause"] == "capacity")
FALLBACKS = [{"gpu_type": "NVIDIA_TESLA_T4", "gpu_count": 2, "region": "us-central1"},
             {"gpu_type": "NVIDIA_L4", "gpu_count": 2, "preemptible": False}]
HOOK = {"webhooks": [{"url": "https://hooks.example.com/trainyard"}]}


@pytest.mark.parametrize("case", CASES, ids=[f"{c['cause']}-{i}" for i, c in enumerate(CASES)])
def test_vertex_texts_are_classified(case):
    assert gpu_fallback.classify(case["text"]) == case["cause"], case["source"]


def test_the_trainer_out_of_memory_is_never_a_quota_or_capacity_failure():
    """TensorFlow prints RESOURCE_EXHAUSTED inside an OOM ("(0) RESOURCE_EXHAUSTED: OOM when allocating tensor"):
    the same texts the retry form calls out of memory (dashboard/src/testdata/failure_messages.json)."""
    messages = json.loads((Path(__file__).parents[2] / "dashboard/src/testdata/failure_messages.json").read_text())
    texts = [m if isinstance(m, str) else m["text"] for m in messages["out_of_memory"]]
    assert any("RESOURCE_EXHAUSTED: OOM" in t for t in texts)
    assert [t for t in texts if gpu_fallback.classify(t)] == []


def test_a_fallback_is_validated_as_a_gpu_config_is_and_the_400_names_its_field():
    config = parse(GpuConfig, {"fallbacks": FALLBACKS}, "gpu_config")
    assert config.fallbacks[0].machine_type == "n1-standard-16"  # derived for the shape's GPUs, as the primary's
    assert config.fallbacks[1].preemptible is False and config.fallbacks[0].region == "us-central1"
    with pytest.raises(FieldError) as bad:
        parse(GpuConfig, {"fallbacks": [FALLBACKS[0], {"gpu_type": "NVIDIA_L4", "gpu_count": 3}]}, "gpu_config")
    assert [e["field"] for e in bad.value.errors] == ["gpu_config.fallbacks.1.gpu_count"]
    with pytest.raises(FieldError) as bad:
        parse(GpuConfig, {"fallbacks": [{"region": "Mars; DROP"}]}, "gpu_config")
    assert [e["field"] for e in bad.value.errors] == ["gpu_config.fallbacks.0.region"]


class World:
    def __init__(self):
        self.repo, self.publisher = InMemoryRepository(), FakePublisher()
        self.effects = Effects(self.publisher, LocalTickerJobs())
        self.consumed: list[dict] = []
        ids = seed_catalog(self.repo)
        body = run_body(ids["experiment"], gpu_config={"gpu_type": "NVIDIA_L4", "gpu_count": 2, "fallbacks": FALLBACKS})
        run = intake.create_run(self.repo, self.effects, body, *demo_member("owner@example.com"))
        self.run = self.repo.mutate_run(run["id"], lambda d: {**d, "notifications": HOOK})  # told when it fails
        self.publisher.messages.clear()

    def fail(self, text: str, stage: str = "Train") -> dict:
        """The current attempt fails as the progress path records it (move_run: what follows, follows)."""
        attempt = self.repo.get_run(self.run["id"])["attempt"]
        self.repo.mutate_run(self.run["id"], lambda d: {**d, "status": runs.RUNNING})
        lifecycle.move_run(self.repo, self.run["id"], lambda d: runs.record_failure(
            d, attempt, stage, text, {"task": "Trainer"}, runs.now()), self.effects)
        self.consume()
        return self.repo.get_run(self.run["id"])

    def consume(self) -> list[str]:
        """The run-commands consumer takes the GPU fallback commands queued so far (each once)."""
        queued = [p for t, p, _ in self.publisher.messages if t == topics.RUN_COMMANDS and p["command"] == GPU_FALLBACK]
        done = [commands.handle_command(RunCommand(**p), self.repo, None, None, None, effects=self.effects, declared=())
                for p in queued[len(self.consumed):]]
        self.consumed.extend(queued[len(self.consumed):])
        return done

    def submits(self):
        return [p for t, p, _ in self.publisher.messages if t == topics.RUN_SUBMIT]

    def notifications(self):
        return [p for t, p, _ in self.publisher.messages if t == topics.RUN_COMMANDS and p["command"] == "notify"]


@pytest.fixture
def world():
    return World()


def test_a_quota_failure_at_train_moves_the_run_to_its_next_shape_as_a_retry_by_trainyard(world):
    run = world.fail(QUOTA)
    assert run["attempt"] == 2 and run["status"] == runs.PENDING
    assert gpu_fallback.shape_of(run["gpu_config"]) == {"gpu_type": "NVIDIA_TESLA_T4", "gpu_count": 2,
                                                      "machine_type": "n1-standard-16", "region": "us-central1",
                                                      "preemptible": True}
    assert run["gpu_config"]["fallbacks"] == world.run["gpu_config"]["fallbacks"]  # the list stays the run's
    first = run["attempts"][0]
    assert first["shape"] == gpu_fallback.shape_of(world.run["gpu_config"]) and first["ended_because"] == "quota"
    assert first["retried_by"] == gpu_fallback.AUTOMATIC_RETRIER == run["last_retry"]["by"]
    assert first["error_message"] == QUOTA
    assert world.submits() == [{"run_id": run["id"], "attempt": 2}]
    assert world.notifications() == []  # not the run's end: nobody is told it failed


def test_a_failure_that_is_not_quota_or_capacity_or_not_at_train_does_not_fall_back(world):
    run = world.fail("ResourceExhaustedError: OOM when allocating tensor with shape[65536,128]")
    assert run["attempt"] == 1 and run["status"] == runs.FAILED and world.submits() == []
    assert [n["event"] for n in world.notifications()] == ["failed"]
    other = World()
    run = other.fail(QUOTA, stage="Transform")  # Dataflow's quota is not a GPU shape's
    assert run["attempt"] == 1 and run["status"] == runs.FAILED


def test_a_redelivered_or_concurrent_failure_starts_one_attempt(world):
    failed = {**world.repo.get_run(world.run["id"]), "status": runs.FAILED, "error_stage": "Train",
              "error_message": CAPACITY}
    world.repo.mutate_run(world.run["id"], lambda d: failed)
    for _ in range(3):  # the same failed attempt seen three times (two consumers, one redelivery)
        lifecycle.after_change(world.repo, failed, failed, world.effects)
    assert world.consume() == ["started", "ignored", "ignored"]
    run = world.repo.get_run(world.run["id"])
    assert run["attempt"] == 2 and len(run["attempts"]) == 1
    assert {s["attempt"] for s in world.submits()} == {2}  # re-queued at most (the submitter's claim dedupes)


def test_past_the_lists_end_the_run_fails_naming_every_shape_and_why(world):
    world.fail(QUOTA)
    world.fail(CAPACITY)
    run = world.fail(CAPACITY)
    assert run["attempt"] == 3 and run["status"] == runs.FAILED and run["error_stage"] == "Train"
    message = run["error_message"]
    assert message.startswith("GPU fallback: every listed shape failed for quota or capacity")
    assert "attempt 1 on 2x NVIDIA_L4 on g2-standard-24 (Spot): quota" in message
    assert "attempt 2 on 2x NVIDIA_TESLA_T4 on n1-standard-16 in us-central1 (Spot): capacity" in message
    assert "attempt 3 on 2x NVIDIA_L4 on g2-standard-24 (on-demand): capacity" in message
    assert run["gpu_fallback"]["stopped"] and len(run["gpu_fallback"]["shapes"]) == 3
    assert [s["attempt"] for s in world.submits()] == [2, 3]
    assert [(n["attempt"], n["event"]) for n in world.notifications()] == [(3, "failed")]  # its end, once


def test_the_spend_guard_refusing_the_next_attempt_stops_the_fallback_and_says_why(world, monkeypatch):
    team = teams.demo("owner@example.com")[0]
    broke = replace(team, budget=teams.Budget(gpu_hours_per_month=0.001))
    settings = replace(spending.settings_or_default(None), teams=(broke,))
    monkeypatch.setattr(spending, "settings_or_default", lambda given: given or settings)
    run = world.fail(QUOTA)
    assert run["attempt"] == 1 and run["status"] == runs.FAILED and world.submits() == []
    assert run["error_message"].startswith("GPU fallback stopped: ")
    assert "budget" in run["error_message"] and "attempt 1 on 2x NVIDIA_L4" in run["error_message"]
    assert [(n["attempt"], n["event"]) for n in world.notifications()] == [(1, "failed")]  # its end, announced
    lifecycle.after_change(world.repo, run, run, world.effects)  # a redelivered event: stopped, nothing more
    assert world.consume() == [] and world.repo.get_run(run["id"])["attempt"] == 1


class QuotaByType:
    """The GPU quota pre-flight's port: free quota for some GPU types only; one type never answers."""

    def __init__(self, free: set[str], broken: str = ""):
        self.free, self.broken, self.asked = free, broken, []

    def check(self, region, gpu_type, gpu_count, preemptible):
        self.asked.append((region, gpu_type, preemptible))
        if gpu_type == self.broken:
            raise RuntimeError("quota services unreachable")
        ok = gpu_type in self.free
        return {"sufficient": ok, "message": f"{gpu_type} {'free' if ok else 'none free'}"}


def _create_with_quota(quota) -> dict:
    from shared.adapters.run_data_sources import RunDataSources
    from tests.builders import local_settings

    repo = InMemoryRepository()
    ids = seed_catalog(repo)
    body = run_body(ids["experiment"], gpu_config={"gpu_type": "NVIDIA_L4", "gpu_count": 2, "fallbacks": FALLBACKS})
    return intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()), body, *demo_member("owner@example.com"),
                             run_data=RunDataSources(None, quota), settings=local_settings("owner@example.com"))


def test_the_preflight_ranks_shapes_with_free_quota_first_and_the_run_starts_on_the_first():
    quota = QuotaByType(free={"NVIDIA_TESLA_T4"})
    run = _create_with_quota(quota)
    order = [(s["gpu_type"], s["preemptible"]) for s in run["gpu_fallback"]["shapes"]]
    assert order == [("NVIDIA_TESLA_T4", True), ("NVIDIA_L4", True), ("NVIDIA_L4", False)]  # the rest as listed
    assert run["gpu_config"]["gpu_type"] == "NVIDIA_TESLA_T4" and run["gpu_config"]["region"] == "us-central1"
    assert ("us-central1", "NVIDIA_TESLA_T4", True) in quota.asked  # each shape checked in its own region
    assert any(w.startswith("GPU quota: starts on 2x NVIDIA_TESLA_T4") for w in run["warnings"])


def test_with_quota_for_the_first_shape_or_no_answer_the_users_order_stands():
    run = _create_with_quota(QuotaByType(free={"NVIDIA_L4"}))
    assert run["gpu_config"]["gpu_type"] == "NVIDIA_L4" and run["gpu_config"]["preemptible"] is True
    run = _create_with_quota(QuotaByType(free=set(), broken="NVIDIA_TESLA_T4"))
    assert [s["gpu_type"] for s in run["gpu_fallback"]["shapes"]] == ["NVIDIA_L4", "NVIDIA_TESLA_T4", "NVIDIA_L4"]
    assert run["gpu_config"]["gpu_type"] == "NVIDIA_L4"


def test_a_run_started_on_a_ranked_shape_falls_back_along_the_ranked_order():
    run = _create_with_quota(QuotaByType(free={"NVIDIA_TESLA_T4"}))
    failed = {**run, "status": runs.FAILED, "error_stage": "Train", "error_message": CAPACITY}
    assert gpu_fallback.shape_of(gpu_fallback.next_config(failed)) == run["gpu_fallback"]["shapes"][1]


def test_a_trainer_custom_job_refused_for_quota_is_a_quota_cause_however_long_the_printed_job():
    """TFX's Vertex Trainer raises RuntimeError("Job … did not succeed. Detailed response <CustomJob>") (tfx/
    extensions/google_cloud_ai_platform/runner.py); a job Vertex could not give its GPUs ends with a
    google.rpc.Status of code 8 and no traceback, after a job_spec long enough to pass MAX_CHARS."""
    from google.cloud import aiplatform_v1
    from google.rpc import status_pb2

    from shared.domain.root_cause import MAX_CHARS, from_text

    pools = [aiplatform_v1.WorkerPoolSpec(replica_count=1, container_spec=aiplatform_v1.ContainerSpec(
        image_uri="europe-docker.pkg.dev/p/trainyard/gpu:1", args=[f"--arg{i}=" + "x" * 60 for i in range(40)]))]
    job = aiplatform_v1.CustomJob(name="projects/1/locations/europe-west4/customJobs/99", display_name="trainer",
                                  job_spec=aiplatform_v1.CustomJobSpec(worker_pool_specs=pools),
                                  state=aiplatform_v1.JobState.JOB_STATE_FAILED)
    job.error = status_pb2.Status(code=8, message="The following quota metrics exceed quota limits: "
                                                  "aiplatform.googleapis.com/custom_model_training_nvidia_l4_gpus")
    detailed = f"Job '{job.name}' did not succeed.  Detailed response {job}."
    assert len(detailed) > MAX_CHARS
    task_error = ("The replica workerpool0-0 exited with a non-zero status of 1. Termination reason: Error. \n"
                  "Traceback (most recent call last):\n  [...]\n    raise RuntimeError(err_msg)\n"
                  f"RuntimeError: {detailed}\n")
    cause = from_text(task_error)
    assert cause == ("RuntimeError: The following quota metrics exceed quota limits: "
                     "aiplatform.googleapis.com/custom_model_training_nvidia_l4_gpus (code 8)")
    assert gpu_fallback.classify(cause) == gpu_fallback.QUOTA
