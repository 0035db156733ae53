"""The gate metric while training: a Keras callback the Trainer puts before its epoch recorder.

Retrieval and multitask: every N epochs (TrainingParams.live_metrics_every_epochs, and always at
the last epoch), the first LIVE_SAMPLE_ROWS rows of the eval split are scored against the FULL
candidate set (every distinct item of train + eval, as the exported index holds them): exact top-k
of the dot products of their query embeddings with every candidate embedding. recall_at_{5,10,50,100}
= the share of those rows whose own item is in their top k — the Evaluator's definition, on the
eval split instead of test. Ranking and multitask: test_rmse / test_mae take the epoch's val_rmse /
val_mae (Keras computes them over the whole eval split), so the gate metric has its own name.

The values go into the epoch's `logs`, so the recorder publishes them with the epoch (the run's
live_metrics and history, the card's "Current R@100", the gate chart) and EarlyStopping /
ReduceLROnPlateau placed after this callback can monitor them.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import tensorflow as tf

from pipeline_compiler.modules import features as F
from shared.domain import model_kinds

RECALL_KS = (5, 10, 50, 100)
LIVE_SAMPLE_ROWS = 1000  # eval rows scored per measurement: ±1.5 points of recall@100 at 0.3
CANDIDATE_CHUNK = 8192
QUERY_CHUNK = 128  # rows scored at once: 128 × candidates floats (1M candidates: 512 MB)


def exact_recall(query_embeddings: tf.Tensor, candidate_embeddings: tf.Tensor, true_rows: np.ndarray,
                 ks: Sequence[int] = RECALL_KS) -> dict[str, float]:
    """Share of queries whose true candidate row is among the top k dot products (row -1: never found)."""
    widest = min(max(ks), int(candidate_embeddings.shape[0]))
    hits = {k: 0 for k in ks}
    for start in range(0, len(true_rows), QUERY_CHUNK):
        scores = tf.linalg.matmul(query_embeddings[start:start + QUERY_CHUNK], candidate_embeddings, transpose_b=True)
        top = tf.math.top_k(scores, k=widest).indices.numpy()
        truth = true_rows[start:start + QUERY_CHUNK, None]
        for k in ks:
            hits[k] += int(np.sum(np.any(top[:, :k] == truth, axis=1)))
    count = max(1, len(true_rows))
    return {f"recall_at_{k}": hits[k] / count for k in ks}


def embed(tower: tf.keras.layers.Layer, columns: dict[str, np.ndarray], keys: Sequence[str]) -> tf.Tensor:
    rows = len(next(iter(columns.values())))
    return tf.concat([tower({k: tf.constant(columns[k][i:i + CANDIDATE_CHUNK]) for k in keys})
                      for i in range(0, rows, CANDIDATE_CHUNK)], axis=0)


class LiveGateMetrics(tf.keras.callbacks.Callback):
    def __init__(self, model_type: str, every: int, total_epochs: int,
                 sample: Optional[dict[str, np.ndarray]] = None, candidates: Optional[dict[str, np.ndarray]] = None,
                 query_keys: Sequence[str] = (), candidate_keys: Sequence[str] = ()) -> None:
        super().__init__()
        self.model_type, self.every, self.total_epochs = model_type, every, total_epochs
        self.sample, self.candidates = sample, candidates
        self.query_keys, self.candidate_keys = list(query_keys), list(candidate_keys)
        self.true_rows = None
        if sample is not None and candidates is not None:
            row_of = {item: row for row, item in enumerate(candidates[F.ITEM_ID_KEY])}
            self.true_rows = np.array([row_of.get(item, -1) for item in sample[F.ITEM_ID_KEY]])

    def due(self, epoch: int) -> bool:
        return (epoch + 1) % self.every == 0 or epoch + 1 >= self.total_epochs

    def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
        if logs is None:
            return
        if model_kinds.kind(self.model_type).ranks:  # the Evaluator's names for the eval split's errors
            for name in ("rmse", "mae"):
                if f"val_{name}" in logs:
                    logs[f"test_{name}"] = logs[f"val_{name}"]
        if self.true_rows is None or not self.due(epoch):
            return
        candidates = embed(self.model.candidate_tower, self.candidates, self.candidate_keys)
        queries = embed(self.model.query_tower, self.sample, self.query_keys)
        logs.update(exact_recall(queries, candidates, self.true_rows))


def eval_sample(dataset: tf.data.Dataset, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The first batch of a (LIVE_SAMPLE_ROWS-batched) eval dataset as numpy columns."""
    batch = next(iter(dataset))
    return {k: batch[k].numpy() for k in keys}
