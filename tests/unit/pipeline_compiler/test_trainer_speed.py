"""The trainer's speed pieces (issue 25): the blocked in-batch softmax loss equals TFRS' Retrieval task,
the FLOP count of a model, and the cache policy by size."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from pipeline_compiler.modules import retrieval_loss as R


def _loss_and_gradients(loss_fn, query, candidate):
    with tf.GradientTape() as tape:
        tape.watch([query, candidate])
        loss = loss_fn(query, candidate)
    return [loss.numpy(), *[g.numpy() for g in tape.gradient(loss, [query, candidate])]]


@pytest.mark.parametrize("options", [
    {},
    {"temperature": 0.1},
    {"probability": True},
    {"ids": True},
    {"temperature": 0.5, "probability": True, "ids": True},
])
def test_blocked_loss_and_gradients_equal_the_tfrs_retrieval_task(options):
    rng = np.random.default_rng(0)
    rows = 37  # not a multiple of the block: the last block is short
    query = tf.constant(rng.normal(size=(rows, 8)), tf.float32)
    candidate = tf.constant(rng.normal(size=(rows, 8)), tf.float32)
    probability = tf.constant(rng.uniform(1e-7, 0.3, rows), tf.float32) if options.get("probability") else None
    ids = tf.constant(rng.integers(0, 9, rows), tf.int64) if options.get("ids") else None  # duplicates: accidental hits
    task = tfrs.tasks.Retrieval(temperature=options.get("temperature"), remove_accidental_hits=ids is not None)
    expected = _loss_and_gradients(
        lambda q, c: task(q, c, candidate_ids=ids, candidate_sampling_probability=probability, compute_metrics=False),
        query, candidate)
    blocked = _loss_and_gradients(
        lambda q, c: R.in_batch_softmax_loss(q, c, options.get("temperature"), probability, ids, block=8),
        query, candidate)
    for got, want in zip(blocked, expected):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


def test_blocked_loss_traces_in_a_graph_with_an_unknown_batch_size():
    loss = tf.function(lambda q, c: R.in_batch_softmax_loss(q, c, block=4),
                       input_signature=[tf.TensorSpec([None, 3], tf.float32)] * 2)
    eye = tf.eye(6, 3)
    assert float(loss(eye, eye)) == pytest.approx(float(tfrs.tasks.Retrieval()(eye, eye, compute_metrics=False)), rel=1e-5)
