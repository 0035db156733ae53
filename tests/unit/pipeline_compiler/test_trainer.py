"""Trainer features on tiny transformed demo data (CPU): schedules, early stopping, checkpoint
resume after a real SIGKILL, warm restart, mixed precision, MirroredStrategy, exports, progress."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from pipeline_compiler.modules import callbacks, export, trainer  # noqa: E402
from shared.contract import results as R  # noqa: E402
from shared.domain.run_config import CosineLR, RetrievalIndex, WarmupCosineLR  # noqa: E402
from tests.unit.pipeline_compiler.tiny_data import tiny_spec  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _train(tiny, run_id, export=False, devices=None, **spec_kwargs):
    spec = tiny_spec(tiny.workdir, run_id=run_id, **spec_kwargs)
    return trainer.train_and_export(spec, [tiny.train_pattern], [tiny.eval_pattern], tiny.transform_output_dir,
                                    export=export, devices=devices)


@pytest.fixture(scope="module")
def exported(tiny_transform):
    """The demo model trained two epochs and exported, once: test_exports_and_result_files reads its files and
    test_warm_restart_loads_the_base_model_or_falls_back starts from it (an export is most of a training's cost)."""
    return _train(tiny_transform, "exported", export=True, training_params={"epochs": 2})


def _trace(result):
    return [e.learning_rate for e in result.metrics.epochs]


def test_learning_rate_for_epoch_cosine_and_warmup():
    cosine = [callbacks.learning_rate_for_epoch(CosineLR(), 0.1, e, 5) for e in range(5)]
    assert cosine[0] == pytest.approx(0.1) and cosine[-1] == pytest.approx(0.001)
    assert all(a > b for a, b in zip(cosine, cosine[1:]))
    warm = [callbacks.learning_rate_for_epoch(WarmupCosineLR(warmup_epochs=2), 0.1, e, 6) for e in range(6)]
    assert warm[:4] == pytest.approx([0.05, 0.1, 0.1, 0.1 * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi / 3)))])
    assert warm[-1] == pytest.approx(0.001)


@pytest.mark.parametrize("schedule,expected", [
    ({"type": "constant"}, [0.1] * 4),
    ({"type": "cosine"}, [callbacks.learning_rate_for_epoch(CosineLR(), 0.1, e, 4) for e in range(4)]),
    ({"type": "warmup_cosine", "warmup_epochs": 1},
     [callbacks.learning_rate_for_epoch(WarmupCosineLR(warmup_epochs=1), 0.1, e, 4) for e in range(4)]),
])
def test_schedule_learning_rate_trace(tiny_transform, schedule, expected):
    result = _train(tiny_transform, f"lr-{schedule['type']}",
                    training_params={"epochs": 4, "learning_rate": 0.1, "lr_schedule": schedule,
                                     "early_stopping": {"enabled": False}})
    assert _trace(result) == pytest.approx(expected, rel=1e-5)
    assert [e.epoch for e in result.metrics.epochs] == [1, 2, 3, 4]


def test_reduce_on_plateau_trace_and_early_stopping(tiny_transform):
    # A learning rate this small cannot move val_loss: a plateau from the first epoch.
    result = _train(tiny_transform, "plateau", model_config={
        "name": "sgd", "model_type": "retrieval", "query_tower": [16], "candidate_tower": [16], "optimizer": "sgd"},
        training_params={"epochs": 30, "learning_rate": 1e-9,
                         "early_stopping": {"enabled": True, "patience": 3, "monitor": "val_loss"},
                         "lr_schedule": {"type": "reduce_on_plateau", "factor": 0.5, "patience": 1, "min_lr": 2e-10}})
    trace = _trace(result)
    assert trace[0] == pytest.approx(1e-9)
    assert trace[2] == pytest.approx(5e-10)  # reduced after epoch 2 showed no improvement
    assert all(a >= b for a, b in zip(trace, trace[1:])) and min(trace) >= 2e-10 * 0.999
    assert result.metrics.stopped_early
    # val_loss is flat only to float precision (a last-digit dip can be "best"), so the check is
    # that best_epoch is the first minimum and training stopped exactly `patience` epochs after it.
    val = [e.val_loss for e in result.metrics.epochs]
    assert result.metrics.best_epoch == val.index(min(val)) + 1
    assert len(result.metrics.epochs) == result.metrics.best_epoch + 3 < 30


KILLED_TRAINER = textwrap.dedent("""
    import os, signal, sys
    import tensorflow as tf
    from pipeline_compiler.modules import trainer
    from tests.unit.pipeline_compiler.tiny_data import tiny_spec

    workdir, train, evaluation, transform, kill_after = sys.argv[1:6]

    class Kill(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == int(kill_after):
                os.kill(os.getpid(), signal.SIGKILL)  # a preempted VM: no cleanup, no exception

    spec = tiny_spec(workdir, run_id="preempted", training_params={
        "epochs": 6, "checkpoint_every_epochs": 2, "early_stopping": {"enabled": False}})
    trainer.train_and_export(spec, [train], [evaluation], transform, export=False, extra_callbacks=[Kill()])
""")


def test_killed_trainer_resumes_from_its_last_checkpoint(tiny_transform):
    t = tiny_transform
    process = subprocess.run(
        [sys.executable, "-c", KILLED_TRAINER, t.workdir, t.train_pattern, t.eval_pattern, t.transform_output_dir, "5"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True, timeout=300)
    assert process.returncode == -9, process.stderr[-2000:]
    checkpoints = os.path.join(t.workdir, "artifacts", "preempted", R.CHECKPOINTS_DIR)
    assert tf.train.latest_checkpoint(checkpoints).endswith("ckpt-4")

    result = _train(t, "preempted", training_params={"epochs": 6, "checkpoint_every_epochs": 2,
                                                     "early_stopping": {"enabled": False}})
    assert result.metrics.resumed_from_epoch == 4
    assert [e.epoch for e in result.metrics.epochs] == [1, 2, 3, 4, 5, 6]
    with open(os.path.join(t.workdir, "artifacts", "preempted", R.TRAINING_METRICS_FILE)) as handle:
        written = R.TrainingMetrics.model_validate_json(handle.read())
    assert written.resumed_from_epoch == 4 and len(written.epochs) == 6


def test_warm_restart_loads_the_base_model_or_falls_back(tiny_transform, exported):
    base_uri = os.path.join(tiny_transform.workdir, "artifacts", "exported")
    assert exported.metrics.warm_start == "none"

    def base_experiment(uri):
        return {"id": "exp-1", "name": "Exp 1", "saved_model_uri": uri}

    warm = {"epochs": 1, "warm_restart": {"enabled": True}}
    loaded = _train(tiny_transform, "warm", training_params=warm, base_experiment=base_experiment(base_uri))
    assert loaded.metrics.warm_start == "loaded" and loaded.metrics.warm_start_warning is None

    missing = _train(tiny_transform, "warm-missing", training_params=warm,
                     base_experiment=base_experiment(os.path.join(tiny_transform.workdir, "nowhere")))
    assert missing.metrics.warm_start == "fallback"
    assert "no SavedModel" in missing.metrics.warm_start_warning
    assert len(missing.metrics.epochs) == 1  # trained anyway

    other_shape = _train(tiny_transform, "warm-other", training_params=warm, base_experiment=base_experiment(base_uri),
                         model_config={"name": "wider", "model_type": "retrieval", "query_tower": [48, 32],
                                       "candidate_tower": [48, 32]})
    # Another tower width: the embedding tables still fit and are carried, the dense layers start fresh.
    assert other_shape.metrics.warm_start == "partial"
    assert "kept their fresh values" in other_shape.metrics.warm_start_warning
    record = other_shape.metrics.warm_start_record
    assert record.tables == 5 and record.rows_new == 0 and record.variables_fresh > 0  # the 5 vocabulary features
    assert loaded.metrics.warm_start_record.variables_fresh == 0 and loaded.metrics.warm_start_record.tables == 5


def test_mixed_precision_path(tiny_transform):
    result = _train(tiny_transform, "mixed", training_params={"epochs": 2, "mixed_precision": True})
    assert isinstance(result.model.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
    assert result.model.query_tower.dense_layers[0].compute_dtype == "float16"
    assert all(np.isfinite(e.loss) for e in result.metrics.epochs)
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # restored for whoever runs next


MIRRORED_TRAINER = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from pipeline_compiler.modules import trainer
    from tests.unit.pipeline_compiler.tiny_data import tiny_spec

    workdir, train, evaluation, transform = sys.argv[1:5]
    spec = tiny_spec(workdir, run_id="mirrored", training_params={"epochs": 2, "batch_size": 128})
    result = trainer.train_and_export(spec, [train], [evaluation], transform, export=False,
                                      devices=["/cpu:0", "/cpu:1"])
    print("RESULT", json.dumps({"replicas": result.replicas, "global_batch": result.global_batch_size,
                                "strategy": type(tf.distribute.get_strategy()).__name__,
                                "losses": [e.loss for e in result.metrics.epochs]}))
""")


def test_mirrored_strategy_path_on_two_cpu_replicas(tiny_transform):
    t = tiny_transform
    process = subprocess.run(
        [sys.executable, "-c", MIRRORED_TRAINER, t.workdir, t.train_pattern, t.eval_pattern, t.transform_output_dir],
        cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    line = [l for l in process.stdout.splitlines() if l.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    assert result["replicas"] == 2 and result["global_batch"] == 256
    assert len(result["losses"]) == 2 and all(np.isfinite(result["losses"]))


def test_exports_and_result_files(tiny_transform, exported):
    root = os.path.join(tiny_transform.workdir, "artifacts", "exported")
    for relative in (R.SAVED_MODEL_DIR, R.QUERY_MODEL_DIR, R.CANDIDATE_MODEL_DIR):
        assert tf.io.gfile.exists(os.path.join(root, relative, "saved_model.pb")), relative
    assert tf.io.gfile.exists(os.path.join(root, R.VOCABULARIES_DIR, "product_id"))
    with open(os.path.join(root, R.ARTIFACTS_FILE)) as handle:
        artifacts = R.ArtifactLocations.model_validate_json(handle.read())
    assert artifacts.saved_model == os.path.join(root, R.SAVED_MODEL_DIR) == exported.artifacts.saved_model

    raw = tiny_transform.raw
    serving = tf.saved_model.load(artifacts.saved_model).signatures["serving_default"]
    out = serving(customer_id=tf.constant(raw["customer_id"][:3]), segment=tf.constant(raw["segment"][:3]),
                  city=tf.constant(raw["city"][:3]), timestamp=tf.constant(raw["timestamp"][:3]))
    assert out["ids"].shape == (3, 100) and out["scores"].shape == (3, 100)
    assert set(v.decode() for v in out["ids"].numpy().ravel()) <= set(raw["product_id"])
    query = tf.saved_model.load(artifacts.query_model).signatures["serving_default"]
    embedding = query(customer_id=tf.constant(raw["customer_id"][:3]), segment=tf.constant(raw["segment"][:3]),
                      city=tf.constant(raw["city"][:3]), timestamp=tf.constant(raw["timestamp"][:3]))["embedding"]
    assert embedding.shape == (3, 32)


def test_scann_parameters_auto_scale_with_the_candidate_count():
    auto = RetrievalIndex()
    # Chosen with bench/ml.py: recall@100 >= 0.99 vs exact search on 1M x 32 clustered vectors.
    assert export.scann_parameters(1_000_000, 100, auto) == {
        "num_leaves": 1000, "num_leaves_to_search": 100, "dimensions_per_block": 1,
        "num_reordering_candidates": 1000}
    # Smaller indexes search enough leaves to cover ~100k candidates (all of them below that).
    assert export.scann_parameters(200_000, 100, auto)["num_leaves_to_search"] == 224
    small = export.scann_parameters(10_000, 100, auto)
    assert small["num_leaves"] == 100 and small["num_leaves_to_search"] == 100
    assert export.scann_parameters(10_000_000, 100, auto)["num_leaves_to_search"] == 317  # 10% of 3162
    assert export.scann_parameters(100, 100, auto)["num_reordering_candidates"] == 100
    fixed = export.scann_parameters(10_000, 10, RetrievalIndex(num_leaves=50, num_leaves_to_search=5))
    assert fixed["num_leaves"] == 50 and fixed["num_leaves_to_search"] == 5
    assert fixed["num_reordering_candidates"] == 250


def test_progress_publishing_is_best_effort(monkeypatch):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")  # nothing listens there
    publisher = callbacks.ProgressPublisher("projects/p/topics/training-progress", timeout_seconds=0.5)
    metrics = R.EpochMetrics(run_id="r", epoch=1, total_epochs=2, loss=1.0)
    for _ in range(5):
        assert publisher.publish(metrics) is False  # never raises
    assert publisher.failures == 3  # and gives up after three failures in a row
    assert callbacks.ProgressPublisher(None).publish(metrics) is False
