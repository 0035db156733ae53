"""The data check: the run's configured columns held against the data's statistics, right after SchemaGen.

Before the heavy stages (Transform, Trainer) read a row, the columns the run uses are checked
against what StatisticsGen measured on every split (train, eval, test):

- a configured column that is not in the data;
- a column with no value in any row (a vocabulary, or any transform, over an empty column);
- a numeric transform (normalize, bucketize) or a ranking label over a column whose values are
  not all numbers (the data's schema types it as text), naming a few of the bad values;
- a ranking / multitask label with missing values.

Each problem names the column, what uses it, what is wrong and a few bad values; the run fails at
the Schema stage with all of them (`DataCheckError`). A numeric transform whose feature config sets
`on_non_numeric: "missing"` does not fail: its non-numeric values are counted here and the
Transform treats them as missing (they take the mean of the column's numbers), and the count is
reported on the run (`data_coercions`, shared/contract/results.py `DataCheck`).

The non-numeric values come from the statistics' rank histogram (TFDV keeps the 1,000 most frequent
values of a text column): when a column has more distinct values than that, a count may be a lower
bound (`exact: false`), and a rare bad value may be seen only by the Transform's own check, which
fails the run naming it.

Pure Python over the statistics protos' fields (no TensorFlow import): tests build the protos.
"""
from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from pipeline_compiler.modules import features as F
from shared.contract.results import DataCheck, DataCoercion
from shared.domain import model_kinds
from shared.domain.run_config import RunSpec

NUMERIC_TRANSFORMS = ("normalize", "bucketize")
BAD_VALUES_SHOWN = 5
_NUMBER = re.compile(F.NUMBER)
_TEXT_TYPES = ("STRING", "BYTES")
_WIDTH = {"": 0, "INT": 1, "FLOAT": 2, "STRUCT": 3, "BYTES": 4, "STRING": 4}


class DataCheckError(ValueError):
    """The data does not fit the run's configuration: every problem found, one sentence each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
        super().__init__(f"the data does not fit the run's configuration ({count}): " + "; ".join(problems))


@dataclass
class ColumnFacts:
    """What the statistics say about one column, summed over the splits."""

    name: str
    type: str  # INT, FLOAT, STRING, BYTES, STRUCT (TFDV's FeatureNameStatistics.Type), or "" (no values)
    rows: int = 0
    with_value: int = 0
    without_value_by_split: dict[str, int] = field(default_factory=dict)
    values: Counter = field(default_factory=Counter)  # text columns: value -> count (the most frequent)
    values_complete: bool = True  # False when a split has more distinct values than its histogram holds

    @property
    def without_value(self) -> int:
        return self.rows - self.with_value


# --------------------------------------------------------------------------- statistics -> facts


def _common_stats(feature) -> Optional[Any]:
    kind = feature.WhichOneof("stats")
    return getattr(feature, kind).common_stats if kind in ("num_stats", "string_stats", "bytes_stats") else None


def _feature_name(feature) -> str:
    return feature.path.step[0] if feature.HasField("path") and feature.path.step else feature.name


def rows_per_split(stats_by_split: Mapping[str, Any]) -> dict[str, int]:
    """{split: rows} as StatisticsGen counted them (the model card's "rows per split")."""
    return {split: sum(int(dataset.num_examples) for dataset in stats_list.datasets)
            for split, stats_list in stats_by_split.items()}


def facts_from_statistics(stats_by_split: Mapping[str, Any]) -> dict[str, ColumnFacts]:
    """{column: ColumnFacts} from {split: DatasetFeatureStatisticsList} (tensorflow_metadata protos).

    A row "has a value" when the column holds at least one value there: a CSV's empty cell is an
    empty value list (TFDV counts it as present), so rows with a value = `tot_num_values` of a
    single-valued column, not `num_non_missing`.
    """
    facts: dict[str, ColumnFacts] = {}
    for split, stats_list in stats_by_split.items():
        for dataset in stats_list.datasets:
            rows = int(dataset.num_examples)
            for feature in dataset.features:
                name = _feature_name(feature)
                type_name = type(feature).Type.Name(feature.type) if feature.WhichOneof("stats") else ""
                fact = facts.setdefault(name, ColumnFacts(name=name, type=type_name))
                if _WIDTH.get(type_name, 0) > _WIDTH.get(fact.type, 0):
                    fact.type = type_name  # INT in one split, FLOAT or STRING in another: the wider one
                common = _common_stats(feature)
                with_value = min(rows, int(common.tot_num_values)) if common is not None else 0
                if common is not None and common.max_num_values > 1:  # several values per row
                    with_value = int(common.num_non_missing)
                fact.rows += rows
                fact.with_value += with_value
                fact.without_value_by_split[split] = rows - with_value
                if feature.WhichOneof("stats") == "string_stats":
                    buckets = feature.string_stats.rank_histogram.buckets
                    if buckets:
                        for bucket in buckets:
                            fact.values[bucket.label] += int(bucket.sample_count)
                        if feature.string_stats.unique > len(buckets):
                            fact.values_complete = False
                    else:
                        for top in feature.string_stats.top_values:
                            fact.values[top.value] += int(top.frequency)
                        if feature.string_stats.unique > len(feature.string_stats.top_values):
                            fact.values_complete = False
            for name, fact in facts.items():  # a column absent from this split's statistics
                if split not in fact.without_value_by_split:
                    fact.rows += rows
                    fact.without_value_by_split[split] = rows
    return facts


# --------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class Use:
    """One way the run uses a column: its role and, for a feature, the feature's name and transform."""

    column: str
    role: str  # user_id, item_id, timestamp, label, feature
    feature: str = ""
    transform: str = ""
    on_non_numeric: str = "fail"

    def describe(self) -> str:
        if self.role == "feature":
            return f"column {self.column!r} (feature {self.feature!r}, {self.transform})"
        return f"{self.role.replace('_', ' ')} column {self.column!r}"


def uses_of(spec: RunSpec) -> list[Use]:
    """Every column the run reads and what reads it, in the order the Transform reads them."""
    columns = spec.dataset.columns
    uses = [Use(columns.user_id, "user_id"), Use(columns.item_id, "item_id"), Use(columns.timestamp, "timestamp")]
    label = F.label_column(spec)
    if label:
        uses.append(Use(label, "label"))
    for feature in spec.feature_config.features:
        transform = feature.transform
        for column in F.raw_columns(feature):
            uses.append(Use(column, "feature", feature.name, transform.type,
                            getattr(transform, "on_non_numeric", "fail")))
    return uses


def _quoted(values: list[str]) -> str:
    return ", ".join(repr(v) for v in values)


def _non_numeric(fact: ColumnFacts) -> Counter:
    """Values that are not numbers (an empty text is a missing value, as the Transform reads it)."""
    return Counter({value: count for value, count in fact.values.items()
                    if count and value.strip() and not _NUMBER.fullmatch(value)})


def _missing_column(use: Use, facts: Mapping[str, ColumnFacts]) -> str:
    names = sorted(facts)
    close = difflib.get_close_matches(use.column, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    shown = ", ".join(names[:20]) + (", …" if len(names) > 20 else "")
    return f"{use.describe()} is not in the data{hint}; the data's columns are: {shown}"


def check(spec: RunSpec, facts: Mapping[str, ColumnFacts]) -> DataCheck:
    """The problems (raise them with `raise_problems`) and the coercions of one run's data."""
    problems: list[str] = []
    coercions: list[DataCoercion] = []
    seen: set[tuple[str, str]] = set()
    ranking = model_kinds.kind(spec.model_type).needs_label
    for use in uses_of(spec):
        fact = facts.get(use.column)
        if fact is None:
            if (use.column, "missing") not in seen:
                seen.add((use.column, "missing"))
                problems.append(_missing_column(use, facts))
            continue
        if fact.with_value == 0:
            if (use.column, "empty") not in seen:
                seen.add((use.column, "empty"))
                problems.append(f"{use.describe()} is empty: none of its {fact.rows:,} rows has a value")
            continue
        numeric = use.transform in NUMERIC_TRANSFORMS or (use.role == "label" and ranking)
        if numeric and fact.type in _TEXT_TYPES:
            bad = _non_numeric(fact)
            if bad:
                count = sum(bad.values())
                examples = [value for value, _ in bad.most_common(BAD_VALUES_SHOWN)]
                amount = f"{count:,}" if fact.values_complete else f"at least {count:,}"
                if use.role == "feature" and use.on_non_numeric == "missing":
                    coercions.append(DataCoercion(column=use.column, feature=use.feature, transform=use.transform,
                                                  count=count, rows=fact.rows, exact=fact.values_complete,
                                                  examples=examples))
                    continue
                fix = (f'; fix the data, or set the {use.transform} transform\'s on_non_numeric to "missing" '
                       "to treat them as missing" if use.role == "feature" else "; fix the data")
                problems.append(f"{use.describe()} needs numbers, but {amount} of its {fact.rows:,} values are "
                                f"text that is not a number: {_quoted(examples)}{fix}")
                continue
        if use.role == "label" and ranking and fact.without_value:
            splits = ", ".join(f"{split} {n:,}" for split, n in sorted(fact.without_value_by_split.items()) if n)
            problems.append(f"{use.describe()} has no value in {fact.without_value:,} of its {fact.rows:,} rows "
                            f"({splits}); a {spec.model_type} model needs a label in every row")
    return DataCheck(problems=problems, coercions=coercions)


def raise_problems(result: DataCheck) -> None:
    if result.problems:
        raise DataCheckError(result.problems)

