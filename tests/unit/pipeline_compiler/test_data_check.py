"""The data check's pure functions (pipeline_compiler/data_check.py): statistics protos in, problems and
coercions out. Issue 16: messy data fails with the column, the problem and a few bad values."""
import pytest
from tensorflow_metadata.proto.v0 import statistics_pb2 as S

from pipeline_compiler import data_check as D
from pipeline_compiler.demo_data import demo_run_spec
from shared.contract.results import DataCoercion

ROWS = 1000


def _numeric(name, with_value=ROWS, kind=S.FeatureNameStatistics.FLOAT):
    feature = S.FeatureNameStatistics(type=kind)
    feature.path.step.append(name)
    feature.num_stats.common_stats.num_non_missing = ROWS
    feature.num_stats.common_stats.tot_num_values = with_value
    feature.num_stats.common_stats.max_num_values = 1
    return feature


def _text(name, values: dict, unique=None, with_value=None):
    feature = S.FeatureNameStatistics(type=S.FeatureNameStatistics.STRING)
    feature.path.step.append(name)
    common = feature.string_stats.common_stats
    common.num_non_missing = ROWS
    common.tot_num_values = sum(values.values()) if with_value is None else with_value
    common.max_num_values = 1
    feature.string_stats.unique = len(values) if unique is None else unique
    for label, count in sorted(values.items(), key=lambda kv: -kv[1]):
        feature.string_stats.rank_histogram.buckets.add(label=label, sample_count=count)
    return feature


def _stats(*features, rows=ROWS):
    stats = S.DatasetFeatureStatisticsList()
    dataset = stats.datasets.add(num_examples=rows)
    for feature in features:
        dataset.features.add().CopyFrom(feature)
    return stats


def _good_columns(**replace):
    columns = {
        "customer_id": _text("customer_id", {f"c{i}": ROWS // 10 for i in range(10)}),
        "product_id": _text("product_id", {f"p{i}": ROWS // 10 for i in range(10)}),
        "timestamp": _numeric("timestamp", kind=S.FeatureNameStatistics.INT),
        "quantity": _numeric("quantity", kind=S.FeatureNameStatistics.INT),
        "segment": _text("segment", {"a": 600, "b": 400}),
        "city": _text("city", {"x": 500, "y": 500}),
        "category": _text("category", {"k": 1000}),
        "subcategory": _numeric("subcategory", kind=S.FeatureNameStatistics.INT),
        "price": _numeric("price"),
    }
    columns.update(replace)
    return [feature for feature in columns.values() if feature is not None]


def _spec(model_type="retrieval", **feature_changes):
    spec = demo_run_spec("data.csv", "/tmp/a", "/tmp/p", model_type=model_type)
    if not feature_changes:
        return spec
    features = [f.model_dump() for f in spec.feature_config.features]
    for feature in features:
        if feature["name"] in feature_changes:
            feature["transform"].update(feature_changes[feature["name"]])
    return spec.model_copy(update={"feature_config": spec.feature_config.model_validate(
        {**spec.feature_config.model_dump(), "features": features})})


def _check(spec, *features, splits=("train",)):
    return D.check(spec, D.facts_from_statistics({split: _stats(*features) for split in splits}))


def test_clean_data_passes():
    assert _check(_spec(), *_good_columns()).model_dump() == {"problems": [], "coercions": [], "rows_per_split": {}}


def test_rows_per_split_are_statistics_gens_counts():
    def split(rows):
        return S.DatasetFeatureStatisticsList(datasets=[S.DatasetFeatureStatistics(num_examples=rows)])

    assert D.rows_per_split({"train": split(800), "eval": split(100), "test": split(120)}) == {
        "train": 800, "eval": 100, "test": 120}


def test_a_missing_column_is_named_with_the_columns_there_are_and_a_close_match():
    result = _check(_spec(), *_good_columns(category=None, catgory=_text("catgory", {"k": ROWS})))
    assert result.problems == [
        "column 'category' (feature 'category', vocabulary) is not in the data (did you mean 'catgory'?); the data's "
        "columns are: catgory, city, customer_id, price, product_id, quantity, segment, subcategory, timestamp"]
    with pytest.raises(D.DataCheckError, match="1 problem\\): column 'category'"):
        D.raise_problems(result)


def test_a_vocabulary_over_an_empty_column_fails():
    result = _check(_spec(), *_good_columns(segment=_text("segment", {}, with_value=0)))
    # segment is read by its vocabulary and by the cross: one problem per column
    assert result.problems == ["column 'segment' (feature 'segment', vocabulary) is empty: none of its 1,000 rows "
                               "has a value"]


def test_a_numeric_transform_over_text_names_the_bad_values_most_frequent_first():
    prices = {f"{p}.99": 9 for p in range(100)} | {"V": 15, "n/a": 3, " ": 2}  # blank: missing, not bad
    result = _check(_spec(), *_good_columns(price=_text("price", prices)))
    assert result.problems[0] == (
        "column 'price' (feature 'price', normalize) needs numbers, but 18 of its 1,000 values are text that is not "
        "a number: 'V', 'n/a'; fix the data, or set the normalize transform's on_non_numeric to \"missing\" to "
        "treat them as missing")
    assert result.problems[1].startswith("column 'price' (feature 'price_bucket', bucketize) needs numbers")


def test_a_count_from_a_truncated_histogram_is_a_lower_bound():
    result = _check(_spec(), *_good_columns(price=_text("price", {"1.5": 900, "V": 2}, unique=5000)))
    assert "needs numbers, but at least 2 of its 1,000 values" in result.problems[0]


def test_text_that_holds_only_numbers_passes():
    assert _check(_spec(), *_good_columns(price=_text("price", {"1.50": 500, " 2e3 ": 300, "-.5": 200}))).problems == []


def test_on_non_numeric_missing_turns_the_failure_into_a_counted_coercion():
    spec = _spec(price={"on_non_numeric": "missing"}, price_bucket={"on_non_numeric": "missing"})
    prices = {"1.5": 980, "V": 15, "n/a": 5}
    result = _check(spec, *_good_columns(price=_text("price", prices)), splits=("train", "eval"))
    assert result.problems == []
    assert [c.model_dump(exclude={"warning"}) for c in result.coercions] == [
        {"column": "price", "feature": "price", "transform": "normalize", "count": 40, "rows": 2000, "exact": True,
         "examples": ["V", "n/a"]},
        {"column": "price", "feature": "price_bucket", "transform": "bucketize", "count": 40, "rows": 2000,
         "exact": True, "examples": ["V", "n/a"]}]
    assert result.coercions[0].warning == ("column 'price' (feature 'price', normalize): 40 of 2,000 values were not "
                                           "numbers and were treated as missing (e.g. 'V', 'n/a')")


def test_a_ranking_label_with_missing_values_fails_with_the_count_per_split():
    spec = _spec(model_type="ranking")
    stats = {"train": _stats(*_good_columns(quantity=_numeric("quantity", with_value=990))),
             "eval": _stats(*_good_columns()), "test": _stats(*_good_columns(quantity=_numeric("quantity", 998)))}
    result = D.check(spec, D.facts_from_statistics(stats))
    assert result.problems == ["label column 'quantity' has no value in 12 of its 3,000 rows (test 2, train 10); "
                               "a ranking model needs a label in every row"]


def test_a_ranking_label_that_is_text_names_the_values_and_has_no_coercion():
    spec = _spec(model_type="multitask")
    result = _check(spec, *_good_columns(quantity=_text("quantity", {"1": 900, "one": 100})))
    assert result.problems == ["label column 'quantity' needs numbers, but 100 of its 1,000 values are text that is "
                               "not a number: 'one'; fix the data"]


def test_a_retrieval_run_does_not_need_its_label_in_every_row():
    assert _check(_spec(), *_good_columns(quantity=_numeric("quantity", with_value=10))).problems == []


def test_a_column_missing_from_one_split_counts_its_rows_there_as_without_value():
    spec = _spec(model_type="ranking")
    stats = {"train": _stats(*_good_columns()), "eval": _stats(*_good_columns(quantity=None))}
    assert D.check(spec, D.facts_from_statistics(stats)).problems == [
        "label column 'quantity' has no value in 1,000 of its 2,000 rows (eval 1,000); a ranking model needs a "
        "label in every row"]


def test_every_problem_is_reported_at_once():
    result = _check(_spec(model_type="ranking"), *_good_columns(
        category=None, segment=_text("segment", {}, with_value=0), quantity=_numeric("quantity", with_value=1)))
    assert len(result.problems) == 3
    with pytest.raises(D.DataCheckError, match="3 problems"):
        D.raise_problems(result)


def test_the_coercion_option_is_part_of_the_feature_config_contract():
    from shared.domain.catalog import BucketizeTransform, NormalizeTransform

    assert NormalizeTransform().on_non_numeric == "fail" and BucketizeTransform().on_non_numeric == "fail"
    with pytest.raises(ValueError):
        NormalizeTransform(on_non_numeric="zero")
    assert DataCoercion(column="c", feature="f", transform="normalize", count=3, rows=9, exact=False).warning.startswith(
        "column 'c' (feature 'f', normalize): at least 3 of 9 values")
