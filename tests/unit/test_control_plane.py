"""Submit path and progress path with in-memory fakes: claims, idempotency, ordering, terminal states."""
from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.contract import results
from shared.domain import runs
from shared.adapters.artifact_store import ArtifactStore
from shared.consumer import consume
from shared.contract.messages import RunCommand, RunSubmit, ScheduleTrigger
from shared.contract.pipeline_log_entry import PIPELINE_RESOURCE_TYPE, PipelineLogEntry
from shared.errors import PermanentError, TransientError
from shared.services import progress, submission
from shared.adapters.scheduler_jobs import LocalTickerJobs
from shared.services.ports import Effects
from shared.services import intake
from shared.settings import get_settings
from tests.builders import demo_member, run_body, seed_catalog
from tests.events import envelope, load_event
from tests.fakes import FakeBackend, FakeCompiler, FakePublisher, InMemoryRepository
from tests.unit.scenario import T0, job_timeline, write_results


@pytest.fixture
def env(tmp_path):
    repo = InMemoryRepository()
    ids = seed_catalog(repo)
    settings = replace(get_settings(), artifacts_root=str(tmp_path / "artifacts"),
                       pipeline_root=str(tmp_path / "root"), project="proj")
    backend, compiler, store = FakeBackend(), FakeCompiler(), ArtifactStore()
    run = intake.create_run(repo, Effects(FakePublisher(), LocalTickerJobs()),
                            run_body(ids["experiment"]), *demo_member("dev@example.com"))
    return dict(repo=repo, backend=backend, compiler=compiler, store=store, settings=settings, run=run, ids=ids)


def do_submit(env, attempt=1):
    return submission.submit(submission.RunSubmit(run_id=env["run"]["id"], attempt=attempt), env["repo"],
                             env["backend"], env["store"], submission.Compiler(env["compiler"].compile_run,
                                                                               env["compiler"].module_files),
                             env["settings"], quiet())


def quiet() -> Effects:
    """Effects whose messages no test here reads."""
    return Effects(FakePublisher(), LocalTickerJobs())


def stable(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("updated_at", "version")}


# ----------------------------------------------------------------------------- submit path


def test_submit_claims_snapshots_compiles_and_creates_the_job(env):
    assert do_submit(env) == "submitted"
    run = env["repo"].get_run(env["run"]["id"])
    request = env["backend"].created[0]
    assert request.job_id == f"{run['id']}-a1"
    assert request.labels == {"trainyard-run-id": run["id"], "trainyard-attempt": "1",  # billing labels too
                              "trainyard-model": run["name"], "trainyard-schedule-id": "none"}
    assert run["status"] == "running" and run["vertex_pipeline_job_name"].endswith(request.job_id)
    compile_stage = run["stage_details"][0]
    assert compile_stage["name"] == "Compile" and compile_stage["status"] == "completed"
    assert compile_stage["duration_seconds"] is not None
    artifacts = run["gcs_artifacts_path"]
    spec = json.loads(env["store"].read_text(results.join(artifacts, results.CONFIG_FILE)))
    assert spec["run_id"] == run["id"] and spec["model_config"]["model_type"] == "retrieval"
    assert spec["training_params"]["epochs"] == 5 and spec["progress_topic"] == "projects/proj/topics/training-progress"
    assert env["store"].read_text(results.join(artifacts, results.PIPELINE_JOB_FILE))
    assert run["attempts"][0]["status"] == "running"


def test_duplicate_and_late_run_submit_create_one_job(env):
    assert do_submit(env) == "submitted"
    assert do_submit(env) == "skipped"
    assert len(env["backend"].created) == 1 and len(env["compiler"].compiled) == 1


def test_a_concurrent_claim_is_retried_and_a_stale_one_taken_over(env):
    run_id = env["run"]["id"]
    env["repo"].mutate_run(run_id, lambda d: runs.claim_for_submit(d, 1, runs.now()))
    with pytest.raises(TransientError):
        do_submit(env)
    env["repo"].mutate_run(run_id, lambda d: {**d, "attempts": [{**d["attempts"][0],
                                                                  "claimed_at": runs.now() - timedelta(hours=1)}]})
    assert do_submit(env) == "submitted"


def test_the_claim_lease_is_the_settings_one(env):
    """A claim younger than TRAINYARD_SUBMIT_LEASE_SECONDS is another delivery's; an older one is taken over."""
    run_id = env["run"]["id"]
    env["settings"] = replace(env["settings"], submit_lease_s=120)
    env["repo"].mutate_run(run_id, lambda d: runs.claim_for_submit(d, 1, runs.now() - timedelta(seconds=100)))
    with pytest.raises(TransientError, match="another delivery"):
        do_submit(env)
    env["repo"].mutate_run(run_id, lambda d: {**d, "attempts": [{**d["attempts"][0],
                                                                  "claimed_at": runs.now() - timedelta(seconds=130)}]})
    assert do_submit(env) == "submitted"


def test_a_transient_failure_releases_the_claim_so_the_next_redelivery_submits_at_once(env):
    """Issue 15: a backend 5xx used to keep the failed delivery's claim for the whole lease (630 s), so
    every redelivery was refused until then — on the local stack's retry window (10 deliveries, about a
    minute) a two-second outage dead-lettered the run's run-submit."""
    env["backend"].fail_create = TransientError("Vertex AI Pipelines: 503 unavailable")
    for _ in range(2):
        with pytest.raises(TransientError, match="503"):  # the backend's error, not "another delivery"
            do_submit(env)
    run = env["repo"].get_run(env["run"]["id"])
    assert run["status"] == "submitting" and run["attempts"][0]["claimed_at"] is None
    env["backend"].fail_create = None
    assert do_submit(env) == "submitted"
    assert len(env["backend"].created) == 1


def test_a_release_never_frees_a_claim_taken_over_since(env):
    run_id = env["run"]["id"]
    old = runs.now() - timedelta(hours=1)
    env["repo"].mutate_run(run_id, lambda d: runs.claim_for_submit(d, 1, old))
    newer = runs.now()
    env["repo"].mutate_run(run_id, lambda d: {**d, "attempts": [{**d["attempts"][0], "claimed_at": newer}]})
    env["repo"].mutate_run(run_id, lambda d: runs.release_submit(d, 1, old))  # the first holder, late
    assert env["repo"].get_run(run_id)["attempts"][0]["claimed_at"] == newer


def test_compile_failure_fails_the_run_at_compile(env):
    env["compiler"].fail = ValueError("unsupported feature transform")
    assert do_submit(env) == "failed"
    run = env["repo"].get_run(env["run"]["id"])
    assert run["status"] == "failed" and run["error_stage"] == "Compile"
    assert "unsupported feature transform" in run["error_message"]
    assert run["stage_details"][0]["status"] == "failed"


def test_unreadable_data_fails_at_compile_and_a_transient_read_is_retried(env):
    """Review N7: the compiler's own verdicts pass through the submitter unwrapped. Data Trainyard may not
    read fails the run at Compile with the compiler's message (the data, the account, the fix); a
    transient read is raised, so the run-submit is redelivered."""
    from pipeline_compiler.data_scale import DataUnreadable

    env["compiler"].fail = TransientError("measuring the run's data failed transiently: 503")
    with pytest.raises(TransientError, match="measuring"):
        do_submit(env)
    assert env["repo"].get_run(env["run"]["id"])["status"] == "submitting"
    message = "the run's data gs://team-data/x.csv cannot be read by p@x (403). Fix: list 'team-data' in data_buckets."
    env["compiler"].fail = DataUnreadable(message)
    assert do_submit(env) == "failed"
    run = env["repo"].get_run(env["run"]["id"])
    assert (run["status"], run["error_stage"], run["error_message"]) == ("failed", "Compile", message)


@pytest.mark.parametrize("age_days, retention, cached", [
    (0, None, True),  # the local twin: nothing is ever deleted
    (10, 90, True), (81, 90, True),
    (83, 90, False),  # its first attempt's outputs could be deleted while this attempt still reads them
    (0, 5, False),  # a retention inside the margin: every submit recomputes
])
def test_a_submit_uses_the_cache_only_while_the_runs_outputs_outlive_it(env, age_days, retention, cached):
    """Review N12: the pipeline root deletes objects after TRAINYARD_PIPELINE_ROOT_RETENTION_DAYS (Terraform's
    lifecycle rule), so a retry of a run older than that minus the margin must not be served from the cache."""
    from shared.domain.pipeline_cache import CACHE_MARGIN

    assert CACHE_MARGIN == timedelta(days=8)
    env["settings"] = replace(env["settings"], pipeline_root_retention_days=retention)
    env["repo"].mutate_run(env["run"]["id"], lambda d: {**d, "created_at": runs.now() - timedelta(days=age_days)})
    assert do_submit(env) == "submitted"
    assert env["backend"].created[0].enable_caching is cached


def test_vertex_refusal_is_permanent_and_outage_is_transient(env):
    env["backend"].fail_create = TransientError("503")
    with pytest.raises(TransientError):
        do_submit(env)
    assert env["repo"].get_run(env["run"]["id"])["status"] == "submitting"
    env["backend"].fail_create = PermanentError("quota: NVIDIA_L4 not available", stage="Compile")
    assert do_submit(env) == "failed"
    assert "NVIDIA_L4" in env["repo"].get_run(env["run"]["id"])["error_message"]


def test_missing_config_fails_permanently(env):
    env["repo"].catalog["model_configs"].clear()
    assert do_submit(env) == "failed"
    assert "model config" in env["repo"].get_run(env["run"]["id"])["error_message"]


# ----------------------------------------------------------------------------- progress path


def feed(env, snapshots, seed=None, twice=False):
    events = list(snapshots) * (2 if twice else 1)
    if seed is not None:
        random.Random(seed).shuffle(events)
        events.append(snapshots[-1])  # in real life the latest state is what a late read sees
    for snap in events:
        env["backend"].jobs[snap.job_id] = snap
        entry = {"logName": "projects/p/logs/aiplatform.googleapis.com%2Fpipeline_job_events",
                 "resource": {"type": PIPELINE_RESOURCE_TYPE, "labels": {"pipeline_job_id": snap.job_id}}}
        progress.on_pipeline_event(entry, env["repo"], env["backend"], env["store"], quiet())
    return env["repo"].get_run(env["run"]["id"])


def test_in_order_run_ends_completed_with_metrics_and_registry(env):
    do_submit(env)
    run = env["repo"].get_run(env["run"]["id"])
    write_results(env["store"], run["gcs_artifacts_path"], blessed=True)
    final = feed(env, job_timeline(f"{run['id']}-a1"))
    assert final["status"] == "completed" and final["is_blessed"] is True
    assert final["recall_at_100"] == pytest.approx(0.47) and final["metrics"]["recall_at_5"] > 0
    assert final["vertex_model_resource_name"] == "projects/p/locations/l/models/42"
    assert final["vertex_model_version"] == "1"
    assert [s["status"] for s in final["stage_details"]] == ["completed"] * 8
    assert all(s["duration_seconds"] == 30 for s in final["stage_details"][1:])
    assert final["progress_percent"] == 100 and final["current_epoch"] == 3
    assert final["duration_seconds"] is not None and final["completed_at"] is not None
    assert final["artifacts"]["saved_model"].endswith("model/saved_model")


def test_coerced_values_of_the_data_check_are_reported_on_the_run(env):
    do_submit(env)
    run = env["repo"].get_run(env["run"]["id"])
    write_results(env["store"], run["gcs_artifacts_path"], blessed=True)
    coercion = results.DataCoercion(column="price", feature="price_bucket", transform="bucketize", count=15,
                                    rows=100_000, examples=["V"])
    env["store"].write_text(results.join(run["gcs_artifacts_path"], results.DATA_CHECK_FILE),
                            results.DataCheck(coercions=[coercion]).model_dump_json())
    final = feed(env, job_timeline(f"{run['id']}-a1"))
    assert final["status"] == "completed"
    assert final["data_coercions"] == [coercion.model_dump(mode="json")]
    assert final["data_coercions"][0]["count"] == 15
    assert ("column 'price' (feature 'price_bucket', bucketize): 15 of 100,000 values were not numbers and were "
            "treated as missing (e.g. 'V')") in final["warnings"]


def test_a_run_that_fails_after_the_data_check_coerced_values_still_reports_them(env):
    do_submit(env)
    run = env["repo"].get_run(env["run"]["id"])
    coercion = results.DataCoercion(column="price", feature="price_bucket", transform="bucketize", count=15,
                                    rows=100_000, examples=["V"])
    env["store"].write_text(results.join(run["gcs_artifacts_path"], results.DATA_CHECK_FILE),
                            results.DataCheck(coercions=[coercion]).model_dump_json())
    final = feed(env, job_timeline(f"{run['id']}-a1", fail_at="Trainer"))
    assert final["status"] == "failed" and final["error_stage"] == "Train"
    assert final["data_coercions"] == [coercion.model_dump(mode="json")]
    assert sum("15 of 100,000 values were not numbers" in w for w in final["warnings"]) == 1


def test_a_failed_run_without_a_data_check_or_with_an_unreadable_one_fails_as_before(env):
    do_submit(env)
    run = env["repo"].get_run(env["run"]["id"])
    env["store"].write_text(results.join(run["gcs_artifacts_path"], results.DATA_CHECK_FILE), "{not json")
    final = feed(env, job_timeline(f"{run['id']}-a1", fail_at="Trainer"))
    assert final["status"] == "failed" and final["error_stage"] == "Train" and "out of memory" in final["error_message"]
    assert "data_coercions" not in final


@pytest.mark.parametrize("seed", range(8))
def test_shuffled_and_duplicated_events_end_in_the_same_document(env, seed):
    do_submit(env)
    run = env["repo"].get_run(env["run"]["id"])
    write_results(env["store"], run["gcs_artifacts_path"])
    timeline = job_timeline(f"{run['id']}-a1")
    snapshot_of_run = env["repo"].get_run(run["id"])
    in_order = feed(env, timeline)
    env["repo"].runs[run["id"]] = snapshot_of_run
    shuffled = feed(env, timeline, seed=seed, twice=True)
    assert stable(shuffled) == stable(in_order)


def test_state_never_moves_backwards(env):
    do_submit(env)
    run = env["repo"].get_run(env["run"]["id"])
    write_results(env["store"], run["gcs_artifacts_path"])
    timeline = job_timeline(f"{run['id']}-a1")
    done = feed(env, timeline)
    late = feed(env, timeline[2:5])  # late RUNNING entries after SUCCEEDED
    assert stable(late) == stable(done)
    assert runs.apply_job_snapshot(done, timeline[3]) is None


def test_stage_does_not_regress_while_running(env):
    do_submit(env)
    run_id = env["run"]["id"]
    timeline = job_timeline(f"{run_id}-a1")
    feed(env, timeline[:10])
    ahead = env["repo"].get_run(run_id)
    feed(env, timeline[:4])
    assert stable(env["repo"].get_run(run_id)) == stable(ahead)
    assert ahead["current_stage"] == "Train"


def test_not_blessed_is_not_registered(env):
    do_submit(env)
    run = env["repo"].get_run(env["run"]["id"])
    write_results(env["store"], run["gcs_artifacts_path"], blessed=False, recall=0.2)
    final = feed(env, job_timeline(f"{run['id']}-a1"))
    assert final["status"] == "not_blessed" and final["is_blessed"] is False
    assert final["evaluation_results"]["threshold_value"] == 0.99 and final["evaluation_results"]["actual_value"] == 0.2
    assert not final.get("vertex_model_resource_name")


def test_failed_task_fails_the_run_at_its_stage(env):
    do_submit(env)
    run_id = env["run"]["id"]
    final = feed(env, job_timeline(f"{run_id}-a1", fail_at="Transform"))
    assert final["status"] == "failed" and final["error_stage"] == "Transform"
    assert "out of memory" in final["error_message"]
    assert [s["status"] for s in final["stage_details"]][:5] == ["completed"] * 4 + ["failed"]
    assert final["attempts"][0]["error_stage"] == "Transform"


def test_cached_tasks_show_as_cached(env):
    do_submit(env)
    run = env["repo"].get_run(env["run"]["id"])
    write_results(env["store"], run["gcs_artifacts_path"])
    final = feed(env, job_timeline(f"{run['id']}-a1", cached=("CsvExampleGen", "StatisticsGen")))
    assert [s["status"] for s in final["stage_details"][1:3]] == ["cached", "cached"]


def test_success_without_result_files_fails_clearly(env):
    do_submit(env)
    final = feed(env, job_timeline(f"{env['run']['id']}-a1"))
    assert final["status"] == "failed" and final["error_stage"] == "Evaluate"
    assert "evaluation_results.json" in final["error_message"]


def test_events_of_another_attempt_or_unknown_jobs_are_ignored(env):
    do_submit(env)
    run_id = env["run"]["id"]
    old = job_timeline(f"{run_id}-a7")
    before = env["repo"].get_run(run_id)
    assert stable(feed(env, old)) == stable(before)
    entry = {"logName": "x/logs/aiplatform.googleapis.com%2Fpipeline_job_events",
             "resource": {"type": PIPELINE_RESOURCE_TYPE, "labels": {"pipeline_job_id": "someone-elses"}}}
    assert progress.on_pipeline_event(entry, env["repo"], env["backend"], env["store"], quiet()) == "ignored"


# ----------------------------------------------------------------------------- training progress


def epoch(run_id, n, total=10, attempt=1):
    return results.EpochMetrics.model_validate({
        "run_id": run_id, "attempt": attempt, "epoch": n, "total_epochs": total, "loss": 1 / n, "val_loss": 1.2 / n,
        "learning_rate": 0.1, "grad_norm": 2.0 / n, "metrics": {"recall_at_100": 0.04 * n}})


def test_epochs_update_live_fields_and_history(env):
    do_submit(env)
    run_id = env["run"]["id"]
    for n in (1, 2, 3):
        assert progress.on_training_progress(epoch(run_id, n), env["repo"], 0, quiet()) == "updated"
    run = env["repo"].get_run(run_id)
    assert run["current_epoch"] == 3 and run["total_epochs"] == 10
    assert run["live_metrics"]["recall_at_100"] == pytest.approx(0.12)
    assert run["live_metrics"]["grad_norm"] == pytest.approx(2 / 3)
    assert run["current_stage"] == "Train" and 0 < run["progress_percent"] < 100
    assert [e["epoch"] for e in env["repo"].list_epochs(run_id, 1)] == [1, 2, 3]
    assert [e["grad_norm"] for e in env["repo"].list_epochs(run_id, 1)] == pytest.approx([2, 1, 2 / 3])


def test_epochs_out_of_order_or_repeated_never_go_back(env):
    do_submit(env)
    run_id = env["run"]["id"]
    for n in (4, 2, 4, 3, 1):
        progress.on_training_progress(epoch(run_id, n), env["repo"], 0, quiet())
    assert env["repo"].get_run(run_id)["current_epoch"] == 4
    assert [e["epoch"] for e in env["repo"].list_epochs(run_id, 1)] == [1, 2, 3, 4]


def test_fast_epochs_write_the_run_at_most_once_per_interval(env):
    do_submit(env)
    run_id = env["run"]["id"]
    writes_before = env["repo"].writes
    for n in range(1, 10):
        progress.on_training_progress(epoch(run_id, n), env["repo"], 60.0, quiet())
    assert env["repo"].writes - writes_before == 1  # the first epoch; the rest land in history only
    progress.on_training_progress(epoch(run_id, 10), env["repo"], 60.0, quiet())  # the final epoch always lands
    assert env["repo"].get_run(run_id)["current_epoch"] == 10
    assert len(env["repo"].list_epochs(run_id, 1)) == 10


def test_apply_epoch_throttle_is_time_based():
    doc = {"attempt": 1, "status": "running", "stage_details": runs.initial_stages(), "current_epoch": 1,
           "progress_written_at": T0}
    e = {"attempt": 1, "epoch": 2, "total_epochs": 10}
    assert runs.apply_epoch(doc, e, T0 + timedelta(milliseconds=500), 1.0) is None
    assert runs.apply_epoch(doc, e, T0 + timedelta(milliseconds=1500), 1.0)["current_epoch"] == 2


# ----------------------------------------------------------------------------- envelopes


def test_consumer_acks_malformed_and_unknown_messages(env):
    seen = []
    assert consume(load_event("malformed_not_base64.json"), PipelineLogEntry,
                   lambda *a: seen.append(a), "t") == "malformed"

    def handle(entry, _):
        return progress.on_pipeline_event(entry, env["repo"], env["backend"], env["store"], quiet())

    assert consume(load_event("unknown_log_entry.json"), PipelineLogEntry, handle, "t") == "malformed"
    assert consume({"nothing": 1}, PipelineLogEntry, handle, "t") == "malformed"
    # A payload that is not the topic's model is acknowledged before any handler runs.
    assert consume(envelope({"x": 1}), RunSubmit, lambda *a: seen.append(a), "t") == "malformed"
    explode = envelope({"command": "explode", "run_id": "r"})
    assert consume(explode, RunCommand, lambda *a: seen.append(a), "t") == "malformed"
    assert consume(envelope({"schedule_id": "ts-1", "slot": "2026-05-01T02:30:00"}), ScheduleTrigger,
                   lambda *a: seen.append(a), "t") == "malformed"  # a slot without its UTC offset
    assert seen == []


def test_consumer_hands_the_handler_the_model_and_the_envelope():
    got = []
    body = envelope({"schedule_id": "ts-1", "slot": "2026-05-01T02:30:00Z"}, publish_time="2026-05-01T02:30:01Z")
    assert consume(body, ScheduleTrigger, lambda trigger, message: got.append((trigger, message)) or "ok", "t") == "ok"
    trigger, message = got[0]
    assert trigger.schedule_id == "ts-1" and trigger.slot.isoformat() == "2026-05-01T02:30:00+00:00"
    assert message.published_at.isoformat() == "2026-05-01T02:30:01+00:00"


def test_consumer_raises_transient_for_redelivery(env):
    def handle(*_):
        raise TransientError("firestore unavailable")

    with pytest.raises(TransientError):
        consume(load_event("run_submit.json"), RunSubmit, handle, "t")


def test_canonical_sink_entries_name_the_job(env):
    do_submit(env)
    run_id = env["run"]["id"]
    timeline = job_timeline(f"{run_id}-a1")
    env["backend"].jobs[f"{run_id}-a1"] = timeline[3]
    for name in ("pipeline_job_event.json", "pipeline_job_task_event.json"):
        body = load_event(name, **{"tr-0123456789abcdef": run_id})
        outcome = consume(body, PipelineLogEntry, lambda entry, _: progress.on_pipeline_event(
            entry, env["repo"], env["backend"], env["store"], quiet()), "t")
        assert outcome in ("updated", "unchanged")
    assert env["repo"].get_run(run_id)["stage_details"][1]["status"] == "completed"


@pytest.mark.parametrize("trainer_region, skipped", [(None, False), ("europe-west4", False), ("us-central1", True)])
def test_a_submit_says_when_the_attempts_trainer_cannot_upload_to_the_tensorboard(env, trainer_region, skipped):
    """The TensorBoard instance is in the deployment's region; a GPU fallback's attempt elsewhere uploads nothing
    (pipeline_compiler/pipeline.py tensorboard_upload), and the run says so and why; an attempt at home clears it."""
    env["settings"] = replace(env["settings"], region="europe-west4",
                              vertex_tensorboard="projects/proj/locations/europe-west4/tensorboards/1")
    env["repo"].mutate_run(env["run"]["id"], lambda d: {
        **d, "gpu_config": {**d["gpu_config"], "region": trainer_region},
        "tensorboard_upload_skipped": "a former attempt's note"})
    assert do_submit(env) == "submitted"
    note = env["repo"].get_run(env["run"]["id"])["tensorboard_upload_skipped"]
    if skipped:
        assert note.startswith("TensorBoard upload skipped: this attempt's Trainer runs in us-central1 (GPU fallback)")
        assert "instance is in europe-west4" in note and "trainyard runs tensorboard" in note
    else:
        assert note is None
