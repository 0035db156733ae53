"""Trainer speed benchmark (not a test): how near this machine's limit the Trainer trains, where its
step time goes, and its examples/s against the TFRS tutorial code on the same model and data.

    nice -n 10 .venv/bin/python bench/trainer_speed.py [--repeats 3] [--epochs 3] [--batch-size 8192]

Data and model: MovieLens 100k and its 80/20 split, loaded by bench/quality.py (imported), and
examples/movielens/tutorial.json: the TFRS basic-retrieval tutorial's model (32-d user and movie id
embeddings, in-batch softmax, Adagrad 0.1, batch 8192) in every arm.

1. The bound: this machine's dense float32 matmul FLOP/s (tf.linalg.matmul, best of N) at the
   model's shapes (B×d·d×B logits, B×B·B×d gradients) and at a square 1024³ (the machine's rate),
   against the model's training FLOPs per example (model.training_flops_per_example: towers' dense
   layers and the in-batch logits, forward ×3). Examples/s as a share of bound = rate / FLOPs.
2. Per repeat, order alternating (a neighbour's load hits both sides alike):
   * tfrs: the tutorial code (bench/quality.run_tfrs), in-memory `.batch().cache()` input;
   * ours: trainer.train_and_export from the TFRecords the Transform wrote (bench/quality.run_ours):
     the code a pipeline's Trainer runs;
   * ours/memory: the same model (model.build) fed the same transformed examples from memory, the
     tutorial's input pipeline: 1 − ours/ours-memory examples/s is the input pipeline's share of step time;
   * ours/memory, TFRS task loss: as ours/memory with the TFRS Retrieval task's loss in training (the
     trainer before retrieval_loss.py), what the blocked loss buys;
   * ours/memory, XLA (`--arms ...,memory_xla`, not by default: XLA cannot compile the blocked loss):
     as ours/memory compiled with jit_compile.
   * ours/memory, no gradient norm (`--arms memory,memory_no_grad_norm`): the train step without the
     per-epoch gradient norm TensorBoard and the Training tab chart (model.py measure_gradient_norm):
     memory's vs_memory_no_grad_norm is what measuring it costs.
   Examples/s: training examples over seconds inside training batches (bench/quality.BatchTimer: each
   epoch from its first batch's end), recall@100 scored as bench/quality.py scores it.
The 1-min load average is recorded before and after every arm; medians and min–max over repeats.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import quality as Q  # noqa: E402

CONFIG = "tutorial"


def load_average() -> float:
    with open("/proc/loadavg") as handle:
        return float(handle.read().split()[0])


def matmul_rate(m: int, k: int, n: int, transpose_b: bool = False, repeats: int = 5) -> float:
    """Best-of-`repeats` float32 FLOP/s of an m×k · k×n matmul (the product is reduced to a scalar
    so one number leaves the graph; that pass is counted in the time, not in the FLOPs)."""
    import tensorflow as tf

    a = tf.random.normal([m, k])
    b = tf.random.normal([n, k] if transpose_b else [k, n])
    product = tf.function(lambda a, b: tf.reduce_sum(tf.linalg.matmul(a, b, transpose_b=transpose_b)))
    product(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        product(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * m * k * n / best


def machine_rates(batch_size: int, width: int) -> dict[str, float]:
    return {
        "square_1024": matmul_rate(1024, 1024, 1024),
        "logits_BxdxB": matmul_rate(batch_size, width, batch_size, transpose_b=True),
        "gradient_BxBxd": matmul_rate(batch_size, batch_size, width),
    }


def transformed_in_memory(data: Any, spec: Any) -> dict[str, np.ndarray]:
    """The transformed train split the Trainer reads, parsed once into arrays (the model's inputs only)."""
    import tensorflow_transform as tft

    from pipeline_compiler.modules import data as D

    feature_spec = tft.TFTransformOutput(data.transform_output_dir).transformed_feature_spec()
    columns: dict[str, list] = {}
    for batch in D.make_dataset([data.train_pattern], feature_spec, 65_536, keep=D.model_inputs(spec, False)):
        for key, value in batch.items():
            columns.setdefault(key, []).append(value.numpy())
    return {k: np.concatenate(v) for k, v in columns.items()}


def train_from_memory(spec: Any, vocabulary_sizes: dict[str, int], arrays: dict[str, np.ndarray], epochs: int,
                      batch_size: int, variant: str) -> dict[str, Any]:
    """The Trainer's model fed from memory with the tutorial's input pipeline; `variant`: "blocked" (the
    trainer's loss), "tfrs_task" (the TFRS Retrieval task's loss in training) or "xla"."""
    import tensorflow as tf

    from pipeline_compiler.modules import model as M

    tf.random.set_seed(Q.SEED)
    dataset = tf.data.Dataset.from_tensor_slices(arrays)
    cached = dataset.shuffle(len(next(iter(arrays.values()))), seed=Q.SEED,
                             reshuffle_each_iteration=False).batch(batch_size).cache()
    built, _ = M.build(spec, vocabulary_sizes, tf.distribute.get_strategy(), lambda: next(iter(cached)))
    if variant == "tfrs_task":
        original = built.compute_loss
        built.compute_loss = lambda inputs, training=False: original(inputs, training=False)
    if variant == "no_grad_norm":  # the train step as it was before it measured the gradient norm
        built.measure_gradient_norm = False
    if variant == "xla":
        built.compile(optimizer=built.optimizer, jit_compile=True)
    timer = Q.BatchTimer()
    built.fit(cached, epochs=epochs, callbacks=[timer.callback], verbose=0)
    return {"examples_per_second": timer.examples_per_second(batch_size), "model": built}


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4), "max": round(max(values), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8192)
    # memory_xla: XLA cannot compile the blocked loss (a while loop over dynamic slices), see docs/pipeline.md
    parser.add_argument("--arms", default="tfrs,ours,memory,memory_tfrs_task")
    args = parser.parse_args()

    import tensorflow as tf
    import tensorflow_transform as tft

    from pipeline_compiler.modules import model as M

    tf.get_logger().setLevel("ERROR")
    raw, cut, test_start = Q.random_split(Q.DATASETS["movielens-100k"].load())
    train = {k: v[:cut] for k, v in raw.items()}
    test = {k: v[test_start:] for k, v in raw.items()}
    config = Q.example_config(CONFIG)
    workdir = tempfile.mkdtemp(prefix="trainyard-bench-trainer-")
    spec = Q.ours_spec(workdir, config, args.epochs, args.batch_size, as_configured=False)
    data = Q.transform_for(spec, raw, cut, test_start, workdir)
    # run_ours transforms once per feature config and process: hand it this transform.
    transformed = {json.dumps(config["feature_config"], sort_keys=True): (workdir, data)}
    arrays = transformed_in_memory(data, spec)
    transform_output = tft.TFTransformOutput(data.transform_output_dir)
    vocabulary_sizes = {f.name: transform_output.vocabulary_size_by_name(f.name)
                        for f in spec.feature_config.features if f.transform.type == "vocabulary"}

    load_before = load_average()
    probe = train_from_memory(spec, vocabulary_sizes, {k: v[:args.batch_size] for k, v in arrays.items()}, 1,
                              args.batch_size, "blocked")["model"]
    flops = M.training_flops_per_example(probe, spec, args.batch_size)
    width = int(probe.candidate_tower(next(iter(tf.data.Dataset.from_tensor_slices(arrays).batch(2)))).shape[-1])
    rates = machine_rates(args.batch_size, width)
    peak = max(rates.values())
    figures: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "tensorflow": tf.__version__},
        "data": {"dataset": "MovieLens 100k", "train": cut, "test": len(raw["user_id"]) - cut,
                 "config": f"examples/movielens/{CONFIG}.json", "epochs": args.epochs, "batch_size": args.batch_size},
        "matmul_gflops": {k: round(v / 1e9, 1) for k, v in rates.items()},
        "matmul_load_1min": [load_before, load_average()],
        "training_flops_per_example": flops,
        "bound_examples_per_second": round(peak / flops),
    }
    print(json.dumps(figures), flush=True)

    arms: dict[str, Callable[[], dict[str, Any]]] = {
        "tfrs": lambda: Q.run_tfrs(train, raw["movie_id"], test, "movie_id", args.epochs, args.batch_size),
        "ours": lambda: Q.run_ours(CONFIG, "movielens-100k", "movie_id", raw, cut, test_start, args.epochs,
                                   args.batch_size, transformed),
        "memory": lambda: train_from_memory(spec, vocabulary_sizes, arrays, args.epochs, args.batch_size, "blocked"),
        "memory_tfrs_task": lambda: train_from_memory(spec, vocabulary_sizes, arrays, args.epochs, args.batch_size,
                                                      "tfrs_task"),
        "memory_xla": lambda: train_from_memory(spec, vocabulary_sizes, arrays, args.epochs, args.batch_size, "xla"),
        "memory_no_grad_norm": lambda: train_from_memory(spec, vocabulary_sizes, arrays, args.epochs,
                                                         args.batch_size, "no_grad_norm"),
    }
    names = [n for n in args.arms.split(",") if n]
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for repeat in range(args.repeats):
        order = names if repeat % 2 == 0 else list(reversed(names))
        for name in order:
            before = load_average()
            outcome = arms[name]()
            outcome.pop("model", None)
            outcome["load_1min"] = [before, load_average()]
            runs[name].append(outcome)
            print(json.dumps({"repeat": repeat + 1, name: outcome}), flush=True)

    results: dict[str, Any] = {}
    for name, outcomes in runs.items():
        speeds = [o["examples_per_second"] for o in outcomes]
        entry: dict[str, Any] = {"examples_per_second": summary(speeds),
                                 "share_of_bound": round(statistics.median(speeds) * flops / peak, 3),
                                 "load_1min": [min(min(o["load_1min"]) for o in outcomes),
                                               max(max(o["load_1min"]) for o in outcomes)]}
        if "recall" in outcomes[0]:
            entry["recall_at_100"] = summary([o["recall"]["recall_at_100"] for o in outcomes])
        results[name] = entry
    # Ratios within a repeat (both arms under the same moment's load), then their median.
    for name in names:
        for base in ("tfrs", "memory", "memory_no_grad_norm"):
            if name != base and base in runs:
                ratios = [a["examples_per_second"] / b["examples_per_second"] for a, b in zip(runs[name], runs[base])]
                results[name][f"vs_{base}"] = summary(ratios)
    if "ours" in runs and "memory" in runs:
        shares = [1 - o["examples_per_second"] / m["examples_per_second"] for o, m in zip(runs["ours"], runs["memory"])]
        results["input_pipeline_share_of_step_time"] = summary(shares)
    figures["arms"] = results
    print(json.dumps(figures, indent=2))
    sys.stdout.flush()
    os._exit(0)  # as bench/quality.py: TensorFlow + Beam threads can crash in interpreter teardown


if __name__ == "__main__":
    main()
