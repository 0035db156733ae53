"""The Trainer's TensorBoard event files, read back with TensorFlow's summary_iterator: scalars every
epoch (train and validation runs), weight and gradient histograms every N epochs, Vertex's log dir."""
import glob
import math
import os
from collections import defaultdict

import pytest

tf = pytest.importorskip("tensorflow")

from pipeline_compiler.modules import tensorboard_logs, trainer  # noqa: E402
from shared.contract import results as R  # noqa: E402
from tests.unit.pipeline_compiler.tiny_data import tiny_spec  # noqa: E402


def read_events(directory):
    """{run: {(plugin, tag): {step: value}}} of every event file under directory/run/."""
    found = defaultdict(lambda: defaultdict(dict))
    for path in glob.glob(os.path.join(directory, "*", "events.out.tfevents.*")):
        run = os.path.basename(os.path.dirname(path))
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found[run][(value.metadata.plugin_data.plugin_name, value.tag)][event.step] = tf.make_ndarray(value.tensor)
    return found


def _train(tiny, run_id, **params):
    spec = tiny_spec(tiny.workdir, run_id=run_id, training_params={
        "epochs": 5, "early_stopping": {"enabled": False}, **params})
    result = trainer.train_and_export(spec, [tiny.train_pattern], [tiny.eval_pattern], tiny.transform_output_dir,
                                      export=False)
    return spec, result


def test_scalars_every_epoch_and_histograms_every_n_epochs(tiny_transform):
    spec, result = _train(tiny_transform, "tb-histograms", tensorboard={"histogram_every_epochs": 2})
    events = read_events(os.path.join(spec.artifacts_uri, R.TENSORBOARD_DIR))
    epochs = result.metrics.epochs
    train, validation = events["train"], events["validation"]
    for tag, values in (("loss", [e.loss for e in epochs]), ("learning_rate", [e.learning_rate for e in epochs]),
                        ("grad_norm", [e.grad_norm for e in epochs]),
                        ("recall_at_100", [e.metrics["recall_at_100"] for e in epochs])):
        written = train[("scalars", tag)]
        assert sorted(written) == [1, 2, 3, 4, 5], tag
        assert [float(written[s]) for s in range(1, 6)] == pytest.approx(values, rel=1e-5), tag
    assert [float(validation[("scalars", "loss")][s]) for s in range(1, 6)] == pytest.approx(
        [e.val_loss for e in epochs], rel=1e-5)
    # The gradient norm is measured in the train step: finite, positive, and what the run's history says.
    assert all(e.grad_norm is not None and math.isfinite(e.grad_norm) and e.grad_norm > 0 for e in epochs)

    histograms = {tag: sorted(steps) for (plugin, tag), steps in train.items() if plugin == "histograms"}
    trainable = {v.name.split(":")[0] for v in result.model.trainable_variables}
    assert {t.removeprefix("weights/") for t in histograms if t.startswith("weights/")} == trainable
    gradients = {t.removeprefix("gradients/") for t in histograms if t.startswith("gradients/")}
    assert any("embedding" in name for name in gradients) and any("dense" in name or "output" in name for name in gradients)
    assert set(map(tuple, histograms.values())) == {(2, 4, 5)}  # every 2nd epoch and the last
    bins = train[("histograms", "weights/" + next(iter(sorted(trainable))))][2]
    assert bins.shape[1] == 3 and bins[:, 2].sum() > 0  # TensorBoard's [left, right, count] buckets


def test_histograms_off_keeps_the_scalars(tiny_transform):
    spec, result = _train(tiny_transform, "tb-off", epochs=2, tensorboard={"histogram_every_epochs": 0})
    train = read_events(os.path.join(spec.artifacts_uri, R.TENSORBOARD_DIR))["train"]
    assert not [tag for plugin, tag in train if plugin == "histograms"]
    assert sorted(train[("scalars", "grad_norm")]) == [1, 2]


def test_on_vertex_the_files_go_where_vertex_uploads_from_and_the_epochs_name_the_experiment(tiny_transform, tmp_path,
                                                                                               monkeypatch):
    instance = "projects/123/locations/europe-west4/tensorboards/456"
    monkeypatch.setenv("AIP_TENSORBOARD_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("AIP_TENSORBOARD_RESOURCE_NAME", instance)
    monkeypatch.setenv("CLOUD_ML_JOB_ID", "789")
    spec, result = _train(tiny_transform, "tb-vertex", epochs=1, tensorboard={"histogram_every_epochs": 0})
    assert read_events(str(tmp_path / "logs"))["train"][("scalars", "loss")].keys() == {1}
    assert not os.path.exists(os.path.join(spec.artifacts_uri, R.TENSORBOARD_DIR))
    assert result.metrics.epochs[0].tensorboard_experiment == f"{instance}/experiments/789"


def test_outside_a_tensorboard_job_there_is_no_experiment(monkeypatch):
    monkeypatch.delenv("AIP_TENSORBOARD_RESOURCE_NAME", raising=False)
    monkeypatch.setenv("CLOUD_ML_JOB_ID", "789")
    assert tensorboard_logs.experiment_name() is None
