"""The Trainer's Keras callbacks: the per-epoch record published to the training-progress topic,
periodic checkpoints for resume, and the learning-rate schedules and early stopping a run configures.
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any, Optional

import tensorflow as tf

from pipeline_compiler.modules.data import write_text
from shared import log
from shared.contract import results
from shared.domain import model_kinds
from shared.domain.run_config import CosineLR, ReduceOnPlateauLR, RunSpec, TrainingParams, WarmupCosineLR

COSINE_FLOOR = 0.01  # cosine schedules decay to 1% of the initial learning rate
HISTORY_FILE = "history.json"  # next to the checkpoints: epochs done before a restart


def learning_rate_for_epoch(schedule: Any, initial_lr: float, epoch: int, total_epochs: int) -> float:
    """Learning rate of a 0-based epoch for the per-epoch schedules (cosine, warmup_cosine, constant)."""
    if isinstance(schedule, WarmupCosineLR):
        warmup = schedule.warmup_epochs
        if epoch < warmup:
            return initial_lr * (epoch + 1) / warmup
        span = max(1, total_epochs - 1 - warmup)
        progress = min(1.0, (epoch - warmup) / span)
    elif isinstance(schedule, CosineLR):
        progress = min(1.0, epoch / max(1, total_epochs - 1))
    else:
        return initial_lr
    return initial_lr * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress)))


def current_learning_rate(optimizer: tf.keras.optimizers.Optimizer) -> float:
    return float(tf.keras.backend.get_value(optimizer.learning_rate))


class ProgressPublisher:
    """Best-effort publishing of EpochMetrics to the training-progress topic (honours PUBSUB_EMULATOR_HOST).

    A failed publish is logged, never raised; after three failures in a row it stops trying so an
    unreachable Pub/Sub does not slow every epoch down.
    """

    def __init__(self, topic: Optional[str], timeout_seconds: float = 5.0) -> None:
        self.topic = topic
        self.timeout_seconds = timeout_seconds
        self.failures = 0
        self.published = 0
        self._client = None

    def publish(self, metrics: results.EpochMetrics) -> bool:
        if not self.topic or self.failures >= 3:
            return False
        try:
            if self._client is None:
                from google.cloud import pubsub_v1

                self._client = pubsub_v1.PublisherClient()
            future = self._client.publish(self.topic, metrics.model_dump_json().encode("utf-8"),
                                          run_id=metrics.run_id, attempt=str(metrics.attempt))
            future.result(timeout=self.timeout_seconds)
            self.failures = 0
            self.published += 1
            return True
        except Exception as error:  # noqa: BLE001 - progress is best effort by contract
            self.failures += 1
            log.warning("epoch progress not published", epoch=metrics.epoch, topic=self.topic, error=str(error),
                        failures=self.failures)
            return False


class EpochRecorder(tf.keras.callbacks.Callback):
    """Keeps the per-epoch history (with the LR each epoch used) and publishes it as it goes."""

    def __init__(self, spec: RunSpec, total_epochs: int, history: list[results.EpochMetrics],
                 publisher: ProgressPublisher, tensorboard_experiment: Optional[str] = None) -> None:
        super().__init__()
        self.spec = spec
        self.tensorboard_experiment = tensorboard_experiment
        self.total_epochs = total_epochs
        self.history = history
        self.publisher = publisher
        self._epoch_lr = None

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        self._epoch_lr = current_learning_rate(self.model.optimizer)

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        logs = dict(logs or {})
        loss = logs.pop("loss", None)
        val_loss = logs.pop("val_loss", None)
        grad_norm = logs.pop("grad_norm", None)
        for redundant in ("lr", "learning_rate", "regularization_loss", "total_loss",
                          "val_regularization_loss", "val_total_loss"):
            logs.pop(redundant, None)
        record = results.EpochMetrics(
            run_id=self.spec.run_id, attempt=self.spec.attempt, epoch=epoch + 1, total_epochs=self.total_epochs,
            loss=_finite(loss), val_loss=_finite(val_loss), learning_rate=self._epoch_lr, grad_norm=_finite(grad_norm),
            metrics={k: float(v) for k, v in logs.items() if _finite(v) is not None},
            tensorboard_experiment=self.tensorboard_experiment,
            timestamp=datetime.now(timezone.utc),
        )
        self.history.append(record)
        self.publisher.publish(record)


def _finite(value: Any) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class PeriodicCheckpoint(tf.keras.callbacks.Callback):
    """Saves model + optimizer + epoch every `every` epochs (and the history so far) for resume."""

    def __init__(self, manager: tf.train.CheckpointManager, epoch_variable: tf.Variable, every: int,
                 history: list[results.EpochMetrics], directory: str) -> None:
        super().__init__()
        self.manager, self.epoch_variable, self.every = manager, epoch_variable, every
        self.history, self.directory = history, directory

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if (epoch + 1) % self.every:
            return
        self.epoch_variable.assign(epoch + 1)
        # The history first: a checkpoint is only used when its history is there too.
        write_text(results.join(self.directory, HISTORY_FILE),
                    json.dumps([h.model_dump(mode="json") for h in self.history]))
        self.manager.save(checkpoint_number=epoch + 1)


def schedule_callbacks(params: TrainingParams, gate: str) -> tuple[list[tf.keras.callbacks.Callback],
                                                                   Optional[tf.keras.callbacks.EarlyStopping]]:
    """The run's learning-rate schedulers and its early stopping (None when disabled), each watching
    val_loss or the gate metric (live_metrics.py) in its direction."""

    def monitored(choice: str) -> dict[str, str]:
        if choice == "gate_metric":
            return {"monitor": gate, "mode": "min" if model_kinds.lower_is_better(gate) else "max"}
        return {"monitor": "val_loss", "mode": "min"}

    schedulers: list[tf.keras.callbacks.Callback] = []
    schedule = params.lr_schedule
    if isinstance(schedule, ReduceOnPlateauLR):
        schedulers.append(tf.keras.callbacks.ReduceLROnPlateau(
            **monitored(schedule.monitor), factor=schedule.factor, patience=schedule.patience,
            min_lr=schedule.floor(params.learning_rate)))
    elif isinstance(schedule, (CosineLR, WarmupCosineLR)):
        schedulers.append(tf.keras.callbacks.LearningRateScheduler(
            lambda epoch, lr: learning_rate_for_epoch(schedule, params.learning_rate, epoch, params.epochs)))
    early_stopping = None
    if params.early_stopping.enabled:
        early_stopping = tf.keras.callbacks.EarlyStopping(
            **monitored(params.early_stopping.monitor), patience=params.early_stopping.patience,
            restore_best_weights=True)
    return schedulers, early_stopping


class RestoreBestEpoch(tf.keras.callbacks.Callback):
    """Ends training on the early stopping's best epoch even when patience never ran out.

    Keras 2's EarlyStopping restores its best weights only when it stops the run
    (EarlyStopping.on_epoch_end): a run that reached its last epoch kept that epoch's weights, however
    much worse than the best. Placed after the EarlyStopping; restored_epoch is the 1-based epoch
    whose weights the model ends with (None when no epoch was monitored)."""

    def __init__(self, early_stopping: tf.keras.callbacks.EarlyStopping) -> None:
        super().__init__()
        self.early_stopping = early_stopping
        self.restored_epoch: Optional[int] = None

    def on_train_end(self, logs: Optional[dict] = None) -> None:
        stopping = self.early_stopping
        if stopping.best_weights is None:
            return
        self.restored_epoch = stopping.best_epoch + 1
        if stopping.stopped_epoch == 0:  # when it stopped the run, Keras has restored them already
            self.model.set_weights(stopping.best_weights)
