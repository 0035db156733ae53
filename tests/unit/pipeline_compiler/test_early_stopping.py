"""Early stopping ends a run on its best epoch (callbacks.RestoreBestEpoch), on a tiny Keras model."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from pipeline_compiler.modules import callbacks as K  # noqa: E402
from shared.domain.run_config import TrainingParams  # noqa: E402


class _Score(tf.keras.callbacks.Callback):
    """Writes a scripted gate metric into the epoch's logs (as the live metric does) and keeps each epoch's weights."""

    def __init__(self, scores):
        super().__init__()
        self.scores, self.weights = scores, []

    def on_epoch_end(self, epoch, logs=None):
        logs["recall_at_100"] = self.scores[epoch]
        self.weights.append([w.copy() for w in self.model.get_weights()])


def _fit(scores, patience):
    tf.random.set_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse")
    params = TrainingParams.model_validate({"epochs": len(scores), "lr_schedule": {"type": "constant"},
                                            "early_stopping": {"patience": patience, "monitor": "gate_metric"}})
    _, early_stopping = K.schedule_callbacks(params, "recall_at_100")
    score = _Score(scores)
    restore = K.RestoreBestEpoch(early_stopping)
    features = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    model.fit(features, features.sum(axis=1), epochs=len(scores), batch_size=16, verbose=0,
              callbacks=[score, early_stopping, restore])
    return model, score, early_stopping, restore


def test_a_run_that_reaches_its_last_epoch_ends_on_the_best_one():
    # Epoch 2 is best; 3 and 4 are worse but within the patience, so Keras alone would keep epoch 4.
    model, score, early_stopping, restore = _fit([0.1, 0.5, 0.3, 0.2], patience=10)
    assert early_stopping.stopped_epoch == 0
    assert restore.restored_epoch == 2
    for restored, best, last in zip(model.get_weights(), score.weights[1], score.weights[3]):
        np.testing.assert_array_equal(restored, best)
        assert not np.array_equal(restored, last)


def test_a_run_stopped_by_its_patience_ends_on_the_best_epoch_too():
    model, score, early_stopping, restore = _fit([0.1, 0.5, 0.3, 0.2, 0.2, 0.9], patience=2)
    assert early_stopping.stopped_epoch == 3  # 0-based: stopped after the fourth epoch
    assert restore.restored_epoch == 2
    for restored, best in zip(model.get_weights(), score.weights[1]):
        np.testing.assert_array_equal(restored, best)


def test_the_last_epoch_stays_when_it_is_the_best():
    model, score, _, restore = _fit([0.1, 0.2, 0.3], patience=10)
    assert restore.restored_epoch == 3
    for restored, last in zip(model.get_weights(), score.weights[2]):
        np.testing.assert_array_equal(restored, last)
