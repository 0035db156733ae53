"""Vertex AI running a submitted PipelineJob, played for the rehearsal: the fake holds the job the
submitter compiled and created; this module moves its tasks through their states in the spec's
order and, after each change, publishes what Cloud Logging's sink publishes (a LogEntry naming the
job) on `pipeline-events`. Where a task leaves files or calls a Google service in the cloud, the
player does the same with the project's own code and contract:

- the Trainer and Evaluator leave the result files of shared/contract/results.py under the run's
  artifacts_uri (their values are the played run's, not a trained model's). The Trainer's CustomJob
  is not run, so a job spec of several machines (a chief pool + a worker pool) passes through as
  compiled and is played like one; tests/unit/pipeline_compiler/test_multi_worker.py runs the
  trainer itself as a chief and a worker;
- the Pusher registers the model through VertexRegistrar (the Pusher's own registrar) over
  ModelService's gRPC protocol, with the serving image the submitter compiled into the job.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from shared.contract import results, topics
from shared.domain.run_config import RunSpec


def task_order(job) -> list[str]:
    """The pipeline's tasks, each after the tasks it depends on (the compiled DAG's dependentTasks)."""
    tasks = dict(job.pipeline_spec["root"]["dag"]["tasks"])
    done: list[str] = []
    while len(done) < len(tasks):
        ready = sorted(n for n, t in tasks.items() if n not in done
                       and all(d in done for d in (t.get("dependentTasks") or [])))
        assert ready, f"the DAG has a cycle among {set(tasks) - set(done)}"
        done.extend(ready)
    return done


def pusher_parameters(job) -> dict[str, str]:
    task = next(n for n in job.pipeline_spec["root"]["dag"]["tasks"] if "Pusher" in n)
    params = job.pipeline_spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"]
    return {k: v["runtimeValue"]["constantValue"]["stringValue"] for k, v in params.items()}


def run_spec(cloud, run_id: str) -> RunSpec:
    """The RunSpec the submitter froze under the run's artifacts (the rehearsal's stand-in for gs://)."""
    artifacts = results.join(cloud.rehearsal.roots["TRAINYARD_ARTIFACTS_ROOT"], run_id)
    return RunSpec.model_validate_json(Path(results.join(artifacts, results.CONFIG_FILE)).read_text())


def _write(base: str, relative: str, model) -> None:
    path = Path(results.join(base, relative))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model.model_dump_json(indent=2))


class Player:
    def __init__(self, cloud, job_id: str, run_id: str):
        self.cloud, self.job_id, self.run_id = cloud, job_id, run_id
        self.job = cloud.pipelines.job(job_id)
        self.spec = run_spec(cloud, run_id)
        self.published: list[str] = []

    def _event(self, task: bool) -> None:
        message_id = self.cloud.publish(topics.PIPELINE_EVENTS, self.cloud.log_entry_for(self.job_id, task=task))
        self.published.append(message_id)
        self.cloud.handled('consumer_function["pipeline_events"]', message_id)

    def step(self, state: str, tasks: dict[str, str] | None = None, task: bool = True) -> None:
        self.cloud.pipelines.advance(self.job_id, state, tasks)
        self._event(task)

    def succeed(self, recall_at_100: float = 0.31, blessed: bool = True) -> None:
        """Every task runs and succeeds; the results are written as the tasks write them."""
        self.step("PIPELINE_STATE_RUNNING", task=False)
        for name in task_order(self.job):
            self.step("PIPELINE_STATE_RUNNING", {name: "RUNNING"})
            if "Trainer" in name:
                self._train(recall_at_100)
            if "Evaluator" in name:
                self._evaluate(recall_at_100, blessed)
            if "Pusher" in name and blessed:
                self._push()
            self.step("PIPELINE_STATE_RUNNING", {name: "SUCCEEDED"})
        self.step("PIPELINE_STATE_SUCCEEDED", task=False)

    def fail_at(self, failing: str = "Trainer") -> None:
        self.step("PIPELINE_STATE_RUNNING", task=False)
        for name in task_order(self.job):
            if name == failing:
                self.step("PIPELINE_STATE_RUNNING", {name: "FAILED"})
                break
            self.step("PIPELINE_STATE_RUNNING", {name: "SUCCEEDED"})
        self.step("PIPELINE_STATE_FAILED", task=False)

    # ------------------------------------------------------------------ what the tasks leave

    def _train(self, recall: float) -> None:
        base = self.spec.artifacts_uri
        epochs = [results.EpochMetrics(run_id=self.run_id, epoch=e, total_epochs=2, loss=1.0 / e,
                                       metrics={"recall_at_100": recall * e / 2}) for e in (1, 2)]
        _write(base, results.TRAINING_METRICS_FILE, results.TrainingMetrics(epochs=epochs, final=epochs[-1].metrics,
                                                                          best_epoch=2))
        saved_model = results.join(base, results.SAVED_MODEL_DIR)
        Path(saved_model).mkdir(parents=True, exist_ok=True)
        _write(base, results.ARTIFACTS_FILE, results.ArtifactLocations(
            saved_model=saved_model, training_metrics=results.join(base, results.TRAINING_METRICS_FILE)))

    def _evaluate(self, recall: float, blessed: bool) -> None:
        threshold = (self.spec.evaluator_config.blessing_threshold
                     if self.spec.evaluator_config and self.spec.evaluator_config.blessing_threshold else None)
        _write(self.spec.artifacts_uri, results.EVALUATION_FILE, results.Evaluation(
            metrics={"recall_at_100": recall}, baseline_metrics={"recall_at_100": recall / 2},
            threshold_metric=threshold.metric if threshold else None,
            threshold_value=getattr(threshold, "min_value", None) if threshold else None,
            actual_value=recall, passed=blessed, blessed=blessed))

    def _push(self) -> None:
        from pipeline_compiler.registry import VertexRegistrar

        params = pusher_parameters(self.job)
        assert params["target"] == "vertex"
        registrar = VertexRegistrar(params["project"], params["region"], params["serving_image"],
                                    emulator_host=self.cloud.vertex.server.address)
        entry = registrar.register(self.spec, results.join(self.spec.artifacts_uri, results.SAVED_MODEL_DIR))
        _write(self.spec.artifacts_uri, results.REGISTRY_FILE, entry)


def publish_via_pubsub(topic_path: str, data: bytes, attributes: dict) -> str:
    """What Cloud Scheduler's service agent does with a Pub/Sub target (for CloudSchedulerFake.fire)."""
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient().publish(topic_path, data, **attributes).result(timeout=30)


def now() -> datetime:
    return datetime.now(timezone.utc)


def as_json(value) -> str:
    return json.dumps(value, default=str)
