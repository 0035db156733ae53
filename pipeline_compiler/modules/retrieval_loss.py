"""The retrieval task's in-batch softmax loss, computed in blocks of query rows.

The same loss as tfrs.tasks.Retrieval with its default CategoricalCrossentropy(from_logits, SUM):
each query's true candidate is the one in its own row, every other candidate of the batch is a
negative; optional temperature, sampling-probability correction (logit - log p) and removal of
accidental hits (a negative with the positive's id gets TFRS' MIN_FLOAT logit).

Why blocks: TFRS materialises the batch's B×B logits, a B×B identity as labels and the B×B
gradient (8192² floats = 268 MB each at the default batch), so a step streams ~1 GB through memory
for 3 matmuls whose inner dimension is only the embedding's (32). Here each block of `block` query
rows computes its logits, the softmax cross entropy (loss and d loss/d logits together,
`_softmax_cross_entropy`) and its share of both towers' gradients while the block is still in
cache; the B×B matrix never exists. bench/trainer_speed.py measured it against the TFRS task
(docs/pipeline.md, Trainer).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

BLOCK_ROWS = 512  # 256-2048 rows measured alike (1.45x the TFRS task); one 8192-row block barely gained
MIN_FLOAT = np.finfo(np.float32).min / 100.0  # tfrs.layers.loss.MIN_FLOAT: an accidental hit's logit offset
MIN_PROBABILITY = 1e-6  # tfrs SamplingProbablityCorrection clips the probability to [1e-6, 1]


def _block_logits(query_block: tf.Tensor, candidates: tf.Tensor, start: tf.Tensor, inverse_temperature: float,
                  log_probability: Optional[tf.Tensor], ids: Optional[tf.Tensor]) -> tf.Tensor:
    logits = tf.linalg.matmul(query_block, candidates, transpose_b=True) * inverse_temperature
    if log_probability is not None:
        logits -= log_probability[tf.newaxis, :]
    if ids is not None:
        rows = tf.shape(query_block)[0]
        same = tf.equal(ids[start:start + rows][:, tf.newaxis], ids[tf.newaxis, :])
        own = tf.one_hot(tf.range(start, start + rows), tf.shape(candidates)[0], on_value=True, off_value=False)
        logits += tf.cast(tf.logical_and(same, tf.logical_not(own)), logits.dtype) * MIN_FLOAT
    return logits


def _softmax_cross_entropy(logits: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Each row's softmax cross entropy against its label column, and d loss/d logits (softmax − one-hot).

    What tf.raw_ops.SparseSoftmaxCrossEntropyWithLogits returns, from plain ops: with the max, exp, sum and
    scale as separate ops TensorFlow spreads each over the cores, where the fused kernel was the step's
    slowest part: on 2 cores a step's loss and gradients at 8192 rows in 512-row blocks took 151 ms
    against 227 (medians of 7, 2026-12-07, an AVX-512 host; equal loss to 1e-7 relative).
    """
    rows = tf.shape(logits)[0]
    top = tf.reduce_max(logits, axis=1, keepdims=True)
    exp = tf.exp(logits - top)
    total = tf.reduce_sum(exp, axis=1, keepdims=True)
    own = tf.stack([tf.range(rows), labels], axis=1)
    losses = tf.math.log(total[:, 0]) + top[:, 0] - tf.gather_nd(logits, own)
    gradient = tf.tensor_scatter_nd_sub(exp * tf.math.reciprocal(total), own, tf.ones([rows], logits.dtype))
    return losses, gradient


def in_batch_softmax_loss(query: tf.Tensor, candidate: tf.Tensor, temperature: Optional[float] = None,
                          candidate_sampling_probability: Optional[tf.Tensor] = None,
                          candidate_ids: Optional[tf.Tensor] = None, block: int = BLOCK_ROWS) -> tf.Tensor:
    """Summed in-batch softmax cross entropy of [B, d] query and candidate embeddings (float32)."""
    inverse_temperature = 1.0 / temperature if temperature else 1.0
    log_probability = (tf.math.log(tf.clip_by_value(tf.cast(candidate_sampling_probability, tf.float32),
                                                    MIN_PROBABILITY, 1.0))
                       if candidate_sampling_probability is not None else None)

    @tf.custom_gradient
    def loss(query: tf.Tensor, candidate: tf.Tensor):
        rows = tf.shape(query)[0]
        steps = (rows + block - 1) // block

        def body(i, total, query_gradients, candidate_gradient):
            start = i * block
            query_block = query[start:start + block]
            logits = _block_logits(query_block, candidate, start, inverse_temperature, log_probability, candidate_ids)
            losses, logit_gradient = _softmax_cross_entropy(logits, tf.range(start, start + tf.shape(query_block)[0]))
            query_gradients = query_gradients.write(i, tf.linalg.matmul(logit_gradient, candidate))
            candidate_gradient += tf.linalg.matmul(logit_gradient, query_block, transpose_a=True)
            return i + 1, total + tf.reduce_sum(losses), query_gradients, candidate_gradient

        _, total, query_gradients, candidate_gradient = tf.while_loop(
            lambda i, *_: i < steps, body,
            (tf.constant(0), tf.constant(0.0), tf.TensorArray(tf.float32, size=steps, infer_shape=False,
                                                        element_shape=tf.TensorShape([None, query.shape[-1]])),
             tf.zeros_like(candidate)))
        query_gradient = query_gradients.concat()

        def gradient(upstream: tf.Tensor):
            scale = upstream * inverse_temperature
            return scale * query_gradient, scale * candidate_gradient

        return total, gradient

    return loss(query, candidate)
