"""The recommender model the Trainer fits: two feature towers and the tasks the run's model kind
declares (shared/domain/model_kinds.py): retrieval (in-batch softmax over the towers' dot products),
ranking (MSE of a head over both towers against the label), or both with weighted losses. Also the
optimizer. The warm start that loads a source model's weights into it is warm_weights.py.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Optional, Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs

from pipeline_compiler.modules import features as F
from pipeline_compiler.modules import retrieval_loss as R
from shared.domain import model_kinds
from shared.domain import catalog
from shared.domain.catalog import FeatureSpec
from shared.domain.run_config import RunSpec

ID_HASH_BUCKETS = 2**62  # item ids -> int64 for in-batch comparisons (collisions: ~n²/2^63)


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


class FeatureTower(tf.keras.layers.Layer):
    """One side's configured features -> embeddings/values -> concatenated -> dense layers."""

    def __init__(self, features: Sequence[FeatureSpec], vocabulary_sizes: dict[str, int],
                 layer_sizes: Sequence[int], normalize: bool = False, projection: Optional[int] = None,
                 **kwargs: Any) -> None:
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
        # No layer sizes: an embedding-only tower (the concatenated feature vectors are the embedding),
        # linearly projected to the other side's width when it is the wider (catalog.projection_width).
        if layer_sizes:
            self.output_layer = tf.keras.layers.Dense(layer_sizes[-1], dtype="float32", name="output")
        elif projection:
            self.output_layer = tf.keras.layers.Dense(projection, use_bias=False, dtype="float32", name="projection")
        else:
            self.output_layer = None

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
    """Two towers and the kind's tasks: retrieval (in-batch softmax), ranking (MSE on the label), or a
    weighted sum of both. Attribute names are the checkpoint's object paths: warm restart and resume read them."""

    # The epoch's mean global gradient norm (train_step). Declared on the class so Keras does not track it:
    # a tracked metric would join the checkpoint, the exported SavedModel and test_step's results.
    gradient_norm: Optional[tf.keras.metrics.Mean] = None
    measure_gradient_norm: bool = True  # bench/trainer_speed.py turns it off to measure what it costs

    def __init__(self, spec: RunSpec, vocabulary_sizes: dict[str, int]) -> None:
        super().__init__()
        config = spec.model_config_
        features = spec.feature_config.features
        self.kind = model_kinds.kind(spec.model_type)
        normalize = config.normalize_embeddings
        # Only a kind that dot-multiplies the towers needs them to meet; a ranking head takes any widths.
        projection = {side: catalog.projection_width(spec.feature_config, config, side) if self.kind.towers_must_fit
                      else None for side in ("query", "candidate")}
        self.query_tower = FeatureTower([f for f in features if f.side == "query"], vocabulary_sizes,
                                        config.query_tower, normalize, projection["query"], name="query_tower")
        self.candidate_tower = FeatureTower([f for f in features if f.side == "candidate"], vocabulary_sizes,
                                            config.candidate_tower, normalize, projection["candidate"],
                                            name="candidate_tower")
        self.remove_accidental_hits = config.remove_accidental_hits
        self.retrieval_weight = config.multitask_weights.retrieval if self.kind.weighted else 1.0
        self.ranking_weight = config.multitask_weights.ranking if self.kind.weighted else 1.0
        self.temperature = config.temperature if config.temperature != 1.0 else None
        with float32_policy():
            if self.kind.retrieves:
                self.retrieval_task = tfrs.tasks.Retrieval(
                    temperature=self.temperature,
                    remove_accidental_hits=config.remove_accidental_hits)
            if self.kind.ranks:
                self.ranking_task = tfrs.tasks.Ranking(
                    loss=tf.keras.losses.MeanSquaredError(),
                    metrics=[tf.keras.metrics.RootMeanSquaredError(name="rmse"),
                             tf.keras.metrics.MeanAbsoluteError(name="mae")],
                )
        self.gradient_norm = tf.keras.metrics.Mean(name="grad_norm", dtype=tf.float32)
        if self.kind.ranks:
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
        if self.kind.retrieves:
            # Accidental hits compare ids pairwise over the batch (8192² pairs at the default batch):
            # int64 fingerprints of the ids, not the strings, or that comparison dominates the step.
            ids = tf.strings.to_hash_bucket_fast(inputs[F.ITEM_ID_KEY], ID_HASH_BUCKETS) if self.remove_accidental_hits else None
            probability = inputs.get(F.CANDIDATE_PROBABILITY_KEY)
            if training:  # the same loss in blocks of rows, without the B×B matrices (retrieval_loss.py)
                loss += self.retrieval_weight * R.in_batch_softmax_loss(
                    query, candidate, self.temperature, probability, ids)
            else:
                with float32_policy():  # RemoveAccidentalHits is a layer made inside the task's call
                    loss += self.retrieval_weight * self.retrieval_task(
                        query, candidate, candidate_ids=ids, compute_metrics=False,
                        candidate_sampling_probability=probability)
        if self.kind.ranks:
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
        # Before clipping (the optimizer clips): the norm that says whether clipping bites. Under a
        # distribution strategy each replica's own gradients; the Mean sums over replicas. A step whose
        # loss scale overflowed (inf/nan, skipped by the optimizer) is left out.
        if self.measure_gradient_norm:
            norm = tf.cast(tf.linalg.global_norm(gradients), tf.float32)
            finite = tf.math.is_finite(norm)
            self.gradient_norm.update_state(tf.where(finite, norm, 0.0), sample_weight=tf.cast(finite, tf.float32))
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        metrics = {metric.name: metric.result() for metric in self.metrics}
        metrics["loss"] = loss
        if self.measure_gradient_norm:
            metrics["grad_norm"] = self.gradient_norm.result()
        return metrics

    def reset_metrics(self) -> None:
        """Keras resets the tracked metrics at each epoch's start; the untracked gradient norm with them."""
        super().reset_metrics()
        self.gradient_norm.reset_state()


def training_flops_per_example(model: RecommenderModel, spec: RunSpec, batch_size: int) -> int:
    """Floating-point operations one training example costs a built model: 3× the forward pass
    (the backward pass is two matmuls per forward one). Forward: 2·in·out per dense layer of each tower
    and of the ranking head, plus 2·B·d for the row's in-batch logits against the B candidates
    (retrieval). Embedding lookups, activations and the softmax are not counted (no multiply-adds)."""
    def dense_flops(layers: Sequence[tf.keras.layers.Layer]) -> int:
        return sum(2 * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1]) for layer in layers)

    forward = 0
    for tower in (model.query_tower, model.candidate_tower):
        forward += dense_flops([*tower.dense_layers, *([tower.output_layer] if tower.output_layer else [])])
    if model.kind.retrieves:
        forward += 2 * batch_size * catalog.tower_output_dim(spec.feature_config, spec.model_config_, "candidate")
    if model.kind.ranks:
        forward += dense_flops(model.ranking_head.layers)
    return 3 * forward


def build(spec: RunSpec, vocabulary_sizes: dict[str, int], strategy: tf.distribute.Strategy,
          sample: Callable[[], dict[str, tf.Tensor]]) -> tuple[RecommenderModel, tf.keras.optimizers.Optimizer]:
    """The model and its compiled optimizer in the strategy's scope, with their variables created on a
    `sample()` batch (checkpoint restore and warm start need them)."""
    params = spec.training_params
    with strategy.scope():
        built = RecommenderModel(spec, vocabulary_sizes)
        optimizer = make_optimizer(spec.model_config_.optimizer, params.learning_rate, params.mixed_precision,
                                   params.clipnorm(spec.model_config_))
        built.compile(optimizer=optimizer)
        batch = sample()
        built.query_tower(batch), built.candidate_tower(batch)
        if built.kind.ranks:
            built.score(built.query_tower(batch), built.candidate_tower(batch))
    return built, optimizer
