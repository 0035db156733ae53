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


def test_cache_policy_keeps_a_split_in_memory_only_below_its_share_of_what_is_available():
    from pipeline_compiler.modules import data

    assert data.cache_fits(1000, 100.0, available_bytes=400_000)  # 100 kB <= a quarter of 400 kB
    assert not data.cache_fits(1001, 100.0, available_bytes=400_000)
    assert data.cache_fits(1000, 100.0, available_bytes=200_000, share=0.5)
    assert data.available_memory_bytes() > 0


def test_parsed_bytes_per_example_counts_numbers_and_strings():
    from pipeline_compiler.modules import data

    batch = {"id": tf.constant([b"short", b"x" * 40]), "index": tf.constant([1, 2], tf.int64),
             "value": tf.constant([0.5, 1.5], tf.float32)}
    # strings: a 24-byte header each, the long one's 40 bytes on the heap; int64 8 + float32 4 per row
    assert data.parsed_bytes_per_example(batch) == pytest.approx((24 + 24 + 40) / 2 + 8 + 4)


def test_flops_per_example_of_a_tiny_model_match_a_hand_count(tmp_path):
    from pipeline_compiler.modules import model as M
    from tests.unit.pipeline_compiler.tiny_data import tiny_spec

    spec = tiny_spec(str(tmp_path))
    spec = type(spec).model_validate({**spec.model_dump(by_alias=True), "feature_config": {"name": "ids", "features": [
        {"name": "customer_id", "column": "customer_id", "side": "query", "transform": {"type": "vocabulary", "embedding_dim": 4}},
        {"name": "product_id", "column": "product_id", "side": "candidate", "transform": {"type": "vocabulary", "embedding_dim": 4}},
    ]}, "model_config": {**spec.model_config_.model_dump(), "query_tower": [16, 8], "candidate_tower": [8]}})
    model = M.RecommenderModel(spec, {"customer_id": 10, "product_id": 10})
    batch = {"customer_id": tf.constant([0, 1], tf.int64), "product_id": tf.constant([2, 3], tf.int64)}
    model.query_tower(batch), model.candidate_tower(batch)
    # forward: query 4->16 (128) + 16->8 (256); candidate 4->8 (64); logits 2 * B(10) * d(8) = 160
    assert M.training_flops_per_example(model, spec, batch_size=10) == 3 * (128 + 256 + 64 + 160)
