"""ML benchmark (not a test): trainer throughput and retrieval-index serving at one million candidates.

    .venv/bin/python bench/ml.py [--candidates 1000000] [--queries 1000] [--skip-training]

1. Training: the demo data (50k rows) through the real preprocessing_fn (tft_beam), then the
   Trainer's train_and_export for a few epochs; reports TrainingMetrics.examples_per_second.
2. Serving: 1M x 32 clustered candidate vectors, a batch of 1000 queries. The ScaNN index exactly as
   the Trainer exports it (export.build_index with "auto" parameters, saved in a SavedModel and
   loaded back) against the TFRS BruteForce layer and ScaNN's own exact (brute-force) scan on the
   same vectors: recall@100 relative to exact search and queries/s.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

K = 100


def clustered_vectors(count: int, dim: int, clusters: int, rng: np.random.Generator) -> np.ndarray:
    centers = rng.normal(size=(clusters, dim)).astype(np.float32)
    assignment = rng.integers(0, clusters, count)
    return centers[assignment] + 0.3 * rng.normal(size=(count, dim)).astype(np.float32)


def exact_top_k(queries: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    result = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 100):
        scores = queries[start:start + 100] @ candidates.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        result[start:start + 100] = top
    return result


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def timed(fn, repeats: int = 3) -> tuple[float, object]:
    fn()  # warm-up (tracing, thread pools)
    best, out = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


def bench_serving(candidates_count: int, queries_count: int, dim: int = 32, seed: int = 3) -> dict:
    import scann
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    from pipeline_compiler.modules import export
    from shared.domain.run_config import RetrievalIndex

    rng = np.random.default_rng(seed)
    candidates = clustered_vectors(candidates_count, dim, 1000, rng)
    queries = clustered_vectors(queries_count, dim, 1000, rng)
    ids = np.array([f"item-{i}" for i in range(candidates_count)])
    truth = exact_top_k(queries, candidates, K)
    query_tensor = tf.constant(queries)

    started = time.perf_counter()
    scann_layer = export.build_index(candidates, ids, RetrievalIndex())
    scann_build_seconds = time.perf_counter() - started
    params = export.scann_parameters(candidates_count, K, RetrievalIndex())

    # Round-trip through a SavedModel, as the serving model carries it.
    module = tf.Module()
    module.index = scann_layer
    module.search = tf.function(lambda q: module.index(q), input_signature=[tf.TensorSpec([None, dim], tf.float32)])
    export_dir = tempfile.mkdtemp(prefix="trainyard-bench-scann-")
    tf.saved_model.save(module, export_dir, options=tf.saved_model.SaveOptions(namespace_whitelist=["Scann"]))
    loaded = tf.saved_model.load(export_dir)
    scann_seconds, (_, scann_ids) = timed(lambda: loaded.search(query_tensor))
    id_to_row = {f"item-{i}".encode(): i for i in range(candidates_count)}
    scann_rows = np.vectorize(id_to_row.get)(scann_ids.numpy())

    brute = tfrs.layers.factorized_top_k.BruteForce(k=K)
    brute.index(tf.constant(candidates))
    brute_seconds, (_, brute_rows) = timed(lambda: brute(query_tensor), repeats=2)

    exact_searcher = scann.scann_ops_pybind.builder(candidates, K, "dot_product").score_brute_force().build()
    exact_seconds, (exact_rows, _) = timed(lambda: exact_searcher.search_batched_parallel(queries), repeats=2)

    figures = {
        "candidates": candidates_count, "dim": dim, "queries": queries_count, "k": K,
        "scann_params": params, "scann_build_seconds": round(scann_build_seconds, 1),
        "scann_exported": {"recall_at_100": round(recall(scann_rows, truth), 4),
                           "queries_per_second": round(queries_count / scann_seconds)},
        "tfrs_brute_force": {"recall_at_100": round(recall(brute_rows.numpy(), truth), 4),
                             "queries_per_second": round(queries_count / brute_seconds)},
        "scann_exact_scan": {"recall_at_100": round(recall(np.asarray(exact_rows), truth), 4),
                             "queries_per_second": round(queries_count / exact_seconds)},
    }
    figures["speedup_vs_brute_force"] = round(brute_seconds / scann_seconds, 1)
    return figures


def bench_training(rows: int = 50_000, epochs: int = 3, batch_size: int = 1024) -> dict:
    from pipeline_compiler.modules import trainer
    from tests.unit.pipeline_compiler.tiny_data import run_tiny_transform, tiny_spec

    workdir = tempfile.mkdtemp(prefix="trainyard-bench-train-")
    started = time.perf_counter()
    data = run_tiny_transform(workdir, sizes=dict(rows=rows, customers=2000, products=2000, months=6, seed=7))
    transform_seconds = time.perf_counter() - started
    spec = tiny_spec(workdir, run_id="bench", training_params={
        "epochs": epochs, "batch_size": batch_size, "early_stopping": {"enabled": False}})
    result = trainer.train_and_export(spec, [data.train_pattern], [data.eval_pattern], data.transform_output_dir,
                                      export=False)
    return {"rows": rows, "train_rows": int(rows * 0.8), "epochs": epochs, "batch_size": batch_size,
            "tft_beam_transform_seconds": round(transform_seconds, 1),
            "examples_per_second": round(result.metrics.examples_per_second)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    figures = {"serving": bench_serving(args.candidates, args.queries)}
    print(json.dumps(figures, indent=2), flush=True)
    if not args.skip_training:
        figures["training"] = bench_training()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
