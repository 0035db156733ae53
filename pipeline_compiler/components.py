"""The Evaluator and Pusher of the pipeline: TFX Python function components over plain functions.

Evaluator: the gate metric on the test split against the full candidate set (the exported serving
model's index), plus the baselines (most-popular, and EASE where the catalog fits: baselines.py),
-> ModelBlessing + evaluation/evaluation_results.json. Both splits are read in batches, so its memory
does not grow with the test split (bench/scale.py measures it).
Pusher: a blessed model becomes a new version of the model named after the run, in the Vertex
Model Registry (google-cloud-aiplatform; parent model versions; run labels) or in a local registry
directory -> registry/registry_entry.json. A not-blessed model is not registered.
"""
# No `from __future__ import annotations`: TFX reads the component signatures at runtime.

from typing import Iterator, Optional

import numpy as np
import tensorflow as tf
from tfx import v1 as tfx

from pipeline_compiler.baselines import TrainInteractions, fit_ease
from pipeline_compiler.modules import features as F
from pipeline_compiler.registry import VertexRegistrar, register_local, write_json
from shared.contract import results
from shared import log
from shared.domain import model_kinds
from shared.domain.run_config import METRICS_FOR_MODEL_TYPE, RunSpec, gate_metric, lift_percent

RECALL_KS = (5, 10, 50, 100)
EVAL_BATCH_ROWS = 1024  # rows per batch the Evaluator holds: its memory does not grow with the splits
BLESSED_FILE, NOT_BLESSED_FILE = "BLESSED", "NOT_BLESSED"  # TFX's convention in a ModelBlessing dir


# --------------------------------------------------------------------------- evaluation


def _raw_batches(examples_uri: str, split: str, columns: dict[str, tf.dtypes.DType], batch_size: Optional[int] = None) -> Iterator[dict[str, np.ndarray]]:
    """Raw examples of one split as dicts of rank-1 arrays (missing values become ''/0), a batch at a time."""
    batch_size = batch_size or EVAL_BATCH_ROWS
    files = tf.io.gfile.glob(results.join(examples_uri, f"Split-{split}/*"))
    if not files:
        raise FileNotFoundError(f"no examples in split {split!r} under {examples_uri}")
    spec = {name: tf.io.VarLenFeature(dtype) for name, dtype in columns.items()}
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size)
    for records in dataset:
        parsed = tf.io.parse_example(records, spec)
        rows = int(tf.shape(records)[0])
        batch = {}
        for name, value in parsed.items():
            default = b"" if value.dtype == tf.string else value.dtype.as_numpy_dtype(0)
            dense = tf.sparse.to_dense(value, default_value=default).numpy()
            batch[name] = dense[:, 0] if dense.shape[1] else np.full(rows, default)
        yield batch


def _as_text(values: np.ndarray) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])


def _raw_dtypes(transform_dir: str) -> dict[str, tf.dtypes.DType]:
    import tensorflow_transform as tft

    return {name: spec.dtype for name, spec in tft.TFTransformOutput(transform_dir).raw_feature_spec().items()}


def evaluate_model(spec: RunSpec, examples_uri: str, serving_model_dir: str, transform_dir: str) -> results.Evaluation:
    """Test-split metrics of the exported serving model, the baselines, and the blessing decision."""
    loaded = tf.saved_model.load(serving_model_dir)
    dtypes = _raw_dtypes(transform_dir)
    columns = spec.dataset.columns
    label = F.label_column(spec)
    wanted = set(F.all_raw_columns(spec))
    metrics: dict[str, float] = {}
    baselines: dict[str, float] = {}

    kind = model_kinds.kind(spec.model_type)
    retrieval, ranking = kind.retrieves, kind.ranks
    # One streaming pass over train: item counts (most-popular) and, for EASE, the (user, item) pairs.
    train = TrainInteractions(spec.evaluator_config.ease_max_items if retrieval else 0)
    train_label_sum, train_label_count = 0.0, 0
    base_columns = {columns.item_id: dtypes[columns.item_id], columns.user_id: dtypes[columns.user_id]}
    if label:
        base_columns[label] = dtypes[label]
    for batch in _raw_batches(examples_uri, "train", base_columns):
        train.add(_as_text(batch[columns.user_id]), _as_text(batch[columns.item_id]))
        if label:
            train_label_sum += float(np.sum(batch[label].astype(np.float64)))
            train_label_count += len(batch[label])
    most_popular = train.most_popular(max(RECALL_KS))
    ease, ease_skipped = fit_ease(train, _gate_k(spec)) if retrieval else (None, None)
    del train  # EASE keeps its own matrix; the pairs and counts are not needed while scoring
    ease_hits = {k: 0 for k in RECALL_KS}
    retrieve = loaded.signatures["serving_default"] if retrieval else None
    rank = loaded.signatures[kind.rank_signature] if ranking else None
    hits = {k: 0 for k in RECALL_KS}
    popular_hits = {k: 0 for k in RECALL_KS}
    squared, absolute, mean_squared, mean_absolute, count = 0.0, 0.0, 0.0, 0.0, 0
    ease_metrics: dict[str, float] = {}
    train_mean = train_label_sum / train_label_count if train_label_count else 0.0

    test_columns = wanted | ({columns.user_id} if ease is not None else set())
    for batch in _raw_batches(examples_uri, "test", {c: dtypes[c] for c in test_columns}):
        count += len(batch[columns.item_id])
        if retrieve is not None:
            inputs = {name: tf.constant(batch[name], dtype=spec_.dtype)
                      for name, spec_ in retrieve.structured_input_signature[1].items()}
            top_ids = retrieve(**inputs)["ids"].numpy()
            actual = _as_text(batch[columns.item_id])
            top_text = np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v))(top_ids)
            ease_ranks = ease.ranks(_as_text(batch[columns.user_id]), actual) if ease is not None else None
            for k in RECALL_KS:
                hits[k] += int(np.sum(np.any(top_text[:, :k] == actual[:, None], axis=1)))
                popular_hits[k] += int(np.sum(np.isin(actual, most_popular[:k])))
                if ease_ranks is not None:
                    ease_hits[k] += int(np.sum(ease_ranks < k))
        if rank is not None:
            inputs = {name: tf.constant(batch[name], dtype=spec_.dtype)
                      for name, spec_ in rank.structured_input_signature[1].items()}
            predicted = rank(**inputs)["score"].numpy().astype(np.float64)
            truth = batch[label].astype(np.float64)
            squared += float(np.sum((predicted - truth) ** 2))
            absolute += float(np.sum(np.abs(predicted - truth)))
            mean_squared += float(np.sum((train_mean - truth) ** 2))
            mean_absolute += float(np.sum(np.abs(train_mean - truth)))

    if count:
        if retrieval:
            for k in RECALL_KS:
                metrics[f"recall_at_{k}"] = hits[k] / count
                baselines[f"recall_at_{k}"] = popular_hits[k] / count
                if ease is not None:
                    ease_metrics[f"recall_at_{k}"] = ease_hits[k] / count
        if ranking:
            metrics["test_rmse"] = float(np.sqrt(squared / count))
            metrics["test_mae"] = absolute / count
            baselines["test_rmse"] = float(np.sqrt(mean_squared / count))
            baselines["test_mae"] = mean_absolute / count
    metrics["test_examples"] = float(count)
    return decide_blessing(spec, metrics, baselines, ease_metrics,
                           ease_lambda=ease.lam if ease is not None else None, ease_skipped=ease_skipped)


def _gate_k(spec: RunSpec) -> int:
    """The k of the gate's recall@k (EASE's λ is chosen on it); 100 when the gate is not a recall."""
    metric = gate_metric(spec.model_type, spec.evaluator_config.blessing_threshold)
    return int(metric.rsplit("_", 1)[1]) if metric.startswith("recall_at_") else max(RECALL_KS)


def decide_blessing(spec: RunSpec, metrics: dict[str, float], baselines: dict[str, float],
                    ease_metrics: Optional[dict[str, float]] = None, ease_lambda: Optional[float] = None,
                    ease_skipped: Optional[str] = None) -> results.Evaluation:
    config = spec.evaluator_config
    threshold = config.blessing_threshold
    metric = gate_metric(spec.model_type, threshold)
    actual, baseline = metrics.get(metric), baselines.get(metric)
    lift = lift_percent(metric, actual, baseline) if actual is not None and baseline is not None else None
    required = config.min_lift_over_baseline_percent
    ease_value = (ease_metrics or {}).get(metric)
    ease_lift = lift_percent(metric, actual, ease_value) if actual is not None and ease_value is not None else None
    required_ease = config.min_lift_over_ease_percent
    against_baseline = dict(baseline_value=baseline, lift_percent=lift, required_lift_percent=required,
                            ease_metrics=ease_metrics or {}, ease_lambda=ease_lambda, ease_skipped_reason=ease_skipped,
                            ease_value=ease_value, lift_over_ease_percent=ease_lift,
                            required_lift_over_ease_percent=required_ease)
    if not config.enabled or (threshold is None and required is None and required_ease is None):
        # Disabled evaluator or no gate at all: the model is pushed unconditionally.
        return results.Evaluation(evaluator_enabled=config.enabled, metrics=metrics, baseline_metrics=baselines,
                            threshold_metric=threshold.metric if threshold else None,
                            threshold_value=threshold.value if threshold else None,
                            actual_value=metrics.get(threshold.metric) if threshold else None,
                            passed=True, blessed=True, **against_baseline)
    if metric not in METRICS_FOR_MODEL_TYPE[spec.model_type]:
        log.warning("the gate metric is not computed for this model type", metric=metric, model_type=spec.model_type)
    passed = actual is not None
    if threshold is not None:
        passed = passed and threshold.passes(actual)
    if required is not None:  # "beats most-popular / predict-the-mean by at least X %"
        passed = passed and lift is not None and lift >= required
    if required_ease is not None:  # "within / above EASE by X %"; no EASE figure (catalog too big): not held
        passed = passed and (ease_value is None or (ease_lift is not None and ease_lift >= required_ease))
    return results.Evaluation(evaluator_enabled=True, metrics=metrics, baseline_metrics=baselines,
                        threshold_metric=metric, threshold_value=threshold.value if threshold else None,
                        actual_value=actual, passed=passed, blessed=passed, **against_baseline)


def is_blessed(blessing_uri: str) -> bool:
    return tf.io.gfile.exists(results.join(blessing_uri, BLESSED_FILE))


# --------------------------------------------------------------------------- TFX components


@tfx.dsl.components.component
def TrainyardEvaluator(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    transform_graph: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.TransformGraph],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    run_spec: tfx.dsl.components.Parameter[str],
) -> None:
    """Gate on the test split; writes the ModelBlessing and evaluation/evaluation_results.json."""
    spec = RunSpec.model_validate_json(run_spec)
    with log.bound(run_id=spec.run_id, attempt=spec.attempt, stage="Evaluate"):
        evaluation = evaluate_model(spec, examples.uri, results.join(model.uri, "Format-Serving"), transform_graph.uri)
        log.info("model evaluated", blessed=evaluation.blessed, metric=evaluation.threshold_metric,
                 actual_value=evaluation.actual_value, threshold_value=evaluation.threshold_value,
                 baseline_value=evaluation.baseline_value)
    text = evaluation.model_dump_json(indent=2)
    write_json(results.join(spec.artifacts_uri, results.EVALUATION_FILE), text)
    write_json(results.join(blessing.uri, BLESSED_FILE if evaluation.blessed else NOT_BLESSED_FILE), text)
    blessing.set_int_custom_property("blessed", int(evaluation.blessed))
    blessing.set_string_custom_property("current_model", model.uri)
    if evaluation.actual_value is not None:
        blessing.set_float_custom_property("actual_value", evaluation.actual_value)


@tfx.dsl.components.component
def TrainyardPusher(
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    pushed_model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.PushedModel],
    run_spec: tfx.dsl.components.Parameter[str],
    target: tfx.dsl.components.Parameter[str],
    project: tfx.dsl.components.Parameter[str],
    region: tfx.dsl.components.Parameter[str],
    serving_image: tfx.dsl.components.Parameter[str],
    local_registry_dir: tfx.dsl.components.Parameter[str],
) -> None:
    """Registers a blessed model (Vertex Model Registry or the local registry); skips a not-blessed one."""
    spec = RunSpec.model_validate_json(run_spec)
    with log.bound(run_id=spec.run_id, attempt=spec.attempt, stage="Push"):
        if not is_blessed(blessing.uri):
            log.info("the model is not blessed: kept, not registered", artifacts_uri=spec.artifacts_uri)
            pushed_model.set_int_custom_property("pushed", 0)
            return
        serving_model_uri = results.join(spec.artifacts_uri, results.SAVED_MODEL_DIR)
        if target == "vertex":
            entry = VertexRegistrar(project, region, serving_image).register(spec, serving_model_uri)
        else:
            entry = register_local(spec, serving_model_uri, local_registry_dir)
        log.info("model version registered", model=entry.model_resource_name, version=entry.model_version_id)
    write_json(results.join(spec.artifacts_uri, results.REGISTRY_FILE), entry.model_dump_json(indent=2))
    pushed_model.set_int_custom_property("pushed", 1)
    pushed_model.set_string_custom_property("pushed_destination", entry.model_resource_name)
    pushed_model.set_string_custom_property("pushed_version", entry.model_version_id)
