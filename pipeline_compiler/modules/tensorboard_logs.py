"""The Trainer's TensorBoard event files (docs/pipeline.md, "TensorBoard").

Two runs under the log directory, as Keras' own TensorBoard callback lays them out, so TensorBoard overlays
training and validation curves: `train/` (loss, learning_rate, grad_norm, the live metrics, and every
training_params.tensorboard.histogram_every_epochs epochs — and the last — a histogram of each trainable
variable under `weights/` and of its gradient under `gradients/`) and `validation/` (val_loss as `loss`
and each val_ metric without the prefix). Steps are 1-based epochs, as the run's training history.

Where: on Vertex, AIP_TENSORBOARD_LOG_DIR, which Vertex sets when the CustomJob names a TensorBoard
instance and a base_output_directory (pipeline.trainer_job_spec) and uploads from as it is written;
else the run's artifacts under tensorboard/ (`trainyard runs tensorboard <id>` serves it).
"""
from __future__ import annotations

from typing import Callable, Optional

import tensorflow as tf

from shared.contract import results
from shared.settings import read

LOG_DIR_VARIABLE = "AIP_TENSORBOARD_LOG_DIR"


def log_dir(artifacts_uri: str) -> str:
    return read(LOG_DIR_VARIABLE) or results.join(artifacts_uri, results.TENSORBOARD_DIR)


def experiment_name() -> Optional[str]:
    """The Vertex TensorBoard experiment this CustomJob's logs upload to: Vertex names it after the job
    (`{tensorboard}/experiments/{job id}`, google.cloud.aiplatform.utils.console_utils.
    custom_job_tensorboard_console_uri) and gives the job both parts as AIP_TENSORBOARD_RESOURCE_NAME
    and CLOUD_ML_JOB_ID. None outside such a job."""
    tensorboard, job = read("AIP_TENSORBOARD_RESOURCE_NAME"), read("CLOUD_ML_JOB_ID")
    return f"{tensorboard}/experiments/{job}" if tensorboard and job else None


def _tag(variable: tf.Variable) -> str:
    return variable.name.split(":")[0]


class TensorBoardLogs(tf.keras.callbacks.Callback):
    """Writes each epoch's record (the EpochRecorder's, placed before this one) and the periodic histograms.

    `probe()` gives one training batch; the gradient histograms are that batch's gradients, taken at the
    end of the epoch (the training step itself stays as it is: only its mean gradient norm is recorded)."""

    def __init__(self, directory: str, history: list[results.EpochMetrics], histogram_every: int,
                 total_epochs: int, probe: Callable[[], dict[str, tf.Tensor]]) -> None:
        super().__init__()
        self.directory, self.history = directory, history
        self.histogram_every, self.total_epochs = histogram_every, total_epochs
        self.probe = probe
        self._batch: Optional[dict[str, tf.Tensor]] = None
        self._writers: dict[str, tf.summary.SummaryWriter] = {}
        self._last_histogram_epoch: Optional[int] = None
        self._last_epoch: Optional[int] = None

    def _writer(self, run: str) -> tf.summary.SummaryWriter:
        if run not in self._writers:
            self._writers[run] = tf.summary.create_file_writer(results.join(self.directory, run))
        return self._writers[run]

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if not self.history or self.history[-1].epoch != epoch + 1:
            return  # the recorder kept no record of this epoch
        record = self.history[-1]
        step = record.epoch
        train = {"loss": record.loss, "learning_rate": record.learning_rate, "grad_norm": record.grad_norm}
        validation = {"loss": record.val_loss}
        for name, value in record.metrics.items():
            if name.startswith("val_"):
                validation[name.removeprefix("val_")] = value
            else:
                train[name] = value
        for run, values in (("train", train), ("validation", validation)):
            with self._writer(run).as_default(step=step):
                for name, value in values.items():
                    if value is not None:
                        tf.summary.scalar(name, value)
        if self.histogram_every and (step % self.histogram_every == 0 or step == self.total_epochs):
            self._histograms(step)
        self._last_epoch = step
        for writer in self._writers.values():
            writer.flush()  # Vertex uploads what is written; a preempted job keeps what it flushed

    def on_train_end(self, logs: Optional[dict] = None) -> None:
        # A run stopped early ends before its last epoch: its final weights get their histograms too.
        if self.histogram_every and self._last_epoch and self._last_histogram_epoch != self._last_epoch:
            self._histograms(self._last_epoch)
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def _histograms(self, step: int) -> None:
        if self._batch is None:
            self._batch = self.probe()
        variables = self.model.trainable_variables

        def probe_gradients(batch: dict[str, tf.Tensor]) -> list:
            with tf.GradientTape() as tape:
                loss = self.model.compute_loss(batch, training=True)
            return tape.gradient(loss, variables)

        # A distributed model's variables take gradients only in a replica context: each replica gets the
        # probe batch, and the first replica's gradients are the ones drawn.
        strategy = self.model.distribute_strategy
        per_replica = strategy.run(probe_gradients, args=(self._batch,))
        gradients = [strategy.experimental_local_results(g)[0] if g is not None else None for g in per_replica]
        with self._writer("train").as_default(step=step):
            for variable, gradient in zip(variables, gradients):
                tf.summary.histogram(f"weights/{_tag(variable)}", variable)
                if gradient is not None:
                    # An embedding's gradient is the rows the batch touched (IndexedSlices): those rows.
                    values = gradient.values if isinstance(gradient, tf.IndexedSlices) else gradient
                    tf.summary.histogram(f"gradients/{_tag(variable)}", values)
        self._last_histogram_epoch = step
