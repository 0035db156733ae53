"""preprocessing_fn on tiny demo data with tft_beam: the transformed schema and values."""
import calendar
import math
from datetime import datetime, timezone

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tft = pytest.importorskip("tensorflow_transform")

from pipeline_compiler.modules import features as F  # noqa: E402
from pipeline_compiler.modules.transform import cyclical_encoding, epoch_seconds  # noqa: E402
from tests.unit.pipeline_compiler.tiny_data import tiny_spec  # noqa: E402


def _read_all(tiny):
    output = tft.TFTransformOutput(tiny.transform_output_dir)
    spec = output.transformed_feature_spec()
    columns = {}
    for pattern in (tiny.train_pattern, tiny.eval_pattern):
        files = tf.io.gfile.glob(pattern)
        for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(100_000):
            for key, value in tf.io.parse_example(batch, spec).items():
                columns.setdefault(key, []).append(value.numpy())
    return output, {k: np.concatenate(v) for k, v in columns.items()}


def test_transformed_schema_has_every_configured_output(tiny_transform):
    output, _ = _read_all(tiny_transform)
    spec = tiny_spec(tiny_transform.workdir)
    expected = {F.USER_ID_KEY, F.ITEM_ID_KEY, F.TIMESTAMP_KEY, F.LABEL_KEY}
    for feature in spec.feature_config.features:
        expected.update(F.output_keys(feature))
    feature_spec = output.transformed_feature_spec()
    assert set(feature_spec) == expected
    assert feature_spec["customer_id"].dtype == tf.int64
    assert feature_spec["price"].dtype == tf.float32
    assert feature_spec["order_time_hour_of_day_sin"].dtype == tf.float32
    assert feature_spec[F.ITEM_ID_KEY].dtype == tf.string


def test_transformed_values(tiny_transform):
    output, values = _read_all(tiny_transform)
    raw = tiny_transform.raw  # rows are in the same (time) order: train then eval
    # vocabulary: one id per distinct customer, all within the vocabulary (+1 OOV bucket)
    customers = len(set(raw["customer_id"]))
    assert output.vocabulary_size_by_name("customer_id") == customers
    assert values["customer_id"].min() >= 0 and values["customer_id"].max() < customers + 1
    assert len(set(values["customer_id"])) == customers
    # z-score of log1p(price) over the analyzed data
    assert abs(values["price"].mean()) < 1e-3
    assert abs(values["price"].std() - 1.0) < 1e-2
    # bucketize: 8 buckets
    assert set(values["price_bucket"]) <= set(range(9))
    assert len(set(values["price_bucket"])) >= 6
    # cross and hashing stay in their bucket ranges
    assert values["segment_x_city"].max() < 200 and values["city"].max() < 64
    # cyclical: a point on the unit circle matching the raw timestamp
    np.testing.assert_allclose(values["order_time_month_sin"] ** 2 + values["order_time_month_cos"] ** 2, 1.0, atol=1e-5)
    hours = (raw["timestamp"] % 86400) / 3600
    np.testing.assert_allclose(values["order_time_hour_of_day_sin"], np.sin(2 * np.pi * hours / 24), atol=1e-4)
    # pass-through keys
    np.testing.assert_array_equal(values[F.TIMESTAMP_KEY], raw["timestamp"])
    assert [v.decode() for v in values[F.ITEM_ID_KEY][:5]] == list(raw["product_id"][:5])
    np.testing.assert_allclose(values[F.LABEL_KEY], raw["quantity"].astype(np.float32))


def test_epoch_seconds_parses_iso_8601_and_passes_integers():
    stamps = ["2024-03-15T13:45:10", "1999-12-31 23:59:59", "2024-02-29T00:00:00"]
    expected = [calendar.timegm(datetime.fromisoformat(s.replace(" ", "T")).timetuple()) for s in stamps]
    assert list(epoch_seconds(tf.constant(stamps)).numpy()) == expected
    assert list(epoch_seconds(tf.constant([5, 7], tf.int64)).numpy()) == [5, 7]


@pytest.mark.parametrize("stamp", ["2024-01-01T08:00:00", "2023-07-19T23:30:00", "2020-12-31T12:00:00"])
def test_cyclical_components_match_the_calendar(stamp):
    moment = datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc)
    seconds = tf.constant([int(moment.timestamp())], tf.int64)
    for component, position, period in (
        ("hour_of_day", moment.hour + moment.minute / 60, 24),
        ("day_of_week", moment.weekday(), 7),
        ("month", moment.month - 1, 12),
    ):
        sin, cos = cyclical_encoding(seconds, component)
        angle = 2 * math.pi * position / period
        assert sin.numpy()[0] == pytest.approx(math.sin(angle), abs=1e-5), component
        assert cos.numpy()[0] == pytest.approx(math.cos(angle), abs=1e-5), component
