"""A scripted pipeline run: the job snapshots Vertex would report, in order, for one attempt."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shared.contract import results
from shared.contract.pipeline_jobs import JobSnapshot, TaskSnapshot

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)
TASKS = ("CsvExampleGen", "StatisticsGen", "SchemaGen", "Transform", "Trainer", "Evaluator", "Pusher")


def job_timeline(job_id: str, fail_at: str | None = None, cached: tuple = ()) -> list[JobSnapshot]:
    """Snapshots after each task change: QUEUED, then every task RUNNING then SUCCEEDED (or FAILED)."""
    name = f"projects/p/locations/europe-west4/pipelineJobs/{job_id}"
    states = {t: ("PENDING", None, None, None) for t in TASKS}
    snaps = [JobSnapshot(job_id=job_id, name=name, state="PIPELINE_STATE_QUEUED", create_time=T0)]

    def snap(state, end=None, error=None):
        tasks = tuple(TaskSnapshot(task_name=t, state=s, start_time=st, end_time=en, error=er)
                      for t, (s, st, en, er) in states.items())
        return JobSnapshot(job_id=job_id, name=name, state=state, create_time=T0, start_time=T0 + timedelta(seconds=1),
                           end_time=end, error=error, tasks=tasks)

    clock = T0 + timedelta(seconds=1)
    for task in TASKS:
        if task in cached:
            states[task] = ("SKIPPED", clock, clock, None)
            snaps.append(snap("PIPELINE_STATE_RUNNING"))
            continue
        states[task] = ("RUNNING", clock, None, None)
        snaps.append(snap("PIPELINE_STATE_RUNNING"))
        clock += timedelta(seconds=30)
        if task == fail_at:
            states[task] = ("FAILED", states[task][1], clock, f"{task} crashed: out of memory")
            snaps.append(snap("PIPELINE_STATE_RUNNING"))
            snaps.append(snap("PIPELINE_STATE_FAILED", end=clock, error="The DAG failed because some tasks failed."))
            return snaps
        states[task] = ("SUCCEEDED", states[task][1], clock, None)
        snaps.append(snap("PIPELINE_STATE_RUNNING"))
    snaps.append(snap("PIPELINE_STATE_SUCCEEDED", end=clock))
    return snaps


def write_results(store, artifacts_uri: str, blessed: bool = True, recall: float = 0.47, epochs: int = 3) -> None:
    history = [results.EpochMetrics(run_id="x", epoch=e, total_epochs=epochs, loss=1.0 / e, val_loss=1.1 / e,
                                    learning_rate=0.1, metrics={"recall_at_100": recall * e / epochs})
               for e in range(1, epochs + 1)]
    store.write_text(results.join(artifacts_uri, results.TRAINING_METRICS_FILE), results.TrainingMetrics(
        epochs=history, final={"loss": 1.0 / epochs, "recall_at_100": recall}, best_epoch=epochs).model_dump_json())
    store.write_text(results.join(artifacts_uri, results.EVALUATION_FILE), results.Evaluation(
        metrics={"recall_at_5": recall / 4, "recall_at_10": recall / 3, "recall_at_50": recall / 2,
                 "recall_at_100": recall}, baseline_metrics={"recall_at_100": recall / 3},
        threshold_metric="recall_at_100", threshold_value=0.4 if blessed else 0.99, actual_value=recall,
        passed=blessed, blessed=blessed).model_dump_json())
    store.write_text(results.join(artifacts_uri, results.ARTIFACTS_FILE), results.ArtifactLocations(
        saved_model=results.join(artifacts_uri, results.SAVED_MODEL_DIR)).model_dump_json())
    if blessed:
        store.write_text(results.join(artifacts_uri, results.REGISTRY_FILE), results.RegistryEntry(
            model_display_name="product-recommender-v3", model_resource_name="projects/p/locations/l/models/42",
            model_version_id="1", serving_model_uri=results.join(artifacts_uri, results.SAVED_MODEL_DIR),
            registered_at=T0).model_dump_json())
