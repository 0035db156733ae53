#!/usr/bin/env python
"""GPU validation for the Trainyard GPU image (spec §11.5).

Checks, each printed as PASS / FAIL / SKIPPED:
  gpus_visible       TensorFlow sees the GPUs (and at least --expect-gpus of them)       [GPU]
  cuda_build         TensorFlow was built with CUDA and reports each GPU's compute capability [GPU]
  mirrored_strategy  MirroredStrategy has one replica per GPU and an NCCL all-reduce works    [GPU]
  tfrs_model         a TFRS two-tower retrieval model is built and trained on synthetic data
                     (under MirroredStrategy when there are GPUs), loss finite and falling
  scann_index        a ScaNN index is built, queried (agreeing with brute force), saved as a
                     SavedModel and reloaded — ScaNN's TF custom ops load
  tfx_components     the TFX components the pipeline uses import
  mixed_precision    one mixed_float16 training step with a LossScaleOptimizer

[GPU] checks are SKIPPED on a machine without GPUs unless --require-gpu (or --expect-gpus) is given,
in which case a missing GPU is a FAIL (that is how it runs on Vertex AI). The other checks always
run, on the GPU when there is one, on the CPU otherwise. Exit status 1 when any check FAILs.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import traceback
from typing import Callable, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

PASS, FAIL, SKIPPED = "PASS", "FAIL", "SKIPPED"
GPU_CHECKS = ("gpus_visible", "cuda_build", "mirrored_strategy")


class Skip(Exception):
    """Raised by a check that cannot run here (no GPU)."""


class Context:
    def __init__(self, require_gpu: bool, expect_gpus: int, cpu_replicas: int = 0):
        self.require_gpu = require_gpu or expect_gpus > 0
        self.expect_gpus = expect_gpus
        self.gpus = tf.config.list_physical_devices("GPU")
        self.cpu_devices: list[str] = []
        self._strategy: Optional[tf.distribute.Strategy] = None
        if cpu_replicas > 1 and not self.gpus:
            # Exercise the multi-replica code paths without GPUs: split the CPU into logical devices.
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
            self.cpu_devices = [d.name for d in tf.config.list_logical_devices("CPU")]

    @property
    def replicated(self) -> bool:
        return bool(self.gpus or self.cpu_devices)

    def need_gpu(self) -> None:
        if not self.gpus:
            if self.require_gpu:
                raise AssertionError("no GPU visible to TensorFlow, but this run requires one")
            raise Skip("no GPU on this machine")

    def strategy(self) -> tf.distribute.Strategy:
        """The trainer's rule (spec §12.4): MirroredStrategy across the machine's GPUs.

        Created once and shared, as in the trainer: several MirroredStrategy objects in one process
        can hand out clashing collective keys.
        """
        if self._strategy is None:
            if self.gpus:
                self._strategy = tf.distribute.MirroredStrategy()
            elif self.cpu_devices:
                self._strategy = tf.distribute.MirroredStrategy(devices=self.cpu_devices)
            else:
                self._strategy = tf.distribute.get_strategy()
        return self._strategy


# --------------------------------------------------------------------------- checks


def check_gpus_visible(ctx: Context) -> str:
    ctx.need_gpu()
    if ctx.expect_gpus and len(ctx.gpus) < ctx.expect_gpus:
        raise AssertionError(f"{len(ctx.gpus)} GPU(s) visible, expected {ctx.expect_gpus}")
    growth = os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH")
    names = ", ".join(d.name for d in ctx.gpus)
    return f"{len(ctx.gpus)} GPU(s): {names} (TF_FORCE_GPU_ALLOW_GROWTH={growth})"


def check_cuda_build(ctx: Context) -> str:
    ctx.need_gpu()
    if not tf.test.is_built_with_cuda():
        raise AssertionError(f"TensorFlow {tf.__version__} is not built with CUDA")
    build = tf.sysconfig.get_build_info()
    caps = []
    for gpu in ctx.gpus:
        details = tf.config.experimental.get_device_details(gpu)
        caps.append(f"{details.get('device_name', gpu.name)} cc={details.get('compute_capability')}")
    return f"CUDA {build.get('cuda_version')}, cuDNN {build.get('cudnn_version')}; " + "; ".join(caps)


def check_mirrored_strategy(ctx: Context) -> str:
    if not ctx.cpu_devices:
        ctx.need_gpu()
    strategy = ctx.strategy()
    replicas = strategy.num_replicas_in_sync
    devices = len(ctx.gpus) or len(ctx.cpu_devices)
    if replicas != devices:
        raise AssertionError(f"{replicas} replicas for {devices} devices")
    # An all-reduce across the replicas (NCCL on GPUs): each contributes 1.
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)
    if int(total.numpy()) != replicas:
        raise AssertionError(f"all-reduce gave {float(total)}, expected {replicas}")
    kind = "GPU" if ctx.gpus else "logical CPU"
    return f"MirroredStrategy replicas: {replicas} ({kind}), all-reduce OK"


def _synthetic_interactions(n_users=200, n_items=100, n=4096, seed=0):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, size=n)
    # Structure the model can learn: user u mostly interacts with items near (u * 7) mod n_items.
    items = (users * 7 + rng.integers(0, 5, size=n)) % n_items
    user_ids = np.array([f"u{u}" for u in range(n_users)])
    item_ids = np.array([f"i{i}" for i in range(n_items)])
    return user_ids, item_ids, user_ids[users], item_ids[items]


def _tower(vocabulary: np.ndarray, dim: int) -> tf.keras.Model:
    return tf.keras.Sequential([
        tf.keras.layers.StringLookup(vocabulary=vocabulary, mask_token=None),
        tf.keras.layers.Embedding(len(vocabulary) + 1, dim),
    ])


def check_tfrs_model(ctx: Context) -> str:
    import tensorflow_recommenders as tfrs

    user_ids, item_ids, users, items = _synthetic_interactions()
    strategy = ctx.strategy()
    replicas = strategy.num_replicas_in_sync

    class TwoTower(tfrs.Model):
        def __init__(self):
            super().__init__()
            self.user_model = _tower(user_ids, 16)
            self.item_model = _tower(item_ids, 16)
            self.task = tfrs.tasks.Retrieval()

        def compute_loss(self, features, training=False):
            return self.task(self.user_model(features["user_id"]), self.item_model(features["item_id"]))

    with strategy.scope():
        model = TwoTower()
        model.compile(optimizer=tf.keras.optimizers.Adagrad(learning_rate=0.5))
    data = tf.data.Dataset.from_tensor_slices({"user_id": users, "item_id": items})
    data = data.shuffle(len(users), seed=0).batch(256 * replicas).cache()
    history = model.fit(data, epochs=3, verbose=0)
    losses = history.history["loss"]
    if not all(math.isfinite(x) for x in losses):
        raise AssertionError(f"non-finite loss {losses}")
    if not losses[-1] < losses[0]:
        raise AssertionError(f"loss did not fall: {losses}")
    embedding = model.user_model(tf.constant(["u1"]))
    if tuple(embedding.shape) != (1, 16):
        raise AssertionError(f"user embedding shape {embedding.shape}")
    where = f"{replicas} {'GPU' if ctx.gpus else 'CPU'} replica(s)"
    return f"two-tower retrieval trained 3 epochs on {len(users)} interactions ({where}), loss {losses[0]:.2f} -> {losses[-1]:.2f}"


def check_scann_index(ctx: Context) -> str:
    import tensorflow_recommenders as tfrs

    user_ids, item_ids, _, _ = _synthetic_interactions()
    tf.keras.utils.set_random_seed(1)
    query_model = _tower(user_ids, 16)
    item_model = _tower(item_ids, 16)
    candidates = tf.data.Dataset.from_tensor_slices(item_ids).batch(32).map(lambda ids: (ids, item_model(ids)))

    k = 10
    scann = tfrs.layers.factorized_top_k.ScaNN(
        query_model, k=k, num_leaves=10, num_leaves_to_search=10, num_reordering_candidates=50
    )
    scann.index_from_dataset(candidates)
    exact = tfrs.layers.factorized_top_k.BruteForce(query_model, k=k)
    exact.index_from_dataset(candidates)

    queries = tf.constant(user_ids[:20])
    scores, ids = scann(queries)
    if tuple(ids.shape) != (20, k) or tuple(scores.shape) != (20, k):
        raise AssertionError(f"unexpected result shapes {scores.shape} {ids.shape}")
    _, exact_ids = exact(queries)
    overlap = np.mean([
        len(set(a) & set(b)) / k for a, b in zip(ids.numpy().tolist(), exact_ids.numpy().tolist())
    ])
    if overlap < 0.9:
        raise AssertionError(f"ScaNN top-{k} agrees with brute force on only {overlap:.0%}")

    # What the Pusher ships: a SavedModel holding the ScaNN ops, reloaded and queried.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "index")
        tf.saved_model.save(scann, path, options=tf.saved_model.SaveOptions(namespace_whitelist=["Scann"]))
        reloaded = tf.saved_model.load(path)
        _, reloaded_ids = reloaded(queries)
    if reloaded_ids.numpy().tolist() != ids.numpy().tolist():
        raise AssertionError("reloaded ScaNN SavedModel answers differently")
    return f"index over {len(item_ids)} candidates, top-{k} overlap with brute force {overlap:.0%}, SavedModel round trip OK"


TFX_COMPONENTS = ("CsvExampleGen", "ImportExampleGen", "StatisticsGen", "SchemaGen", "Transform", "Trainer",
                  "Evaluator", "Pusher")


def check_tfx_components(ctx: Context) -> str:
    import tfx
    from tfx import v1

    missing = [name for name in TFX_COMPONENTS if not hasattr(v1.components, name)]
    if missing:
        raise AssertionError(f"missing TFX components: {missing}")
    _ = v1.extensions.google_cloud_big_query.BigQueryExampleGen
    _ = v1.extensions.google_cloud_ai_platform.Trainer
    _ = v1.orchestration.experimental.KubeflowV2DagRunner
    return f"TFX {tfx.__version__}: {len(TFX_COMPONENTS)} components + BigQueryExampleGen, Vertex Trainer, KubeflowV2DagRunner"


def check_mixed_precision(ctx: Context) -> str:
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        strategy = ctx.strategy()
        with strategy.scope():
            model = tf.keras.Sequential([
                tf.keras.layers.Dense(64, activation="relu", input_shape=(32,)),
                # Keep the output in float32 for a numerically stable loss (TF mixed-precision guide).
                tf.keras.layers.Dense(1, dtype="float32"),
            ])
            optimizer = tf.keras.mixed_precision.LossScaleOptimizer(tf.keras.optimizers.Adam(1e-3))
        hidden = model.layers[0]
        if hidden.compute_dtype != "float16" or hidden.variable_dtype != "float32":
            raise AssertionError(f"policy not applied: compute {hidden.compute_dtype}, variables {hidden.variable_dtype}")

        rng = np.random.default_rng(0)
        x = tf.constant(rng.normal(size=(64, 32)).astype(np.float32))
        y = tf.constant(rng.normal(size=(64, 1)).astype(np.float32))

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
                scaled = optimizer.get_scaled_loss(loss)
            grads = optimizer.get_unscaled_gradients(tape.gradient(scaled, model.trainable_variables))
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        before = [v.numpy().copy() for v in model.trainable_variables]
        loss = float(strategy.reduce(tf.distribute.ReduceOp.MEAN, strategy.run(step), axis=None))
        if not math.isfinite(loss):
            raise AssertionError(f"non-finite loss {loss}")
        if all(np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables)):
            raise AssertionError("the step changed no weights")
        where = "GPU" if ctx.gpus else "CPU"
        return f"mixed_float16 step on {strategy.num_replicas_in_sync} {where} replica(s): loss {loss:.3f}, loss scale {float(optimizer.loss_scale):.0f}"
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


CHECKS: dict[str, Callable[[Context], str]] = {
    "gpus_visible": check_gpus_visible,
    "cuda_build": check_cuda_build,
    "mirrored_strategy": check_mirrored_strategy,
    "tfrs_model": check_tfrs_model,
    "scann_index": check_scann_index,
    "tfx_components": check_tfx_components,
    "mixed_precision": check_mixed_precision,
}


def run_checks(ctx: Context, names: list[str]) -> list[tuple[str, str, str]]:
    results = []
    for name in names:
        started = time.monotonic()
        try:
            status, detail = PASS, CHECKS[name](ctx)
        except Skip as skip:
            status, detail = SKIPPED, str(skip)
        except Exception as exc:  # noqa: BLE001 - a failing check is reported, the others still run
            status, detail = FAIL, f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)
        print(f"[{status:7}] {name}: {detail} ({time.monotonic() - started:.1f}s)", flush=True)
        results.append((name, status, detail))
    return results


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Validate the Trainyard GPU image.")
    parser.add_argument("--require-gpu", action="store_true", help="a missing GPU is a FAIL, not SKIPPED")
    parser.add_argument("--expect-gpus", type=int, default=0, help="FAIL unless at least this many GPUs are visible")
    parser.add_argument("--cpu-replicas", type=int, default=0,
                        help="without GPUs, run MirroredStrategy over this many logical CPU devices (tests the multi-replica paths)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(CHECKS)}")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(CHECKS)
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        parser.error(f"unknown checks {unknown}; choose from {', '.join(CHECKS)}")

    ctx = Context(args.require_gpu, args.expect_gpus, args.cpu_replicas)
    bar = "=" * 60
    print(bar)
    print("GPU VALIDATION TEST")
    print(bar)
    print(f"Python {sys.version.split()[0]} | TensorFlow {tf.__version__} | CUDA built: {tf.test.is_built_with_cuda()}")
    print(f"GPUs detected: {len(ctx.gpus)}" + ("" if ctx.gpus else " (GPU checks " + ("FAIL" if ctx.require_gpu else "SKIPPED") + ")"))
    print(bar)
    results = run_checks(ctx, names)
    counts = {s: sum(1 for _, status, _ in results if status == s) for s in (PASS, FAIL, SKIPPED)}
    print(bar)
    failed = counts[FAIL] > 0
    print(f"{'SOME TESTS FAILED' if failed else 'ALL TESTS PASSED'}: "
          f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIPPED]} skipped")
    print(bar)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
