"""The Evaluator reads both splits a batch at a time (issue 25: memory bounded by design): the same
figures whatever the batch size, never more than a batch of rows at once, and the baselines beside the
model's recall: most-popular, and EASE where the catalog fits (within evaluator_config.ease_max_items)."""
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from pipeline_compiler import evaluation as components  # noqa: E402
from pipeline_compiler.demo_data import generate_transactions  # noqa: E402
from tests.unit.pipeline_compiler.tiny_data import tiny_spec  # noqa: E402

REAL_BATCHES = components.raw_batches
TOP = [f"P{p:05d}" for p in range(100)]  # the fake model's answer for everyone


def _example(row):
    feature = {}
    for name, value in row.items():
        if isinstance(value, (str, np.str_)):
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode()]))
        elif isinstance(value, (float, np.floating)):
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
        else:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.fixture(scope="module")
def evaluation_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluator")
    data = generate_transactions(rows=1200, customers=60, products=150, months=2, seed=5)
    cut = 1000
    for split, rows in (("train", range(cut)), ("test", range(cut, 1200))):
        os.makedirs(root / "examples" / f"Split-{split}")
        writer_path = str(root / "examples" / f"Split-{split}" / "data.gz")
        with tf.io.TFRecordWriter(writer_path, options="GZIP") as writer:
            for i in rows:
                writer.write(_example({name: values[i] for name, values in data.items()}))

    class Fixed(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="customer_id")])
        def serve(self, customer_id):
            return {"ids": tf.tile(tf.constant([TOP]), [tf.shape(customer_id)[0], 1])}

    model = Fixed()
    tf.saved_model.save(model, str(root / "model"), signatures={"serving_default": model.serve})
    dtypes = {name: tf.string if values.dtype.kind == "U" else tf.float32 if values.dtype.kind == "f" else tf.int64
              for name, values in data.items()}
    test_items = data["product_id"][cut:]
    return root, dtypes, data, cut, test_items


def _evaluate(root, dtypes, monkeypatch, batch_rows, **evaluator):
    monkeypatch.setattr(components, "raw_dtypes", lambda transform_dir: dtypes)
    monkeypatch.setattr(components, "EVAL_BATCH_ROWS", batch_rows)
    seen = []

    def spy(*args, **kwargs):
        for batch in REAL_BATCHES(*args, **kwargs):
            seen.append(max(len(v) for v in batch.values()))
            yield batch

    monkeypatch.setattr(components, "raw_batches", spy)
    spec = tiny_spec(str(root), evaluator_config={"enabled": True, **evaluator})
    return components.evaluate_model(spec, str(root / "examples"), str(root / "model"), "unused"), seen


def test_batches_change_nothing_but_how_much_is_held(evaluation_inputs, monkeypatch):
    root, dtypes, data, cut, test_items = evaluation_inputs
    small, seen_small = _evaluate(root, dtypes, monkeypatch, 7)
    large, seen_large = _evaluate(root, dtypes, monkeypatch, 5000)
    assert max(seen_small) <= 7 and len(seen_small) >= 1200 // 7  # never more than a batch in memory
    assert len(seen_large) == 2  # one batch per split
    assert small.metrics == pytest.approx(large.metrics) and small.baseline_metrics == pytest.approx(large.baseline_metrics)
    assert small.ease_metrics == pytest.approx(large.ease_metrics) and small.ease_lambda == large.ease_lambda
    # The fixed model's recall@k is the share of test rows whose item is among its first k answers.
    for k in components.RECALL_KS:
        assert small.metrics[f"recall_at_{k}"] == pytest.approx(np.mean(np.isin(test_items, TOP[:k])))
    items, counts = np.unique(data["product_id"][:cut], return_counts=True)
    top = items[np.argsort(-counts, kind="stable")][:10]
    # most-popular counted in one streaming pass: ties may order differently, so compare the top's counts
    assert small.baseline_metrics["recall_at_10"] >= np.mean(np.isin(test_items, top)) - 0.05
    assert small.metrics["test_examples"] == 200


def test_ease_is_reported_beside_most_popular_and_may_gate(evaluation_inputs, monkeypatch):
    root, dtypes, *_ = evaluation_inputs
    evaluation, _ = _evaluate(root, dtypes, monkeypatch, 64, min_lift_over_ease_percent=0)
    assert set(evaluation.ease_metrics) == {f"recall_at_{k}" for k in components.RECALL_KS}
    assert evaluation.ease_lambda > 0 and evaluation.ease_skipped_reason is None
    assert evaluation.ease_value == evaluation.ease_metrics["recall_at_100"]
    assert evaluation.lift_over_ease_percent == pytest.approx(
        100 * (evaluation.actual_value - evaluation.ease_value) / evaluation.ease_value)
    # The planted preferences are what EASE learns and the fixed list ignores: the gate holds it back.
    assert evaluation.ease_value > evaluation.actual_value and not evaluation.blessed
    assert evaluation.required_lift_over_ease_percent == 0


def test_a_catalog_over_the_limit_skips_ease_and_says_why(evaluation_inputs, monkeypatch):
    root, dtypes, *_ = evaluation_inputs
    evaluation, _ = _evaluate(root, dtypes, monkeypatch, 64, ease_max_items=20, min_lift_over_ease_percent=0)
    assert evaluation.ease_metrics == {} and "more than 20 items" in evaluation.ease_skipped_reason
    assert evaluation.blessed  # the EASE requirement is not held without an EASE figure


def test_partial_scores_merge_to_the_whole():
    """Scores from parts of the test split (workers of a distributed Evaluator) merge to the one-pass figures."""
    rng = np.random.default_rng(3)
    actual = rng.choice(TOP + ["other"], 500)
    top = np.tile(np.array(TOP), (500, 1))
    whole, first, second = components.Scores(), components.Scores(), components.Scores()
    whole.add_top_ids(top, actual)
    first.add_top_ids(top[:123], actual[:123])
    second.add_top_ids(top[123:], actual[123:])
    truth, predicted = rng.normal(size=500), rng.normal(size=500)
    whole.add_predictions(predicted, truth)
    first.add_predictions(predicted[:123], truth[:123])
    second.add_predictions(predicted[123:], truth[123:])
    assert first.merge(second).metrics() == pytest.approx(whole.metrics())
    assert whole.metrics()["recall_at_5"] == pytest.approx(np.mean(np.isin(actual, TOP[:5])))
    assert whole.metrics()["test_rmse"] == pytest.approx(np.sqrt(np.mean((predicted - truth) ** 2)))
