"""TFX Trainer module: one `run_fn` driven by the RunSpec (in `custom_config["run_spec"]`).

Builds a TFRS two-tower model (retrieval, ranking or multitask) from the FeatureConfig and
ModelConfig, trains it with the run's full-training features (MirroredStrategy over a machine's GPUs,
MultiWorkerMirroredStrategy over several machines (cluster.py), mixed precision,
early stopping, LR schedules with clipnorm 1.0, checkpoint/resume, warm restart, per-epoch progress
to Pub/Sub), and exports the spec §2.2 artifacts under RunSpec.artifacts_uri:

    model/saved_model      serving: raw query features -> top-K candidate ids + scores (ScaNN or brute force)
                           (ranking: raw query + candidate features -> score; multitask has both)
    model/query_model      raw query features -> embedding
    model/candidate_model  raw candidate features -> embedding
    transform/             the Transform graph;  vocabularies/  its vocabulary files
    checkpoints/           every N epochs; a restarted trainer resumes from the newest
    training_metrics.json  shared.contract.results.TrainingMetrics;  artifacts.json  ArtifactLocations
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
import tensorflow_transform as tft

from pipeline_compiler.modules import cluster as C
from pipeline_compiler.modules import features as F
from pipeline_compiler.modules import live_metrics as L
from shared.contract import results
from shared import log
from shared.domain.catalog import FeatureSpec
from shared.domain.run_config import CosineLR, ReduceOnPlateauLR, RunSpec, WarmupCosineLR, gate_metric

ID_HASH_BUCKETS = 2**62  # item ids -> int64 for in-batch comparisons (collisions: ~n²/2^63)
CACHE_MAX_EXAMPLES = 5_000_000  # a train split up to this size is parsed once and kept in memory
TOP_K = 100  # the index returns this many candidates (recall@100 is the widest gate metric)
COSINE_FLOOR = 0.01  # cosine schedules decay to 1% of the initial learning rate
HISTORY_FILE = "history.json"  # next to the checkpoints: epochs done before a restart


# --------------------------------------------------------------------------- schedules and strategy


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


def make_optimizer(name: str, learning_rate: float, mixed_precision: bool,
                   clipnorm: Optional[float] = None) -> tf.keras.optimizers.Optimizer:
    optimizers = {
        "adagrad": tf.keras.optimizers.Adagrad,
        "adam": tf.keras.optimizers.Adam,
        "sgd": tf.keras.optimizers.SGD,
    }
    optimizer = optimizers[name](learning_rate=learning_rate, clipnorm=clipnorm)
    if mixed_precision:
        optimizer = tf.keras.mixed_precision.LossScaleOptimizer(optimizer)
    return optimizer


def current_learning_rate(optimizer: tf.keras.optimizers.Optimizer) -> float:
    return float(tf.keras.backend.get_value(optimizer.learning_rate))


# --------------------------------------------------------------------------- model


class FeatureTower(tf.keras.layers.Layer):
    """One side's configured features -> embeddings/values -> concatenated -> dense layers."""

    def __init__(self, features: Sequence[FeatureSpec], vocabulary_sizes: dict[str, int],
                 layer_sizes: Sequence[int], normalize: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feature_specs = list(features)
        self.embeddings: dict[str, tf.keras.layers.Layer] = {}
        for feature in self.feature_specs:
            transform = feature.transform
            if transform.type == "vocabulary":
                size = vocabulary_sizes[feature.name] + transform.num_oov_buckets
                self.embeddings[feature.name] = tf.keras.layers.Embedding(size, transform.embedding_dim, name=f"embedding_{feature.name}")
            elif transform.type == "hashing":
                self.embeddings[feature.name] = tf.keras.layers.Embedding(transform.num_buckets, transform.embedding_dim, name=f"embedding_{feature.name}")
            elif transform.type == "cross":
                self.embeddings[feature.name] = tf.keras.layers.Embedding(transform.hash_buckets, transform.embedding_dim, name=f"embedding_{feature.name}")
            elif transform.type == "bucketize" and transform.embedding_dim:
                self.embeddings[feature.name] = tf.keras.layers.Embedding(transform.num_buckets + 1, transform.embedding_dim, name=f"embedding_{feature.name}")
        self.normalize = normalize
        hidden = list(layer_sizes[:-1])
        self.dense_layers = [tf.keras.layers.Dense(n, activation="relu", name=f"dense_{i}") for i, n in enumerate(hidden)]
        # The output stays float32 under mixed precision: dot products and the index want full precision.
        # No layer sizes: an embedding-only tower (the concatenated feature vectors are the embedding).
        self.output_layer = (tf.keras.layers.Dense(layer_sizes[-1], dtype="float32", name="output")
                             if layer_sizes else None)

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        parts = []
        for feature in self.feature_specs:
            transform = feature.transform
            if feature.name in self.embeddings:
                parts.append(self.embeddings[feature.name](inputs[feature.name]))
            elif transform.type == "bucketize":
                parts.append(tf.one_hot(inputs[feature.name], transform.num_buckets + 1))
            else:  # normalize, cyclical: float values
                for key in F.output_keys(feature):
                    parts.append(tf.expand_dims(tf.cast(inputs[key], tf.float32), -1))
        x = tf.concat([tf.cast(p, self.compute_dtype) for p in parts], axis=-1)
        for layer in self.dense_layers:
            x = layer(x)
        x = self.output_layer(x) if self.output_layer is not None else tf.cast(x, tf.float32)
        return tf.math.l2_normalize(x, axis=-1) if self.normalize else x


@contextlib.contextmanager
def float32_policy() -> Iterator[None]:
    """Build layers in float32 under mixed precision: the TFRS tasks take no dtype argument and must
    compute losses in float32 (the towers' outputs already are)."""
    policy = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(policy)


class RecommenderModel(tfrs.Model):
    """Two towers; retrieval (in-batch softmax), ranking (MSE on the label) or a weighted sum of both."""

    def __init__(self, spec: RunSpec, vocabulary_sizes: dict[str, int]) -> None:
        super().__init__()
        config = spec.model_config_
        features = spec.feature_config.features
        self.model_type = spec.model_type
        normalize = config.normalize_embeddings
        self.query_tower = FeatureTower([f for f in features if f.side == "query"], vocabulary_sizes,
                                        config.query_tower, normalize, name="query_tower")
        self.candidate_tower = FeatureTower([f for f in features if f.side == "candidate"], vocabulary_sizes,
                                            config.candidate_tower, normalize, name="candidate_tower")
        self.remove_accidental_hits = config.remove_accidental_hits
        self.retrieval_weight = config.multitask_weights.retrieval if self.model_type == "multitask" else 1.0
        self.ranking_weight = config.multitask_weights.ranking if self.model_type == "multitask" else 1.0
        with float32_policy():
            if self.model_type in ("retrieval", "multitask"):
                self.retrieval_task = tfrs.tasks.Retrieval(
                    temperature=config.temperature if config.temperature != 1.0 else None,
                    remove_accidental_hits=config.remove_accidental_hits)
            if self.model_type in ("ranking", "multitask"):
                self.ranking_task = tfrs.tasks.Ranking(
                    loss=tf.keras.losses.MeanSquaredError(),
                    metrics=[tf.keras.metrics.RootMeanSquaredError(name="rmse"),
                             tf.keras.metrics.MeanAbsoluteError(name="mae")],
                )
        if self.model_type in ("ranking", "multitask"):
            self.ranking_head = tf.keras.Sequential(
                [tf.keras.layers.Dense(n, activation="relu") for n in config.ranking_head]
                + [tf.keras.layers.Dense(1, dtype="float32")],
                name="ranking_head",
            )

    def score(self, query_embedding: tf.Tensor, candidate_embedding: tf.Tensor) -> tf.Tensor:
        return tf.squeeze(self.ranking_head(tf.concat([query_embedding, candidate_embedding], axis=-1)), -1)

    def compute_loss(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        query = self.query_tower(inputs)
        candidate = self.candidate_tower(inputs)
        loss = tf.constant(0.0)
        if self.model_type in ("retrieval", "multitask"):
            # Accidental hits compare ids pairwise over the batch (8192² pairs at the default batch):
            # int64 fingerprints of the ids, not the strings, or that comparison dominates the step.
            ids = tf.strings.to_hash_bucket_fast(inputs[F.ITEM_ID_KEY], ID_HASH_BUCKETS) if self.remove_accidental_hits else None
            with float32_policy():  # RemoveAccidentalHits is a layer made inside the task's call
                loss += self.retrieval_weight * self.retrieval_task(
                    query, candidate, candidate_ids=ids, compute_metrics=False,
                    candidate_sampling_probability=inputs.get(F.CANDIDATE_PROBABILITY_KEY))
        if self.model_type in ("ranking", "multitask"):
            loss += self.ranking_weight * self.ranking_task(
                labels=inputs[F.LABEL_KEY], predictions=self.score(query, candidate))
        return loss

    def train_step(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        # tfrs.Model.train_step does not scale the loss, which mixed_float16 needs against underflow.
        scaled = isinstance(self.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            loss = self.compute_loss(inputs, training=True)
            total_loss = loss + tf.add_n(self.losses) if self.losses else loss
            tape_loss = self.optimizer.get_scaled_loss(total_loss) if scaled else total_loss
        gradients = tape.gradient(tape_loss, self.trainable_variables)
        if scaled:
            gradients = self.optimizer.get_unscaled_gradients(gradients)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        metrics = {metric.name: metric.result() for metric in self.metrics}
        metrics["loss"] = loss
        return metrics


# --------------------------------------------------------------------------- data


def _glob(patterns: Iterable[str]) -> list[str]:
    files: list[str] = []
    for pattern in patterns:
        if tf.io.gfile.isdir(pattern):
            pattern = pattern.rstrip("/") + "/*"
        files += sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no transformed examples at {list(patterns)}")
    return files


def make_dataset(patterns: Iterable[str], feature_spec: dict[str, Any], batch_size: int,
                 shuffle: bool = False, seed: int = 42,
                 item_probabilities: Optional[tf.lookup.StaticHashTable] = None,
                 cache: bool = False, keep: Optional[Sequence[str]] = None) -> tf.data.Dataset:
    """Gzipped TFRecords of transformed tf.Examples -> batches of dicts of rank-1 tensors (one pass).

    With `item_probabilities` each batch also carries F.CANDIDATE_PROBABILITY_KEY (the item's share
    of the training rows) for the sampling-bias correction. With `cache` the parsed batches of the
    first pass stay in memory and later epochs only reshuffle their order (as the TFRS tutorials'
    `.batch().cache()`): reading, decompressing and parsing every epoch was a large part of the gap
    to the tutorial code's examples/s on bench/quality.py. `keep`: only these keys reach the model (less to parse and to feed).
    """
    dataset = tf.data.TFRecordDataset(_glob(patterns), compression_type="GZIP")
    if shuffle:
        dataset = dataset.shuffle(20_000, seed=seed, reshuffle_each_iteration=True)
    if keep is not None:
        needed = set(keep) | ({F.ITEM_ID_KEY} if item_probabilities is not None else set())
        feature_spec = {k: v for k, v in feature_spec.items() if k in needed}

    def parse(records: tf.Tensor) -> dict[str, tf.Tensor]:
        batch = tf.io.parse_example(records, feature_spec)
        if item_probabilities is not None:
            batch[F.CANDIDATE_PROBABILITY_KEY] = item_probabilities.lookup(batch[F.ITEM_ID_KEY])
        return {k: v for k, v in batch.items() if keep is None or k in keep}

    dataset = dataset.batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
        if shuffle:
            dataset = dataset.shuffle(CACHE_MAX_EXAMPLES // batch_size + 1, seed=seed, reshuffle_each_iteration=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Each worker reads every file and keeps its share of each global batch. Sharding by file (the
    default) fails when a split has fewer files than there are workers, and leaves workers with
    unequal steps when the files differ in size; the seeded shuffle gives every worker the same order."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def model_inputs(spec: RunSpec, corrected: bool) -> list[str]:
    """The transformed keys the model's loss reads: the features, plus what the tasks need."""
    keys = [k for f in spec.feature_config.features for k in F.output_keys(f)]
    if spec.model_type != "retrieval":
        keys.append(F.LABEL_KEY)
    if spec.model_type != "ranking" and spec.model_config_.remove_accidental_hits:
        keys.append(F.ITEM_ID_KEY)
    if corrected:
        keys.append(F.CANDIDATE_PROBABILITY_KEY)
    return keys


def item_probability_table(patterns: Iterable[str]) -> tf.lookup.StaticHashTable:
    """Item id -> its share of the rows of `patterns` (the training split); unseen items get one row's share."""
    spec = {F.ITEM_ID_KEY: tf.io.FixedLenFeature([], tf.string)}
    counts: dict[bytes, int] = {}
    for batch in make_dataset(patterns, spec, 8192):
        ids, batch_counts = np.unique(batch[F.ITEM_ID_KEY].numpy(), return_counts=True)
        for item, count in zip(ids, batch_counts):
            counts[item] = counts.get(item, 0) + int(count)
    total = max(1, sum(counts.values()))
    keys = tf.constant(list(counts) or [b""], tf.string)
    values = tf.constant([c / total for c in counts.values()] or [1.0], tf.float32)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), default_value=1.0 / total)


def count_examples(patterns: Iterable[str]) -> int:
    return sum(1 for _ in tf.data.TFRecordDataset(_glob(patterns), compression_type="GZIP"))


def unique_candidates(patterns: Iterable[str], feature_spec: dict[str, Any], candidate_keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Every distinct item of the data (first occurrence's features): the full candidate set of the index."""
    spec = {k: feature_spec[k] for k in [F.ITEM_ID_KEY, *candidate_keys]}
    seen: dict[bytes, int] = {}
    columns: dict[str, list] = {k: [] for k in spec}
    for batch in make_dataset(patterns, spec, 4096):
        ids = batch[F.ITEM_ID_KEY].numpy()
        values = {k: v.numpy() for k, v in batch.items()}
        for row, item in enumerate(ids):
            if item not in seen:
                seen[item] = len(seen)
                for k in spec:
                    columns[k].append(values[k][row])
    return {k: np.asarray(v) for k, v in columns.items()}


# --------------------------------------------------------------------------- progress, checkpoints


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
                 publisher: ProgressPublisher) -> None:
        super().__init__()
        self.spec = spec
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
        for redundant in ("lr", "learning_rate", "regularization_loss", "total_loss",
                          "val_regularization_loss", "val_total_loss"):
            logs.pop(redundant, None)
        record = results.EpochMetrics(
            run_id=self.spec.run_id, attempt=self.spec.attempt, epoch=epoch + 1, total_epochs=self.total_epochs,
            loss=_finite(loss), val_loss=_finite(val_loss), learning_rate=self._epoch_lr,
            metrics={k: float(v) for k, v in logs.items() if _finite(v) is not None},
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
        _write_text(results.join(self.directory, HISTORY_FILE),
                    json.dumps([h.model_dump(mode="json") for h in self.history]))
        self.manager.save(checkpoint_number=epoch + 1)


def _write_text(path: str, text: str) -> None:
    tf.io.gfile.makedirs(os.path.dirname(path))
    temporary = path + ".tmp"
    with tf.io.gfile.GFile(temporary, "w") as handle:
        handle.write(text)
    tf.io.gfile.rename(temporary, path, overwrite=True)


def copy_tree(source: str, destination: str) -> None:
    """Recursive copy that works between local paths and gs:// alike."""
    for directory, _, files in tf.io.gfile.walk(source):
        relative = os.path.relpath(directory, source)
        target = destination if relative == "." else results.join(destination, relative)
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(results.join(directory, name), results.join(target, name), overwrite=True)


# --------------------------------------------------------------------------- warm restart


def _saved_model_dir(uri: str) -> Optional[str]:
    for candidate in (uri, results.join(uri, results.SAVED_MODEL_DIR), results.join(uri, "Format-Serving")):
        if tf.io.gfile.exists(results.join(candidate, "saved_model.pb")):
            return candidate
    return None


def warm_start(model: RecommenderModel, spec: RunSpec) -> tuple[str, Optional[str]]:
    """Load the base experiment's weights into `model`: ("loaded", None) or ("fallback", why).

    All or nothing: the SavedModel's variables must match the model's object graph and shapes
    (a model trained by this module from the same configs); anything else falls back to fresh weights.
    """
    params = spec.training_params.warm_restart
    base = spec.base_experiment
    if params.experiment_id and base and params.experiment_id != base.id:
        return "fallback", f"warm restart asked for experiment {params.experiment_id}, only the base experiment {base.id} is in the run spec"
    if not base or not base.saved_model_uri:
        return "fallback", "the base experiment has no saved_model_uri"
    directory = _saved_model_dir(base.saved_model_uri)
    if directory is None:
        return "fallback", f"no SavedModel at {base.saved_model_uri}"
    try:
        status = tf.train.Checkpoint(model=model).read(results.join(directory, "variables/variables"))
        status.assert_existing_objects_matched()
    except Exception as error:  # noqa: BLE001 - any mismatch means a fresh start, never a failure
        return "fallback", f"could not load weights from {directory}: {type(error).__name__}: {str(error)[:300]}"
    return "loaded", None


# --------------------------------------------------------------------------- export


SCANN_AUTO_SEARCHED_CANDIDATES = 100_000  # "auto" leaves to search cover at least this many candidates


def scann_parameters(num_candidates: int, k: int, index_config: Any) -> dict[str, int]:
    """ScaNN tree/quantization/reordering sizes for the TFRS ScaNN layer's constructor.

    "auto": about √n leaves; searched: 10% of them, and at least enough leaves to cover ~100k
    candidates (all of them below 100k; at 200k clustered vectors 10% of the leaves gave recall@100
    0.91, a third of them 0.995), never fewer than min(leaves, 8). Explicit num_leaves /
    num_leaves_to_search from the run spec are used as given. Always: asymmetric hashing with one
    dimension per block (4-bit code per dimension; with 2 per block the quantization error capped
    recall@100 near 0.955 whatever the leaves searched) and exact re-scoring of max(10k, 250)
    candidates.

    Chosen with bench/ml.py (1M × 32 clustered vectors, k = 100: recall@100 ≈ 0.996–0.999 vs exact
    search; see docs/pipeline.md "Measured on this machine").
    """
    leaves = index_config.num_leaves
    if leaves == "auto":
        leaves = max(1, int(round(math.sqrt(num_candidates))))
    leaves = min(leaves, num_candidates)
    to_search = index_config.num_leaves_to_search
    if to_search == "auto":
        covering = int(math.ceil(leaves * min(1.0, SCANN_AUTO_SEARCHED_CANDIDATES / num_candidates)))
        to_search = max(min(leaves, 8), int(math.ceil(leaves * 0.10)), covering)
    to_search = min(to_search, leaves)
    return {"num_leaves": leaves, "num_leaves_to_search": to_search, "dimensions_per_block": 1,
            "num_reordering_candidates": min(num_candidates, max(10 * k, 250))}


def build_index(candidate_embeddings: np.ndarray, identifiers: np.ndarray, index_config: Any, k: int = TOP_K):
    """The retrieval layer over all candidates: ScaNN (approximate, as configured) or BruteForce (exact)."""
    count = len(identifiers)
    k = min(k, count)
    embeddings = tf.constant(candidate_embeddings, tf.float32)
    ids = tf.constant(identifiers)
    if index_config.type == "scann" and count >= 16:
        params = scann_parameters(count, k, index_config)
        index = tfrs.layers.factorized_top_k.ScaNN(k=k, **params)
    else:
        index = tfrs.layers.factorized_top_k.BruteForce(k=k)
    index.index(embeddings, ids)
    return index


def _raw_input(value: tf.Tensor, raw_spec: Any) -> Any:
    """A rank-1 serving input -> the shape the Transform graph was traced with."""
    if isinstance(raw_spec, tf.io.VarLenFeature):
        rows = tf.shape(value, out_type=tf.int64)[0]
        indices = tf.stack([tf.range(rows), tf.zeros([rows], tf.int64)], axis=1)
        return tf.SparseTensor(indices, value, tf.stack([rows, 1]))
    if isinstance(raw_spec, tf.io.FixedLenFeature) and list(raw_spec.shape) == [1]:
        return tf.expand_dims(value, -1)
    return value


class ServingModule(tf.Module):
    """The exported objects; `model` keeps the same checkpoint path as training (warm restart reads it)."""

    def __init__(self, model: RecommenderModel, tft_layer: tf.keras.layers.Layer, raw_feature_spec: dict[str, Any],
                 index: Optional[tf.keras.layers.Layer] = None) -> None:
        super().__init__()
        self.model = model
        self.tft_layer = tft_layer
        self.index = index
        self._raw_feature_spec = raw_feature_spec

    def transform(self, raw: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return self.tft_layer({k: _raw_input(v, self._raw_feature_spec[k]) for k, v in raw.items()})


def _input_signature(columns: Sequence[str], raw_feature_spec: dict[str, Any]) -> dict[str, tf.TensorSpec]:
    return {c: tf.TensorSpec([None], raw_feature_spec[c].dtype, name=c) for c in columns}


def export_models(model: RecommenderModel, spec: RunSpec, tf_transform_output: tft.TFTransformOutput,
                  candidates: Optional[dict[str, np.ndarray]], export_dir: str) -> dict[str, str]:
    """Write serving, query and candidate SavedModels under export_dir (= artifacts_uri)."""
    raw_spec = tf_transform_output.raw_feature_spec()
    query_columns = F.side_raw_columns(spec, "query")
    candidate_columns = F.side_raw_columns(spec, "candidate")
    tft_layer = tf_transform_output.transform_features_layer()
    paths = {
        "saved_model": results.join(export_dir, results.SAVED_MODEL_DIR),
        "query_model": results.join(export_dir, results.QUERY_MODEL_DIR),
        "candidate_model": results.join(export_dir, results.CANDIDATE_MODEL_DIR),
    }

    query_module = ServingModule(model, tft_layer, raw_spec)
    query_fn = tf.function(lambda raw: {"embedding": model.query_tower(query_module.transform(raw))})
    tf.saved_model.save(query_module, paths["query_model"], signatures={
        "serving_default": query_fn.get_concrete_function(_input_signature(query_columns, raw_spec))})

    candidate_module = ServingModule(model, tft_layer, raw_spec)
    candidate_fn = tf.function(lambda raw: {"embedding": model.candidate_tower(candidate_module.transform(raw))})
    tf.saved_model.save(candidate_module, paths["candidate_model"], signatures={
        "serving_default": candidate_fn.get_concrete_function(_input_signature(candidate_columns, raw_spec))})

    signatures = {}
    index = None
    if spec.model_type in ("retrieval", "multitask"):
        candidate_keys = [k for f in spec.feature_config.features if f.side == "candidate" for k in F.output_keys(f)]
        embeddings = np.concatenate([
            model.candidate_tower({k: tf.constant(candidates[k][i:i + 8192]) for k in candidate_keys}).numpy()
            for i in range(0, len(candidates[F.ITEM_ID_KEY]), 8192)
        ])
        index = build_index(embeddings, candidates[F.ITEM_ID_KEY], spec.training_params.retrieval_index)
    serving = ServingModule(model, tft_layer, raw_spec, index)
    if index is not None:
        def retrieve(raw):
            scores, ids = serving.index(model.query_tower(serving.transform(raw)))
            return {"ids": ids, "scores": scores}
        signatures["serving_default"] = tf.function(retrieve).get_concrete_function(_input_signature(query_columns, raw_spec))
    if spec.model_type in ("ranking", "multitask"):
        def rank(raw):
            transformed = serving.transform(raw)
            return {"score": model.score(model.query_tower(transformed), model.candidate_tower(transformed))}
        name = "serving_default" if spec.model_type == "ranking" else "rank"
        both = list(dict.fromkeys(query_columns + candidate_columns))
        signatures[name] = tf.function(rank).get_concrete_function(_input_signature(both, raw_spec))
    tf.saved_model.save(serving, paths["saved_model"], signatures=signatures,
                        options=tf.saved_model.SaveOptions(namespace_whitelist=["Scann"]))
    return paths


# --------------------------------------------------------------------------- training


@dataclass
class TrainingResult:
    metrics: results.TrainingMetrics
    artifacts: results.ArtifactLocations
    model: RecommenderModel
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
) -> TrainingResult:
    """Train on transformed examples and write every result file of the Trainer under artifacts_uri.

    On several machines (TF_CONFIG) every worker runs this; only the chief writes under
    artifacts_uri, serving_model_dir and the progress topic (cluster.py), and every worker returns
    only once the chief's files are written (TFX's executor checks serving_model_dir on each)."""
    params = spec.training_params
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
        if spec.model_type != "ranking" and spec.model_config_.sampling_bias_correction:
            probabilities = item_probability_table(train_patterns)
        train_examples = count_examples(train_patterns)
        keep = model_inputs(spec, probabilities is not None)
        train_data = make_dataset(train_patterns, feature_spec, global_batch, shuffle=True,
                                  item_probabilities=probabilities, cache=train_examples <= CACHE_MAX_EXAMPLES,
                                  keep=keep)
        eval_data = make_dataset(eval_patterns, feature_spec, global_batch, item_probabilities=probabilities,
                                 keep=keep)
        if cluster.multi_worker:
            train_data, eval_data = shard_by_data(train_data), shard_by_data(eval_data)

        def build() -> tuple[RecommenderModel, tf.keras.optimizers.Optimizer]:
            with strategy.scope():
                built = RecommenderModel(spec, vocabulary_sizes)
                optimizer = make_optimizer(spec.model_config_.optimizer, params.learning_rate, params.mixed_precision,
                                           params.gradient_clipnorm)
                built.compile(optimizer=optimizer)
                # Create the variables now (checkpoint restore and warm start need them).
                sample = next(iter(make_dataset(eval_patterns, feature_spec, 2)))
                built.query_tower(sample), built.candidate_tower(sample)
                if built.model_type != "retrieval":
                    built.score(built.query_tower(sample), built.candidate_tower(sample))
            return built, optimizer

        model, optimizer = build()
        history: list[results.EpochMetrics] = []
        epoch_variable = tf.Variable(0, dtype=tf.int64, trainable=False)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_variable)
        manager = tf.train.CheckpointManager(checkpoint, checkpoint_write_dir, max_to_keep=2)

        resumed_from: Optional[int] = None
        warm = ("none", None)
        # Every worker resumes from the chief's checkpoints (the others' are scratch).
        history_path = results.join(checkpoint_dir, HISTORY_FILE)
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
                warm = warm_start(model, spec)
            if warm[0] == "fallback":
                log.warning("warm restart failed, starting fresh", error=warm[1])
                model, optimizer = build()  # nothing half-loaded survives
                checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_variable)
                manager = tf.train.CheckpointManager(checkpoint, checkpoint_write_dir, max_to_keep=2)

        publisher = ProgressPublisher(spec.progress_topic if cluster.is_chief else None)
        retrieval = spec.model_type in ("retrieval", "multitask")
        query_keys = [k for f in spec.feature_config.features if f.side == "query" for k in F.output_keys(f)]
        candidate_keys = [k for f in spec.feature_config.features if f.side == "candidate" for k in F.output_keys(f)]
        candidates = None
        if retrieval:  # the full candidate set: the live metric scores against it, the export indexes it
            candidates = unique_candidates(list(train_patterns) + list(eval_patterns), feature_spec, candidate_keys)
        live = L.LiveGateMetrics(
            spec.model_type, params.live_metrics_every_epochs, params.epochs,
            sample=L.eval_sample(make_dataset(eval_patterns, feature_spec, L.LIVE_SAMPLE_ROWS),
                                 [F.ITEM_ID_KEY, *query_keys]) if retrieval else None,
            candidates=candidates, query_keys=query_keys, candidate_keys=candidate_keys)
        gate = gate_metric(spec.model_type, spec.evaluator_config.blessing_threshold)

        def monitored(choice: str) -> dict[str, str]:
            if choice == "gate_metric":
                return {"monitor": gate, "mode": "min" if gate in ("test_rmse", "test_mae") else "max"}
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
        recorder = EpochRecorder(spec, params.epochs, history, publisher)
        # The live metric first (the others see its values in the logs), then the LR schedulers so the
        # recorder sees the rate each epoch actually used.
        callbacks: list[tf.keras.callbacks.Callback] = [live, *schedulers, recorder]
        if early_stopping is not None:
            callbacks.append(early_stopping)
        callbacks.append(PeriodicCheckpoint(manager, epoch_variable, params.checkpoint_every_epochs, history,
                                            checkpoint_write_dir))
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
            paths = export_models(model, spec, tf_transform_output, candidates, output_dir)
            transform_copy = results.join(output_dir, results.TRANSFORM_DIR)
            copy_tree(transform_output_dir, transform_copy)
            vocabularies = results.join(output_dir, results.VOCABULARIES_DIR)
            assets = results.join(transform_output_dir, "transform_fn/assets")
            if tf.io.gfile.exists(assets):
                copy_tree(assets, vocabularies)
            if serving_model_dir and cluster.is_chief:
                copy_tree(paths["saved_model"], serving_model_dir)
            artifacts = artifacts.model_copy(update=dict(
                saved_model=paths["saved_model"], query_model=paths["query_model"],
                candidate_model=paths["candidate_model"], transform_graph=transform_copy, vocabularies=vocabularies))
        _write_text(results.join(output_dir, results.TRAINING_METRICS_FILE), metrics.model_dump_json(indent=2))
        _write_text(results.join(output_dir, results.ARTIFACTS_FILE), artifacts.model_dump_json(indent=2))
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
                      warm: tuple[str, Optional[str]], examples_per_second: Optional[float]) -> results.TrainingMetrics:
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
        warm_start=warm[0],  # type: ignore[arg-type]
        warm_start_warning=warm[1],
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
        )
