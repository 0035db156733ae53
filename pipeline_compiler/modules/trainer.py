"""TFX Trainer module: one `run_fn` driven by the RunSpec (in `custom_config["run_spec"]`).

Trains the run's model kind (shared/domain/model_kinds.py) from its FeatureConfig and ModelConfig on the
full-training features — MirroredStrategy over a machine's GPUs, MultiWorkerMirroredStrategy over several
machines (cluster.py), mixed precision, early stopping, LR schedules, gradient clipping, checkpoint and
resume, warm restart, per-epoch progress to Pub/Sub — and exports the spec §2.2 artifacts under
RunSpec.artifacts_uri:

    model/saved_model      serving (export.py);  model/query_model, model/candidate_model  the towers
    transform/             the Transform graph;  vocabularies/  its vocabulary files
    checkpoints/           every N epochs; a restarted trainer resumes from the newest
    tensorboard/           TensorBoard event files (tensorboard_logs.py; on Vertex, AIP_TENSORBOARD_LOG_DIR)
    training_metrics.json  shared.contract.results.TrainingMetrics;  artifacts.json  ArtifactLocations

The parts, as TFX's penguin example and TFRS split them: model.py (towers and the kind's tasks),
data.py (tf.data), callbacks.py (progress, checkpoints, schedules), export.py (index and SavedModels).
"""
from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import tensorflow as tf
import tensorflow_transform as tft

from pipeline_compiler.modules import callbacks as K
from pipeline_compiler.modules import cluster as C
from pipeline_compiler.modules import data as D
from pipeline_compiler.modules import export as E
from pipeline_compiler.modules import features as F
from pipeline_compiler.modules import live_metrics as L
from pipeline_compiler.modules import model as M
from pipeline_compiler.modules import tensorboard_logs as T
from pipeline_compiler.modules import warm_weights
from shared import log
from shared.contract import results
from shared.domain import model_kinds
from shared.domain.run_config import RunSpec, gate_metric
from shared.domain.warm_start import WarmStartRecord


def select_strategy(devices: Optional[Sequence[str]] = None,
                    cluster: Optional[C.Cluster] = None) -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy when TF_CONFIG names several machines (each one's GPUs take part);
    else MirroredStrategy over the GPUs when there are several (or over `devices`, which tests pass)."""
    if cluster is not None and cluster.multi_worker:
        # Reads TF_CONFIG itself (TFConfigClusterResolver); synchronous all-reduce across the machines.
        return tf.distribute.MultiWorkerMirroredStrategy()
    if devices is None:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    if len(devices) > 1:
        return tf.distribute.MirroredStrategy(devices=list(devices))
    return tf.distribute.get_strategy()


@dataclass
class TrainingResult:
    metrics: results.TrainingMetrics
    artifacts: results.ArtifactLocations
    model: M.RecommenderModel
    replicas: int
    global_batch_size: int


def train_and_export(
    spec: RunSpec,
    train_patterns: Sequence[str],
    eval_patterns: Sequence[str],
    transform_output_dir: str,
    serving_model_dir: Optional[str] = None,
    devices: Optional[Sequence[str]] = None,
    extra_callbacks: Sequence[tf.keras.callbacks.Callback] = (),
    export: bool = True,
    find_champion: Optional[Callable[[], Any]] = None,
) -> TrainingResult:
    """Train on transformed examples and write every result file of the Trainer under artifacts_uri.

    On several machines (TF_CONFIG) every worker runs this; only the chief writes under
    artifacts_uri, serving_model_dir and the progress topic (cluster.py), and every worker returns
    only once the chief's files are written (TFX's executor checks serving_model_dir on each).
    `find_champion`: the champion lookup a warm start from the champion calls (run_fn builds it)."""
    params = spec.training_params
    kind = model_kinds.kind(spec.model_type)
    artifacts_uri = spec.artifacts_uri
    checkpoint_dir = results.join(artifacts_uri, results.CHECKPOINTS_DIR)
    cluster = C.from_tf_config()
    # The strategy first: a multi-worker one starts this worker's server and joins the others.
    strategy = select_strategy(devices, cluster)
    output_dir = cluster.write_dir(artifacts_uri, "artifacts")
    checkpoint_write_dir = results.join(output_dir, results.CHECKPOINTS_DIR)
    tf_transform_output = tft.TFTransformOutput(transform_output_dir)
    feature_spec = tf_transform_output.transformed_feature_spec()
    vocabulary_sizes = {
        f.name: tf_transform_output.vocabulary_size_by_name(f.name)
        for f in spec.feature_config.features if f.transform.type == "vocabulary"
    }

    previous_policy = tf.keras.mixed_precision.global_policy()
    if params.mixed_precision:
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        replicas = strategy.num_replicas_in_sync
        global_batch = params.batch_size * replicas  # batch_size is per replica
        log.info("training", replicas=replicas, machines=cluster.machines, task_type=cluster.task_type,
                 task_index=cluster.task_index, global_batch=global_batch)
        if cluster.machines != spec.gpu_config.machine_count:  # e.g. the local runner: one process, no TF_CONFIG
            log.warning("the run asks for more machines than this Trainer runs on",
                        machines_asked=spec.gpu_config.machine_count, machines=cluster.machines)
        probabilities = None
        if kind.retrieves and spec.model_config_.sampling_bias_correction:
            probabilities = D.item_probability_table(train_patterns)
        train_examples = D.count_examples(train_patterns)
        keep = D.model_inputs(spec, probabilities is not None)
        cache = D.cache_fits(train_examples, D.parsed_bytes_per_example(next(iter(D.make_dataset(
            train_patterns, feature_spec, 1024, item_probabilities=probabilities, keep=keep)))), D.available_memory_bytes())
        log.info("train split cached in memory" if cache else "train split streamed every epoch", examples=train_examples)
        train_data = D.make_dataset(train_patterns, feature_spec, global_batch, shuffle=True,
                                    item_probabilities=probabilities, cache=cache, keep=keep)
        eval_data = D.make_dataset(eval_patterns, feature_spec, global_batch, item_probabilities=probabilities,
                                   keep=keep)
        if cluster.multi_worker:
            train_data, eval_data = D.shard_by_data(train_data), D.shard_by_data(eval_data)

        build = functools.partial(M.build, spec, vocabulary_sizes, strategy,
                                  lambda: next(iter(D.make_dataset(eval_patterns, feature_spec, 2))))
        model, optimizer = build()
        history: list[results.EpochMetrics] = []
        epoch_variable = tf.Variable(0, dtype=tf.int64, trainable=False)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_variable)
        manager = tf.train.CheckpointManager(checkpoint, checkpoint_write_dir, max_to_keep=2)

        resumed_from: Optional[int] = None
        warm = WarmStartRecord()
        # Every worker resumes from the chief's checkpoints (the others' are scratch).
        history_path = results.join(checkpoint_dir, K.HISTORY_FILE)
        latest = tf.train.latest_checkpoint(checkpoint_dir)
        if latest and tf.io.gfile.exists(history_path):
            with strategy.scope():
                checkpoint.restore(latest).expect_partial()
            resumed_from = int(epoch_variable.numpy())
            with tf.io.gfile.GFile(history_path) as handle:
                history = [results.EpochMetrics.model_validate(h) for h in json.load(handle)][:resumed_from]
            log.info("resuming from a checkpoint", epoch=resumed_from)
        elif params.warm_restart.enabled:
            with strategy.scope():
                warm = warm_weights.apply(model, spec, {name: tf_transform_output.vocabulary_by_name(name)
                                            for name in vocabulary_sizes}, find_champion)
            log.info("warm start", **warm.model_dump(exclude_none=True))
            if warm.status == "fallback":
                log.warning("warm restart found nothing to load, starting fresh", error=warm.reason)
                model, optimizer = build()  # nothing half-loaded survives
                checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_variable)
                manager = tf.train.CheckpointManager(checkpoint, checkpoint_write_dir, max_to_keep=2)

        publisher = K.ProgressPublisher(spec.progress_topic if cluster.is_chief else None)
        retrieval = kind.retrieves
        query_keys = [k for f in spec.feature_config.features if f.side == "query" for k in F.output_keys(f)]
        candidate_keys = [k for f in spec.feature_config.features if f.side == "candidate" for k in F.output_keys(f)]
        candidates = None
        if retrieval:  # the full candidate set: the live metric scores against it, the export indexes it
            candidates = D.unique_candidates(list(train_patterns) + list(eval_patterns), feature_spec, candidate_keys)
        live = L.LiveGateMetrics(
            spec.model_type, params.live_metrics_every_epochs, params.epochs,
            sample=L.eval_sample(D.make_dataset(eval_patterns, feature_spec, L.LIVE_SAMPLE_ROWS),
                                 [F.ITEM_ID_KEY, *query_keys]) if retrieval else None,
            candidates=candidates, query_keys=query_keys, candidate_keys=candidate_keys)
        gate = gate_metric(spec.model_type, spec.evaluator_config.blessing_threshold)
        schedulers, early_stopping = K.schedule_callbacks(params, gate)
        recorder = K.EpochRecorder(spec, params.epochs, history, publisher, T.experiment_name())
        # The live metric first (the others see its values in the logs), then the LR schedulers so the
        # recorder sees the rate each epoch actually used; TensorBoard writes the recorder's record.
        callbacks: list[tf.keras.callbacks.Callback] = [live, *schedulers, recorder]
        if early_stopping is not None:
            callbacks += [early_stopping, K.RestoreBestEpoch(early_stopping)]
        callbacks.append(K.PeriodicCheckpoint(manager, epoch_variable, params.checkpoint_every_epochs, history,
                                              checkpoint_write_dir))
        if cluster.is_chief:  # after RestoreBestEpoch: the last histograms show the weights the run ends with
            callbacks.append(T.TensorBoardLogs(
                T.log_dir(artifacts_uri), history, params.tensorboard.histogram_every_epochs, params.epochs,
                probe=lambda: next(iter(D.make_dataset(train_patterns, feature_spec, params.batch_size,
                                                       item_probabilities=probabilities, keep=keep)))))
        callbacks += list(extra_callbacks)

        initial_epoch = resumed_from or 0
        started = time.monotonic()
        if initial_epoch < params.epochs:
            model.fit(train_data, validation_data=eval_data, epochs=params.epochs,
                      initial_epoch=initial_epoch, callbacks=callbacks, verbose=2)
        elapsed = time.monotonic() - started
        epochs_run = len(history) - initial_epoch

        metrics = _training_metrics(history, early_stopping, resumed_from, warm, epochs_run * train_examples / elapsed if elapsed > 0 and epochs_run else None)
        artifacts = results.ArtifactLocations(checkpoints=checkpoint_dir,
                                        training_metrics=results.join(output_dir, results.TRAINING_METRICS_FILE))
        if export:
            # Every worker exports (saving may all-reduce variables); only the chief's copy is kept.
            artifacts = artifacts.model_copy(update=E.export_run(
                model, spec, tf_transform_output, candidates, output_dir, transform_output_dir, serving_model_dir,
                cluster.is_chief))
        D.write_text(results.join(output_dir, results.TRAINING_METRICS_FILE), metrics.model_dump_json(indent=2))
        D.write_text(results.join(output_dir, results.ARTIFACTS_FILE), artifacts.model_dump_json(indent=2))
        if cluster.multi_worker:
            all_workers_reach(strategy)  # the chief's files are written before any worker returns
            cluster.discard_scratch()
        return TrainingResult(metrics=metrics, artifacts=artifacts, model=model, replicas=replicas,
                              global_batch_size=global_batch)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous_policy)


def all_workers_reach(strategy: tf.distribute.Strategy) -> None:
    """A barrier: one all-reduce every worker must join before any of them goes on."""
    @tf.function
    def count() -> tf.Tensor:
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)

    joined = int(count().numpy())
    log.info("all replicas finished", replicas=joined)


def _training_metrics(history: list[results.EpochMetrics], early_stopping: Any, resumed_from: Optional[int],
                      warm: WarmStartRecord, examples_per_second: Optional[float]) -> results.TrainingMetrics:
    best = None
    scored = [h for h in history if h.val_loss is not None]
    if scored:
        best = min(scored, key=lambda h: h.val_loss)
    final_epoch = best or (history[-1] if history else None)
    final: dict[str, float] = {}
    if final_epoch:
        for key, value in (("loss", final_epoch.loss), ("val_loss", final_epoch.val_loss)):
            if value is not None:
                final[key] = value
        final.update(final_epoch.metrics)
    return results.TrainingMetrics(
        epochs=history,
        final=final,
        best_epoch=best.epoch if best else None,
        stopped_early=bool(early_stopping is not None and early_stopping.stopped_epoch > 0),
        resumed_from_epoch=resumed_from,
        warm_start=warm.status,
        warm_start_warning=warm.reason if warm.status in ("partial", "fallback") else None,
        warm_start_record=warm if warm.status != "none" else None,
        examples_per_second=examples_per_second,
    )


def run_fn(fn_args: Any) -> None:
    """TFX Trainer entry point (GenericExecutor): fn_args.custom_config["run_spec"] holds the RunSpec."""
    spec = F.run_spec_from_custom_config(fn_args.custom_config)
    with log.bound(run_id=spec.run_id, attempt=spec.attempt, stage="Train"):  # the Trainer's lines name the run
        train_and_export(
            spec,
            train_patterns=fn_args.train_files,
            eval_patterns=fn_args.eval_files,
            transform_output_dir=fn_args.transform_output,
            serving_model_dir=fn_args.serving_model_dir,
            find_champion=warm_weights.champion_finder(spec, fn_args.custom_config),
        )
