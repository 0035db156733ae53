"""The data check after SchemaGen in a real local TFX pipeline (ExampleGen -> StatisticsGen -> SchemaGen):
messy data fails the run at SchemaGen, before Transform reads a row, with every problem named."""
import json
import os

import pytest

pytest.importorskip("tfx")

from pipeline_compiler.demo_data import generate_transactions  # noqa: E402
from pipeline_compiler.root_cause import root_cause  # noqa: E402
from shared.contract.results import DATA_CHECK_FILE  # noqa: E402
from tests.unit.pipeline_compiler.tiny_data import tiny_spec  # noqa: E402


def _write_messy_csv(path: str) -> None:
    raw = generate_transactions(rows=400, customers=40, products=50, months=2, seed=5)
    columns = ["customer_id", "product_id", "timestamp", "price", "category", "segment", "city", "subcategory",
               "rating", "notes"]
    with open(path, "w") as handle:
        handle.write(",".join(columns) + "\n")
        for i in range(len(raw["timestamp"])):
            price = "V" if i in (7, 123, 301) else "n/a" if i == 55 else f"{raw['price'][i]:.2f}"
            rating = "" if i % 50 == 3 else str(1 + i % 5)
            row = [raw["customer_id"][i], raw["product_id"][i], raw["timestamp"][i], price, raw["category"][i],
                   raw["segment"][i], raw["city"][i], raw["subcategory"][i], rating, ""]
            handle.write(",".join(str(v) for v in row) + "\n")


def test_messy_data_fails_at_schemagen_naming_columns_problems_and_values(tmp_path):
    from pipeline_compiler import run_local

    data = tmp_path / "data.csv"
    _write_messy_csv(str(data))
    spec = tiny_spec(str(tmp_path), model_type="ranking")
    dataset = spec.dataset.model_copy(update={
        "source": spec.dataset.source.model_copy(update={"uri": str(data)}),
        "columns": spec.dataset.columns.model_copy(update={"quantity": None, "rating": "rating"})})
    features = [f.model_dump() for f in spec.feature_config.features]
    features[2] = {"name": "notes", "column": "notes", "side": "query", "transform": {"type": "vocabulary"}}
    features.append({"name": "brand", "column": "brand", "side": "candidate", "transform": {"type": "vocabulary"}})
    feature_config = spec.feature_config.model_validate({**spec.feature_config.model_dump(), "features": features})
    spec = spec.model_copy(update={"dataset": dataset, "feature_config": feature_config})

    with pytest.raises(Exception) as caught:
        run_local(spec, metadata_path=str(tmp_path / "metadata.sqlite"))
    message = root_cause(caught.value)
    assert message.startswith("DataCheckError: the data does not fit"), message
    assert "column 'brand' (feature 'brand', vocabulary) is not in the data" in message, message
    assert "column 'notes' (feature 'notes', vocabulary) is empty" in message, message
    assert "column 'price' (feature 'price', normalize) needs numbers, but 4 of its 400 values" in message, message
    assert "'V', 'n/a'" in message, message
    assert "label column 'rating' has no value in 8 of its 400 rows" in message, message
    with open(os.path.join(spec.artifacts_uri, DATA_CHECK_FILE)) as handle:
        assert len(json.load(handle)["problems"]) == 5  # brand, notes, price (normalize), price (bucketize), rating
    assert not list((tmp_path / "pipeline_root").glob("Transform/*")), "Transform ran"
