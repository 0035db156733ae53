"""Messy data gets a clear answer (issue 16): a numeric transform over a column holding a few
non-numeric values fails Transform with a message naming the column, the feature, the problem and
the bad values, and the error_message the local runner records is that root cause, not TensorFlow's
`InvalidArgumentError: Graph execution error:` first line."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from pipeline_compiler.demo_data import generate_transactions  # noqa: E402
from pipeline_compiler.root_cause import root_cause  # noqa: E402
from tests.unit.pipeline_compiler.tiny_data import run_tiny_transform  # noqa: E402


def test_root_cause_of_a_graph_execution_error_names_the_op_and_its_message():
    @tf.function
    def parse(values):
        return tf.strings.to_number(values, tf.float32)

    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        parse(tf.constant(["1.5", "V"]))
    assert str(caught.value).startswith("Graph execution error:")  # what the runs used to show, alone
    try:
        raise RuntimeError("component Transform failed") from caught.value
    except RuntimeError as wrapped:
        message = root_cause(wrapped)
    assert message.startswith("InvalidArgumentError: StringToNumberOp could not correctly convert string: V")
    assert "(op StringToNumber)" in message and "Graph execution error" not in message and "File " not in message


def test_root_cause_keeps_a_plain_exception_whole():
    assert root_cause(KeyError("column 'x' is configured but not in the data")) == \
        "KeyError: \"column 'x' is configured but not in the data\""


def test_a_bucketized_column_with_text_values_fails_transform_naming_column_and_values(tmp_path):
    raw = generate_transactions(rows=400, customers=40, products=50, months=2, seed=3)
    price = raw["price"].astype(str).astype(object)
    price[[7, 123]] = "V"
    raw["price"] = price.astype(str)
    with pytest.raises(Exception) as caught:
        run_tiny_transform(str(tmp_path), raw=raw)
    message = root_cause(caught.value)
    assert "column 'price'" in message and ("bucketize" in message or "normalize" in message), message
    assert "needs numbers" in message and "V" in message, message
    assert "Graph execution error" not in message, message


def test_text_columns_that_hold_numbers_still_transform(tmp_path):
    raw = generate_transactions(rows=300, customers=30, products=40, months=2, seed=4)
    raw["price"] = np.array([f"{p:.2f}" for p in raw["price"]])
    data = run_tiny_transform(str(tmp_path), raw=raw)
    assert data.transform_output_dir


def test_on_non_numeric_missing_gives_text_values_the_column_mean(tmp_path):
    from tests.unit.pipeline_compiler.tiny_data import tiny_spec

    raw = generate_transactions(rows=300, customers=30, products=40, months=2, seed=6)
    price = np.array([f"{p:.2f}" for p in raw["price"]], dtype=object)
    price[[5, 17]] = "V"
    raw["price"] = price.astype(str)
    spec = tiny_spec(str(tmp_path))
    features = [f.model_dump() for f in spec.feature_config.features]
    for feature in features:
        if feature["column"] == "price":
            feature["transform"]["on_non_numeric"] = "missing"
    spec = spec.model_copy(update={"feature_config": spec.feature_config.model_validate(
        {**spec.feature_config.model_dump(), "features": features})})
    data = run_tiny_transform(str(tmp_path), raw=raw, spec=spec)

    import tensorflow_transform as tft

    output = tft.TFTransformOutput(data.transform_output_dir)
    numbers = np.array([float(p) for p in raw["price"] if p != "V"])
    transformed = output.transform_raw_features(
        {name: tf.constant(raw[name][:20]) for name in output.raw_feature_spec()}, drop_unused_features=True)
    z = transformed["price"].numpy()
    assert np.isfinite(z).all()
    # log1p(mean) standardized: both 'V' rows get the same value, the one of the mean of the column's numbers
    assert z[5] == pytest.approx(z[17]) and abs(z[5]) < 1.0, z
    assert numbers.size == 298
