"""ExampleGen for CSV/Parquet files with the run's split strategy and sample percent.

TFX's file ExampleGens split only by hash; full training needs `strict_time` (train/eval/test =
the earliest 80% / next 15% / latest 5% by timestamp, so nothing from the future leaks into
training). This executor reads the files with TFX's own CSV/Parquet readers, samples, then splits
by timestamp quantiles or by a hash (16:3:1). BigQuery sources do the same in SQL (pipeline.py).
"""
from __future__ import annotations

import hashlib
from typing import Any

import apache_beam as beam
import tensorflow as tf
from google.protobuf import any_pb2, json_format, struct_pb2
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.csv_example_gen.executor import _CsvToExample
from tfx.components.example_gen.custom_executors.parquet_executor import _ParquetToExample
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

SPLITS = ("train", "eval", "test")
HASH_BUCKETS = (16, 3, 1)  # random strategy: 16:3:1


def pack_settings(settings: dict[str, Any]) -> example_gen_pb2.CustomConfig:
    """ExampleGen's custom_config is a proto Any; carry our settings as a Struct inside it."""
    struct = struct_pb2.Struct()
    struct.update(settings)
    packed = any_pb2.Any()
    packed.Pack(struct)
    return example_gen_pb2.CustomConfig(custom_config=packed)


def unpack_settings(exec_properties: dict[str, Any]) -> dict[str, Any]:
    config = example_gen_pb2.CustomConfig()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY], config)
    struct = struct_pb2.Struct()
    config.custom_config.Unpack(struct)
    return json_format.MessageToDict(struct)


def _bucket(example: tf.train.Example, modulus: int, salt: str) -> int:
    digest = hashlib.md5(salt.encode() + example.SerializeToString(deterministic=True)).digest()
    return int.from_bytes(digest[:8], "little") % modulus


def timestamp_of(example: tf.train.Example, column: str) -> Any:
    feature = example.features.feature[column]
    kind = feature.WhichOneof("kind")
    values = getattr(feature, kind).value if kind else []
    if not values:
        raise ValueError(f"an example has no value in the timestamp column {column!r}")
    return values[0]


def _time_split(example: tf.train.Example, num_partitions: int, column: str, cutoffs: list) -> int:
    value = timestamp_of(example, column)
    if value < cutoffs[0]:
        return 0
    return 1 if value < cutoffs[1] else 2


def _hash_split(example: tf.train.Example, num_partitions: int) -> int:
    bucket = _bucket(example, sum(HASH_BUCKETS), "split")
    return 0 if bucket < HASH_BUCKETS[0] else 1 if bucket < HASH_BUCKETS[0] + HASH_BUCKETS[1] else 2


class Executor(BaseExampleGenExecutor):
    """FileBasedExampleGen executor: csv or parquet in, train/eval/test by the configured strategy."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        raise NotImplementedError("GenerateExamplesByBeam picks the reader from the settings")

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline, exec_properties: dict[str, Any]) -> dict[str, Any]:
        settings = unpack_settings(exec_properties)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        pattern = input_config.splits[0].pattern
        reader = _ParquetToExample if settings.get("format") == "parquet" else _CsvToExample
        examples = pipeline | "ReadFiles" >> reader(exec_properties, pattern)

        percent = int(settings.get("sample_percent", 100))
        if percent < 100:
            examples = examples | "Sample" >> beam.Filter(lambda e: _bucket(e, 100, "sample") < percent)

        if settings.get("split_strategy") == "strict_time":
            column = settings["timestamp_column"]
            # 20 equal-count intervals: cut after 16 (80%) and 19 (95%) of them.
            quantiles = (examples
                         | "Timestamps" >> beam.Map(timestamp_of, column)
                         | "Quantiles" >> beam.transforms.stats.ApproximateQuantiles.Globally(21))
            cutoffs = quantiles | "Cutoffs" >> beam.Map(lambda q: [q[16], q[19]])
            parts = examples | "SplitByTime" >> beam.Partition(
                _time_split, 3, column, beam.pvalue.AsSingleton(cutoffs))
        else:
            parts = examples | "SplitByHash" >> beam.Partition(_hash_split, 3)
        return {name: parts[i] for i, name in enumerate(SPLITS)}
