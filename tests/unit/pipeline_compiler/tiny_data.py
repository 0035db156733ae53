"""Tiny demo data run through the real preprocessing_fn with tft_beam: inputs for the trainer tests."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from pipeline_compiler.demo_data import demo_run_spec, generate_transactions

TINY_SIZES = dict(rows=3000, customers=150, products=200, months=3, seed=11)


@dataclass
class TinyTransform:
    workdir: str
    transform_output_dir: str
    train_pattern: str
    eval_pattern: str
    raw: dict[str, np.ndarray]


def tiny_spec(workdir: str, model_type: str = "retrieval", run_id: str = "tiny-run",
              training_params: Optional[dict[str, Any]] = None, **overrides: Any):
    return demo_run_spec(
        data_uri=os.path.join(workdir, "data.csv"),
        artifacts_uri=os.path.join(workdir, "artifacts", run_id),
        pipeline_root=os.path.join(workdir, "pipeline_root"),
        model_type=model_type,
        run_id=run_id,
        training_params={"epochs": 3, "batch_size": 256, **(training_params or {})},
        **overrides,
    )


def raw_feature_spec(raw: dict[str, np.ndarray]) -> dict[str, Any]:
    import tensorflow as tf

    def dtype(values: np.ndarray):
        if values.dtype.kind in "iu":
            return tf.int64
        if values.dtype.kind == "f":
            return tf.float32
        return tf.string

    return {name: tf.io.FixedLenFeature([], dtype(values)) for name, values in raw.items()}


def run_tiny_transform(workdir: Optional[str] = None, sizes: Optional[dict[str, int]] = None, spec: Any = None,
                       raw: Optional[dict[str, np.ndarray]] = None, train_rows: Optional[int] = None) -> TinyTransform:
    """Analyze on train+eval, transform both, write gzipped TFRecords and the transform graph.

    Defaults: the tiny demo data and spec, the first 80% of rows for train; bench/quality.py passes
    its own spec, columns and cut.
    """
    import apache_beam as beam
    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    from pipeline_compiler.modules.transform import build_preprocessing_fn

    workdir = workdir or tempfile.mkdtemp(prefix="trainyard-tiny-")
    raw = raw if raw is not None else generate_transactions(**(sizes or TINY_SIZES))
    spec = spec or tiny_spec(workdir)
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(raw_feature_spec(raw)))
    rows = [{k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in raw.items()} for i in range(len(raw["timestamp"]))]
    for row in rows:
        for key, value in row.items():
            if isinstance(value, str):
                row[key] = value.encode()
    cut = train_rows if train_rows is not None else int(len(rows) * 0.8)
    train_rows, eval_rows = rows[:cut], rows[cut:]
    transform_dir = os.path.join(workdir, "transform_output")
    examples_dir = os.path.join(workdir, "transformed")
    with beam.Pipeline(runner="DirectRunner") as pipeline:
        with tft_beam.Context(temp_dir=os.path.join(workdir, "tft_tmp")):
            train = pipeline | "Train" >> beam.Create(train_rows)
            evaluation = pipeline | "Eval" >> beam.Create(eval_rows)
            analyzed = (train, metadata), (evaluation, metadata)
            both = ((train, evaluation) | beam.Flatten(), metadata)
            transform_fn = both | tft_beam.AnalyzeDataset(build_preprocessing_fn(spec))
            for name, data in (("train", analyzed[0]), ("eval", analyzed[1])):
                transformed, transformed_metadata = (data, transform_fn) | f"Transform{name}" >> tft_beam.TransformDataset()
                coder = tft.coders.ExampleProtoCoder(transformed_metadata.schema)
                (transformed
                 | f"Encode{name}" >> beam.Map(coder.encode)
                 | f"Write{name}" >> beam.io.WriteToTFRecord(os.path.join(examples_dir, f"Split-{name}", "data"),
                                                             file_name_suffix=".gz"))
            _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
    # TFX's Transform also leaves the raw schema here; the trainer's serving signatures read it.
    metadata_io.write_metadata(metadata, os.path.join(transform_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
    tf.io.gfile.makedirs(workdir)
    return TinyTransform(
        workdir=workdir,
        transform_output_dir=transform_dir,
        train_pattern=os.path.join(examples_dir, "Split-train", "*"),
        eval_pattern=os.path.join(examples_dir, "Split-eval", "*"),
        raw=raw,
    )
