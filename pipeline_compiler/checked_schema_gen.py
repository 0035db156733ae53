"""SchemaGen with the data check (pipeline_compiler/data_check.py) run right after it, in its own task.

The check needs only what SchemaGen already reads (the statistics of every split) and the run's
configuration, so it runs inside SchemaGen's task rather than as a node of its own: no extra
container start on Vertex, the same node ids and stages, and a run with bad data fails at the
Schema stage, before Transform reads a row. It writes `data_check.json` (shared/contract/results.py
`DataCheck`) under the run's artifacts either way, then raises `DataCheckError` when the data does
not fit the configuration.
"""
from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components.schema_gen import executor as schema_gen_executor
from tfx.components.schema_gen.component import SchemaGen
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import artifact_utils, component_spec, standard_artifacts, standard_component_specs
from tfx.utils import json_utils

from pipeline_compiler import data_check
from pipeline_compiler.registry import write_json
from shared.contract import results
from shared.domain.run_config import RunSpec

RUN_SPEC_KEY = "run_spec"


class CheckedSchemaGenSpec(standard_component_specs.SchemaGenSpec):
    PARAMETERS = {**standard_component_specs.SchemaGenSpec.PARAMETERS,
                  RUN_SPEC_KEY: component_spec.ExecutionParameter(type=str)}


def load_statistics(statistics: types.Artifact) -> dict[str, Any]:
    """{split: DatasetFeatureStatisticsList} of an ExampleStatistics artifact."""
    return {split: stats_artifact_utils.load_statistics(statistics, split).proto()
            for split in artifact_utils.decode_split_names(statistics.split_names)}


class Executor(schema_gen_executor.Executor):
    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        spec = RunSpec.model_validate_json(exec_properties[RUN_SPEC_KEY])
        super().Do(input_dict, output_dict, {k: v for k, v in exec_properties.items() if k != RUN_SPEC_KEY})
        statistics = artifact_utils.get_single_instance(input_dict[standard_component_specs.STATISTICS_KEY])
        stats_by_split = load_statistics(statistics)
        result = data_check.check(spec, data_check.facts_from_statistics(stats_by_split))
        result.rows_per_split = data_check.rows_per_split(stats_by_split)
        write_json(results.join(spec.artifacts_uri, results.DATA_CHECK_FILE), result.model_dump_json(indent=2))
        data_check.raise_problems(result)


class CheckedSchemaGen(SchemaGen):
    """`SchemaGen(statistics, infer_feature_shape)` plus the run's data check."""

    SPEC_CLASS = CheckedSchemaGenSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, statistics: types.BaseChannel, run_spec: str, infer_feature_shape: bool = True):
        spec = CheckedSchemaGenSpec(statistics=statistics, infer_feature_shape=int(infer_feature_shape),
                                    exclude_splits=json_utils.dumps([]), run_spec=run_spec,
                                    schema=types.Channel(type=standard_artifacts.Schema))
        base_component.BaseComponent.__init__(self, spec=spec)
