"""What the Transform outputs and the Trainer reads: one naming scheme shared by both modules.

Pure Python (no TensorFlow), so the compiler and tests can use it cheaply.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Optional

from shared.domain.catalog import FeatureSpec
from shared.domain.run_config import RunSpec

# Pass-through outputs the Trainer and Evaluator need besides the configured features.
USER_ID_KEY = "__user_id__"  # raw user id as a string
ITEM_ID_KEY = "__item_id__"  # raw item id as a string: the identifier the retrieval index returns
TIMESTAMP_KEY = "__timestamp__"  # int64 seconds since the epoch
LABEL_KEY = "__label__"  # float target of ranking (rating, else label, else quantity)
# Added by the Trainer's input pipeline (not by Transform) when sampling_bias_correction is on:
# the item's share of the training rows, for the logQ correction of in-batch negatives.
CANDIDATE_PROBABILITY_KEY = "__candidate_probability__"

RUN_SPEC_KEY = "run_spec"  # custom_config key holding the serialised RunSpec

# A text value that reads as a number (the Transform's check and the data check agree on it).
NUMBER = r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*"


def run_spec_from_custom_config(custom_config: Optional[Mapping[str, Any]]) -> RunSpec:
    if not custom_config or RUN_SPEC_KEY not in custom_config:
        raise ValueError(f"custom_config needs {RUN_SPEC_KEY!r} (the RunSpec JSON)")
    value = custom_config[RUN_SPEC_KEY]
    return RunSpec.model_validate(json.loads(value) if isinstance(value, str) else value)


def label_column(spec: RunSpec) -> Optional[str]:
    columns = spec.dataset.columns
    return columns.rating or columns.label or columns.quantity


def cyclical_output_keys(feature: FeatureSpec) -> list[str]:
    keys = []
    for component in feature.transform.components:  # type: ignore[union-attr]
        keys += [f"{feature.name}_{component}_sin", f"{feature.name}_{component}_cos"]
    return keys


def output_keys(feature: FeatureSpec) -> list[str]:
    """The transformed feature keys one configured feature produces."""
    if feature.transform.type == "cyclical":
        return cyclical_output_keys(feature)
    return [feature.name]


def raw_columns(feature: FeatureSpec) -> list[str]:
    if feature.transform.type == "cross":
        return list(feature.transform.columns)  # type: ignore[union-attr]
    return [feature.column]  # type: ignore[list-item]


def side_raw_columns(spec: RunSpec, side: str) -> list[str]:
    """Raw input columns the features of one side read, in config order, without duplicates."""
    seen: list[str] = []
    for feature in spec.feature_config.features:
        if feature.side == side:
            for column in raw_columns(feature):
                if column not in seen:
                    seen.append(column)
    return seen


def all_raw_columns(spec: RunSpec) -> list[str]:
    """Every raw column the Transform reads."""
    columns = spec.dataset.columns
    wanted = [columns.user_id, columns.item_id, columns.timestamp]
    label = label_column(spec)
    if label:
        wanted.append(label)
    wanted += side_raw_columns(spec, "query") + side_raw_columns(spec, "candidate")
    return list(dict.fromkeys(wanted))
