"""TFX Transform module: one `preprocessing_fn` driven by the run's FeatureConfig.

The RunSpec arrives as JSON in `custom_config["run_spec"]`. Analyzers (vocabularies, means, quantiles)
see only the splits the pipeline analyzes (train + eval), never test. Outputs are rank-1 tensors:
one per configured feature (two per cyclical component), plus the pass-through keys of
`features.py` (`__item_id__`, `__user_id__`, `__timestamp__`, `__label__`).
"""
from __future__ import annotations

import math
from typing import Any, Optional

import tensorflow as tf
import tensorflow_transform as tft

from pipeline_compiler.modules import features as F


def _dense(value: Any, default: Any) -> tf.Tensor:
    """Sparse or [batch, 1] inputs (as the inferred schema gives them) -> dense rank-1 tensors."""
    if isinstance(value, tf.SparseTensor):
        value = tf.sparse.to_dense(
            tf.SparseTensor(value.indices, value.values, [value.dense_shape[0], 1]), default_value=default
        )
    return tf.reshape(value, [-1])


def _as_string(value: tf.Tensor) -> tf.Tensor:
    return value if value.dtype == tf.string else tf.strings.as_string(value)


BAD_VALUES_SHOWN = 5


def _as_float(value: tf.Tensor, what: str = "", coerce: bool = False) -> tf.Tensor:
    """Numbers from a numeric column, or from a text column whose every value parses as a number.

    A text value that is not a number fails the run here with a message naming `what` (the column
    and its use) and the first few bad values of the batch, instead of StringToNumber's own error
    (the data check after SchemaGen names them first, from the statistics; this is the backstop for
    a value too rare to be in them). An empty text value is a missing one: 0, as in a numeric column.
    With `coerce` (on_non_numeric "missing"), a value that is not a number is missing instead and
    takes the mean of the column's numbers (analyzed on train + eval).
    """
    if value.dtype != tf.string:
        return tf.cast(value, tf.float32)
    is_number = tf.strings.regex_full_match(value, F.NUMBER)
    number = tf.strings.to_number(tf.where(is_number, value, "0"), tf.float32)
    if coerce:
        weight = tf.cast(is_number, tf.float32)
        mean = tft.sum(number * weight) / tf.maximum(tft.sum(weight), 1.0)
        return tf.where(is_number, number, mean)
    bad = tf.boolean_mask(value, tf.logical_not(tf.logical_or(is_number, tf.equal(value, ""))))
    check = tf.debugging.Assert(tf.equal(tf.size(bad), 0), summarize=BAD_VALUES_SHOWN, data=[
        f"{what or 'a numeric input'} needs numbers, but the column holds text that is not a number "
        "(the data's schema types it as a string); non-numeric values:", bad[:BAD_VALUES_SHOWN]])
    with tf.control_dependencies([check]):
        return tf.identity(number)


def _days_from_civil(year: tf.Tensor, month: tf.Tensor, day: tf.Tensor) -> tf.Tensor:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), int64 in and out."""
    year = year - tf.cast(month <= 2, tf.int64)
    era = tf.math.floordiv(year, 400)
    year_of_era = year - era * 400
    shifted_month = tf.where(month > 2, month - 3, month + 9)
    day_of_year = (153 * shifted_month + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _month_from_days(days: tf.Tensor) -> tf.Tensor:
    """Month (1..12) of a day count since 1970-01-01 (inverse of `_days_from_civil`)."""
    z = days + 719468
    era = tf.math.floordiv(z, 146097)
    day_of_era = z - era * 146097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    return tf.where(shifted_month < 10, shifted_month + 3, shifted_month - 9)


def epoch_seconds(value: tf.Tensor) -> tf.Tensor:
    """Seconds since the epoch from integer seconds or an ISO 8601 'YYYY-MM-DD[T ]HH:MM:SS' string (UTC)."""
    if value.dtype != tf.string:
        return tf.cast(value, tf.int64)

    def part(start: int, length: int) -> tf.Tensor:
        return tf.strings.to_number(tf.strings.substr(value, start, length), tf.int64)

    days = _days_from_civil(part(0, 4), part(5, 2), part(8, 2))
    return days * 86400 + part(11, 2) * 3600 + part(14, 2) * 60 + part(17, 2)


def cyclical_encoding(seconds: tf.Tensor, component: str) -> tuple[tf.Tensor, tf.Tensor]:
    days = tf.math.floordiv(seconds, 86400)
    if component == "hour_of_day":
        position, period = tf.math.floormod(seconds, 86400) / 3600, 24.0
    elif component == "day_of_week":
        position, period = tf.math.floormod(days + 3, 7), 7.0  # 1970-01-01 was a Thursday; Monday = 0
    elif component == "month":
        position, period = _month_from_days(days) - 1, 12.0
    else:
        raise ValueError(f"unknown cyclical component {component!r}")
    angle = 2.0 * math.pi * tf.cast(position, tf.float32) / period
    return tf.sin(angle), tf.cos(angle)


def _transform_feature(feature, raw: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    transform = feature.transform
    kind = transform.type
    if kind == "cross":
        left, right = (_as_string(raw[c]) for c in transform.columns)
        crossed = tf.strings.join([left, right], separator="_x_")
        return {feature.name: tf.strings.to_hash_bucket_fast(crossed, transform.hash_buckets)}
    value = raw[feature.column]
    if kind == "vocabulary":
        return {
            feature.name: tft.compute_and_apply_vocabulary(
                _as_string(value),
                top_k=transform.max_tokens,
                num_oov_buckets=transform.num_oov_buckets,
                vocab_filename=feature.name,
            )
        }
    if kind == "hashing":
        return {feature.name: tf.strings.to_hash_bucket_fast(_as_string(value), transform.num_buckets)}
    if kind == "normalize":
        number = _as_float(value, f"column {feature.column!r} (feature {feature.name!r}, normalize)",
                           coerce=transform.on_non_numeric == "missing")
        if transform.log1p:
            number = tf.math.log1p(tf.maximum(number, 0.0))
        return {feature.name: tft.scale_to_z_score(number)}
    if kind == "bucketize":
        number = _as_float(value, f"column {feature.column!r} (feature {feature.name!r}, bucketize)",
                           coerce=transform.on_non_numeric == "missing")
        return {feature.name: tft.bucketize(number, transform.num_buckets)}
    if kind == "cyclical":
        seconds = epoch_seconds(value)
        outputs = {}
        for component in transform.components:
            sin, cos = cyclical_encoding(seconds, component)
            outputs[f"{feature.name}_{component}_sin"] = sin
            outputs[f"{feature.name}_{component}_cos"] = cos
        return outputs
    raise ValueError(f"unknown transform type {kind!r}")


def build_preprocessing_fn(spec):
    """The preprocessing function of one RunSpec (tests call this directly with tft_beam)."""
    label = F.label_column(spec)
    columns = spec.dataset.columns

    def preprocessing_fn(inputs: dict[str, Any]) -> dict[str, tf.Tensor]:
        raw: dict[str, tf.Tensor] = {}
        for name in F.all_raw_columns(spec):
            if name not in inputs:
                raise KeyError(f"column {name!r} is configured but not in the data ({sorted(inputs)})")
            value = inputs[name]
            dtype = value.dtype
            raw[name] = _dense(value, "" if dtype == tf.string else tf.zeros([], dtype))
        outputs: dict[str, tf.Tensor] = {
            F.USER_ID_KEY: _as_string(raw[columns.user_id]),
            F.ITEM_ID_KEY: _as_string(raw[columns.item_id]),
            F.TIMESTAMP_KEY: epoch_seconds(raw[columns.timestamp]),
        }
        if label:
            outputs[F.LABEL_KEY] = _as_float(raw[label], f"label column {label!r}")
        for feature in spec.feature_config.features:
            outputs.update(_transform_feature(feature, raw))
        return outputs

    return preprocessing_fn


def preprocessing_fn(inputs: dict[str, Any], custom_config: Optional[dict[str, Any]] = None) -> dict[str, tf.Tensor]:
    """TFX entry point: Transform passes its custom_config (holding the RunSpec) as the second argument."""
    spec = F.run_spec_from_custom_config(custom_config)
    return build_preprocessing_fn(spec)(inputs)
