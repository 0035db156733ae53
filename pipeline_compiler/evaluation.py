"""The Evaluator's scoring, in pieces every evaluation path shares: the in-process Evaluator
(components.TrainyardEvaluator), a distributed one, and scoring another model (a champion) on the same
split all read raw batches (`raw_batches`), ask a serving signature for its answer
(`signature_top_ids`, `signature_scores`) and add them into a `Scores` accumulator, which merges
(so partial scores from workers combine) and yields the metrics the gate reads (`decide_blessing`).
The champion (champion.py finds it) is scored in the same pass over the test split as the challenger,
through its own serving signature, and the gate holds the challenger to it within a tolerance.

Both splits are read in batches, so memory does not grow with the test split (bench/scale.py measures it).
"""
# No `from __future__ import annotations`: kept like components.py, whose TFX signatures need real types.

from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import numpy as np
import scann  # noqa: F401 - registers ScaNN's TF ops: the exported index does not load in a fresh process without them
import tensorflow as tf

from pipeline_compiler.baselines import TrainInteractions, fit_ease
from pipeline_compiler.champion import Champion
from pipeline_compiler.modules import features as F
from shared import log
from shared.contract import results
from shared.domain import model_kinds
from shared.domain.run_config import LOWER_IS_BETTER, METRICS_FOR_MODEL_TYPE, RunSpec, gate_metric, lift_percent

RECALL_KS = (5, 10, 50, 100)
EVAL_BATCH_ROWS = 1024  # rows per batch the Evaluator holds: its memory does not grow with the splits


def raw_batches(examples_uri: str, split: str, columns: dict[str, tf.dtypes.DType],
                batch_size: Optional[int] = None) -> Iterator[dict[str, np.ndarray]]:
    """Raw examples of one split as dicts of rank-1 arrays (missing values become ''/0), a batch at a time."""
    batch_size = batch_size or EVAL_BATCH_ROWS
    files = tf.io.gfile.glob(results.join(examples_uri, f"Split-{split}/*"))
    if not files:
        raise FileNotFoundError(f"no examples in split {split!r} under {examples_uri}")
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size)
    for records in dataset:
        yield parse_records(records, columns)


def parse_records(records, columns: dict[str, tf.dtypes.DType]) -> dict[str, np.ndarray]:
    """Serialized tf.Examples (a tensor or list of bytes) as a dict of rank-1 arrays ('' / 0 when missing)."""
    spec = {name: tf.io.VarLenFeature(dtype) for name, dtype in columns.items()}
    parsed = tf.io.parse_example(tf.convert_to_tensor(records, tf.string), spec)
    rows = len(records)
    batch = {}
    for name, value in parsed.items():
        default = b"" if value.dtype == tf.string else value.dtype.as_numpy_dtype(0)
        dense = tf.sparse.to_dense(value, default_value=default).numpy()
        batch[name] = dense[:, 0] if dense.shape[1] else np.full(rows, default)
    return batch


def as_text(values: np.ndarray) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])


def raw_dtypes(transform_dir: str) -> dict[str, tf.dtypes.DType]:
    import tensorflow_transform as tft

    return {name: spec.dtype for name, spec in tft.TFTransformOutput(transform_dir).raw_feature_spec().items()}


def _signature_inputs(signature, batch: dict[str, np.ndarray]) -> dict[str, tf.Tensor]:
    """The batch's columns the signature declares (raw features in), as tensors of its dtypes."""
    return {name: tf.constant(batch[name], dtype=spec.dtype)
            for name, spec in signature.structured_input_signature[1].items()}


def signature_top_ids(signature, batch: dict[str, np.ndarray]) -> np.ndarray:
    """A retrieval signature's top-K item ids for each row, as text (rows × K): the model's own
    vocabulary maps its answer back to raw ids, so models trained on different vocabularies compare."""
    top_ids = signature(**_signature_inputs(signature, batch))["ids"].numpy()
    return np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v))(top_ids)


def signature_scores(signature, batch: dict[str, np.ndarray]) -> np.ndarray:
    """A ranking signature's predicted score for each row."""
    return signature(**_signature_inputs(signature, batch))["score"].numpy().astype(np.float64)


@dataclass
class Scores:
    """Running sums over test batches; `merge` combines partial sums, `metrics` reads them out."""
    hits: dict = field(default_factory=lambda: {k: 0 for k in RECALL_KS})
    squared: float = 0.0
    absolute: float = 0.0
    retrieval_rows: int = 0
    ranking_rows: int = 0

    def add_top_ids(self, top_text: np.ndarray, actual: np.ndarray) -> None:
        """Rows' top-K ids (text) against the items they actually had: recall@k for every k."""
        self.retrieval_rows += len(actual)
        for k in RECALL_KS:
            self.hits[k] += int(np.sum(np.any(top_text[:, :k] == actual[:, None], axis=1)))

    def add_ranks(self, ranks: np.ndarray) -> None:
        """Rows' rank of the actual item (0 = first): recall@k = rank < k."""
        self.retrieval_rows += len(ranks)
        for k in RECALL_KS:
            self.hits[k] += int(np.sum(ranks < k))

    def add_popular(self, actual: np.ndarray, most_popular: np.ndarray) -> None:
        """The same list (most-popular) for every row."""
        self.retrieval_rows += len(actual)
        for k in RECALL_KS:
            self.hits[k] += int(np.sum(np.isin(actual, most_popular[:k])))

    def add_predictions(self, predicted: np.ndarray, truth: np.ndarray) -> None:
        self.ranking_rows += len(truth)
        self.squared += float(np.sum((predicted - truth) ** 2))
        self.absolute += float(np.sum(np.abs(predicted - truth)))

    def merge(self, other: "Scores") -> "Scores":
        return Scores(hits={k: self.hits[k] + other.hits[k] for k in RECALL_KS},
                      squared=self.squared + other.squared, absolute=self.absolute + other.absolute,
                      retrieval_rows=self.retrieval_rows + other.retrieval_rows,
                      ranking_rows=self.ranking_rows + other.ranking_rows)

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.retrieval_rows:
            out.update({f"recall_at_{k}": self.hits[k] / self.retrieval_rows for k in RECALL_KS})
        if self.ranking_rows:
            out["test_rmse"] = float(np.sqrt(self.squared / self.ranking_rows))
            out["test_mae"] = self.absolute / self.ranking_rows
        return out


@dataclass
class ChampionScore:
    """The champion as the gate sees it: what was found, its metrics, or why it could not be scored."""
    champion: Optional[Champion] = None
    metrics: dict = field(default_factory=dict)
    error: Optional[str] = None


class _ChampionScoring:
    """The champion's signatures and running Scores; a failure at any step is kept as `error` and ends its
    scoring (the threshold alone decides then: the run never fails for its champion)."""

    def __init__(self, spec: RunSpec, find: Optional[Callable[[], Optional[Champion]]],
                 dtypes: dict[str, tf.dtypes.DType]):
        self.champion, self.error, self.retrieve, self.rank, self.scores = None, None, None, None, Scores()
        if find is None or not spec.evaluator_config.enabled or not spec.evaluator_config.compare_to_champion:
            return
        try:
            self.champion = find()
        except Exception as exc:  # noqa: BLE001 -- any lookup failure is reported on the run, not raised
            self.error = f"the champion could not be looked up: {exc}"
            return
        if self.champion is None:
            return
        kind = model_kinds.kind(spec.model_type)
        try:
            loaded = tf.saved_model.load(self.champion.artifact_uri)
            self.retrieve = loaded.signatures["serving_default"] if kind.retrieves else None
            self.rank = loaded.signatures[kind.rank_signature] if kind.ranks else None
        except Exception as exc:  # noqa: BLE001
            self._fail(f"could not be loaded from {self.champion.artifact_uri}: {exc}")
            return
        self._loaded = loaded  # the signatures hold only weak references to their SavedModel
        missing = sorted(self.columns() - set(dtypes))
        if missing:
            self._fail(f"its signature reads {', '.join(missing)}, which the test split lacks")

    def _fail(self, why: str) -> None:
        self.error = f"champion {self.champion.version} ({self.champion.source}) {why}"
        self.retrieve = self.rank = None

    @property
    def active(self) -> bool:
        return self.retrieve is not None or self.rank is not None

    def columns(self) -> set[str]:
        return {name for signature in (self.retrieve, self.rank) if signature is not None
                for name in signature.structured_input_signature[1]}

    def add(self, batch: dict[str, np.ndarray], actual: Optional[np.ndarray], truth: Optional[np.ndarray]) -> None:
        if not self.active:
            return
        try:
            if self.retrieve is not None:
                self.scores.add_top_ids(signature_top_ids(self.retrieve, batch), actual)
            if self.rank is not None:
                self.scores.add_predictions(signature_scores(self.rank, batch), truth)
        except Exception as exc:  # noqa: BLE001
            self._fail(f"could not score the test split: {exc}")

    def result(self) -> Optional[ChampionScore]:
        if self.champion is None and self.error is None:
            return None
        metrics = self.scores.metrics() if self.error is None else {}
        return ChampionScore(self.champion, metrics, self.error)


def evaluate_model(spec: RunSpec, examples_uri: str, serving_model_dir: str, transform_dir: str,
                   find_champion: Optional[Callable[[], Optional[Champion]]] = None) -> results.Evaluation:
    """Test-split metrics of the exported serving model, the baselines, the champion (`find_champion`
    finds it; scored on the same batches), and the blessing decision. The same steps as the Beam
    Evaluator's (evaluation_beam.py), in one process."""
    dtypes = raw_dtypes(transform_dir)
    baselines = fit_train_baselines(spec, examples_uri, dtypes)  # one streaming pass over train
    scorer = BatchScorer(spec, tf.saved_model.load(serving_model_dir), baselines)
    champion = _ChampionScoring(spec, find_champion, dtypes)
    model, popular, ease, count = Scores(), Scores(), Scores(), 0
    # The champion reads its own raw features: the challenger's, plus any its signature declares.
    columns = scored_columns(spec, baselines) | champion.columns()
    for batch in raw_batches(examples_uri, "test", {c: dtypes[c] for c in columns}):
        batch_model, batch_popular, batch_ease, rows = scorer.score(batch)
        model, popular, ease, count = model.merge(batch_model), popular.merge(batch_popular), ease.merge(batch_ease), count + rows
        champion.add(batch, *scorer.truths(batch))
    return evaluation_from_scores(spec, baselines, model, popular, ease, count, champion=champion.result())


def _gate_k(spec: RunSpec) -> int:
    """The k of the gate's recall@k (EASE's λ is chosen on it); 100 when the gate is not a recall."""
    metric = gate_metric(spec.model_type, spec.evaluator_config.blessing_threshold)
    return int(metric.rsplit("_", 1)[1]) if metric.startswith("recall_at_") else max(RECALL_KS)


def _num(value: Optional[float]) -> str:
    return "none" if value is None else f"{value:.4g}"


def _against_champion(metric: str, actual: Optional[float], score: Optional[ChampionScore], tolerance: float) -> dict:
    """The champion's fields of the Evaluation, with `holds`: None when there is no champion figure to hold
    the challenger to (none found, or it could not be scored)."""
    found = score.champion if score else None
    fields = dict(champion_model=found.model if found else None, champion_version=found.version if found else None,
                  champion_source=found.source if found else None, champion_error=score.error if score else None,
                  champion_metrics=score.metrics if score else {}, champion_tolerance=tolerance if score else None)
    value = score.metrics.get(metric) if score else None
    required = holds = None
    if value is not None:
        lower = metric in LOWER_IS_BETTER
        required = value * (1 + tolerance if lower else 1 - tolerance)
        holds = actual is not None and (actual <= required if lower else actual >= required)
    return {**fields, "champion_value": value, "champion_required_value": required, "holds": holds}


def decide_blessing(spec: RunSpec, metrics: dict[str, float], baselines: dict[str, float],
                    ease_metrics: Optional[dict[str, float]] = None, ease_lambda: Optional[float] = None,
                    ease_skipped: Optional[str] = None, champion: Optional[ChampionScore] = None) -> results.Evaluation:
    """Blessed when the model clears every gate the run sets: its threshold, its lifts over the baselines,
    and the champion's figure within the tolerance (`challenger >= champion x (1 - tolerance)`). With no
    champion, or one that could not be scored (said in `champion_error`), the other gates alone decide."""
    config = spec.evaluator_config
    threshold = config.blessing_threshold
    metric = gate_metric(spec.model_type, threshold)
    actual, baseline = metrics.get(metric), baselines.get(metric)
    lift = lift_percent(metric, actual, baseline) if actual is not None and baseline is not None else None
    required = config.min_lift_over_baseline_percent
    ease_value = (ease_metrics or {}).get(metric)
    ease_lift = lift_percent(metric, actual, ease_value) if actual is not None and ease_value is not None else None
    required_ease = config.min_lift_over_ease_percent
    against_champion = _against_champion(metric, actual, champion, config.champion_tolerance)
    holds_champion = against_champion.pop("holds")
    against_baseline = dict(baseline_value=baseline, lift_percent=lift, required_lift_percent=required,
                            ease_metrics=ease_metrics or {}, ease_lambda=ease_lambda, ease_skipped_reason=ease_skipped,
                            ease_value=ease_value, lift_over_ease_percent=ease_lift,
                            required_lift_over_ease_percent=required_ease, **against_champion)
    if not config.enabled or (threshold is None and required is None and required_ease is None
                              and holds_champion is None):
        # Disabled evaluator or no gate at all: the model is pushed unconditionally.
        return results.Evaluation(evaluator_enabled=config.enabled, metrics=metrics, baseline_metrics=baselines,
                            threshold_metric=threshold.metric if threshold else None,
                            threshold_value=threshold.value if threshold else None,
                            actual_value=metrics.get(threshold.metric) if threshold else None,
                            passed=True, blessed=True, reason="blessed: no gate" if config.enabled
                            else "blessed: the evaluator is disabled", **against_baseline)
    if metric not in METRICS_FOR_MODEL_TYPE[spec.model_type]:
        log.warning("the gate metric is not computed for this model type", metric=metric, model_type=spec.model_type)
    lower = metric in LOWER_IS_BETTER
    worse, better = (">", "≤") if lower else ("<", "≥")
    failed, held = [], []
    if actual is None:
        failed.append(f"{metric} was not computed")
    if threshold is not None and actual is not None:
        (held if threshold.passes(actual) else failed).append(
            f"{metric} {_num(actual)} {better if threshold.passes(actual) else worse} threshold {_num(threshold.value)}")
    if required is not None:  # "beats most-popular / predict-the-mean by at least X %"
        if lift is None or lift < required:
            failed.append(f"lift over the baseline {'unknown' if lift is None else f'{lift:+.1f}%'} < {required:g}%")
    if required_ease is not None:  # "within / above EASE by X %"; no EASE figure (catalog too big): not held
        if ease_value is not None and (ease_lift is None or ease_lift < required_ease):
            failed.append(f"lift over EASE {'unknown' if ease_lift is None else f'{ease_lift:+.1f}%'} "
                          f"< {required_ease:g}%")
    factor = f"{1 + config.champion_tolerance if lower else 1 - config.champion_tolerance:g}"
    if holds_champion is not None:
        words = (f"{metric} {_num(actual)} {better if holds_champion else worse} champion "
                 f"{_num(against_champion['champion_value'])} × {factor}")
        (held if holds_champion else failed).append(words)
    elif against_champion["champion_error"]:
        held.append(f"champion not scored ({against_champion['champion_error']}), the threshold alone decided")
    elif champion is None and config.compare_to_champion:
        held.append("no champion yet")
    passed = not failed
    reason = ("blessed: " + "; ".join(held)) if passed else ("not blessed: " + "; ".join(failed))
    return results.Evaluation(evaluator_enabled=True, metrics=metrics, baseline_metrics=baselines,
                        threshold_metric=metric, threshold_value=threshold.value if threshold else None,
                        actual_value=actual, passed=passed, blessed=passed, reason=reason, **against_baseline)


# ---------------------------------------------------------------- pieces a distributed Evaluator shares
# The same steps as evaluate_model's, as values a Beam job can ship to its workers: the baselines fitted
# in one streaming train pass (in the launcher), and a scorer that adds one test batch to the Scores.


@dataclass
class TrainBaselines:
    """What the one streaming train pass yields: most-popular's list, EASE (or why not), the label mean."""
    most_popular: list
    ease: Optional[object]
    ease_skipped: Optional[str]
    train_mean: float


def fit_train_baselines(spec: RunSpec, examples_uri: str, dtypes: dict[str, tf.dtypes.DType]) -> TrainBaselines:
    columns, label = spec.dataset.columns, F.label_column(spec)
    retrieval = model_kinds.kind(spec.model_type).retrieves
    train = TrainInteractions(spec.evaluator_config.ease_max_items if retrieval else 0)
    label_sum, label_count = 0.0, 0
    wanted = {columns.item_id, columns.user_id} | ({label} if label else set())
    for batch in raw_batches(examples_uri, "train", {c: dtypes[c] for c in wanted}):
        train.add(as_text(batch[columns.user_id]), as_text(batch[columns.item_id]))
        if label:
            label_sum += float(np.sum(batch[label].astype(np.float64)))
            label_count += len(batch[label])
    ease, skipped = fit_ease(train, _gate_k(spec)) if retrieval else (None, None)
    return TrainBaselines(train.most_popular(max(RECALL_KS)), ease, skipped,
                          label_sum / label_count if label_count else 0.0)


def scored_columns(spec: RunSpec, baselines: TrainBaselines) -> set[str]:
    return set(F.all_raw_columns(spec)) | ({spec.dataset.columns.user_id} if baselines.ease is not None else set())


class BatchScorer:
    """Adds test batches to three Scores (the model, most-popular / predict-the-mean, EASE)."""

    def __init__(self, spec: RunSpec, loaded, baselines: TrainBaselines):
        kind = model_kinds.kind(spec.model_type)
        self.columns, self.label, self.baselines = spec.dataset.columns, F.label_column(spec), baselines
        self.retrieve = loaded.signatures["serving_default"] if kind.retrieves else None
        self.rank = loaded.signatures[kind.rank_signature] if kind.ranks else None
        self._loaded = loaded  # the signatures hold only weak references to their SavedModel

    def truths(self, batch: dict[str, np.ndarray]) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """The batch's actual items (retrieval) and labels (ranking), as every scored model is held to them."""
        return (as_text(batch[self.columns.item_id]) if self.retrieve is not None else None,
                batch[self.label].astype(np.float64) if self.rank is not None else None)

    def score(self, batch: dict[str, np.ndarray]) -> tuple["Scores", "Scores", "Scores", int]:
        model, popular, ease = Scores(), Scores(), Scores()
        actual, truth = self.truths(batch)
        if self.retrieve is not None:
            model.add_top_ids(signature_top_ids(self.retrieve, batch), actual)
            popular.add_popular(actual, np.array(self.baselines.most_popular))
            if self.baselines.ease is not None:
                ease.add_ranks(self.baselines.ease.ranks(as_text(batch[self.columns.user_id]), actual))
        if self.rank is not None:
            model.add_predictions(signature_scores(self.rank, batch), truth)
            popular.add_predictions(np.full(len(truth), self.baselines.train_mean), truth)
        return model, popular, ease, len(batch[self.columns.item_id])


def evaluation_from_scores(spec: RunSpec, baselines: TrainBaselines, model: "Scores", popular: "Scores",
                           ease: "Scores", count: int, champion: Optional[ChampionScore] = None) -> results.Evaluation:
    metrics = model.metrics()
    metrics["test_examples"] = float(count)
    return decide_blessing(spec, metrics, popular.metrics(), ease.metrics(),
                           ease_lambda=baselines.ease.lam if baselines.ease is not None else None,
                           ease_skipped=baselines.ease_skipped, champion=champion)
