"""Small data stays off Dataflow: each Dataflow job costs minutes of worker start-up and money, which a
dataset of a few hundred thousand rows does not repay. A small run's data stages run their Beam
pipelines with DirectRunner inside their own Vertex task container instead.

Decided at compile time from, in this order: the dataset's `stats.rows` (scaled by the run's sample
percent) against TRAINYARD_DATAFLOW_MIN_ROWS; for file sources without stats, the total size of the
matched files against TRAINYARD_DATAFLOW_MIN_BYTES. A BigQuery source without stats, or files whose
size cannot be read here, go to Dataflow: the safe side for data we cannot measure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from shared.domain.catalog import FileSource
from shared.domain.run_config import RunSpec


@dataclass(frozen=True)
class Decision:
    runner: str  # "direct" | "dataflow"
    reason: str


def file_bytes(uri: str) -> int:
    """Total size of the files a FileSource uri names (a file, a directory or a glob; local or gs://)."""
    import tensorflow as tf

    from pipeline_compiler.pipeline import split_file_uri

    base, pattern = split_file_uri(uri)
    files = tf.io.gfile.glob(f"{base}/{pattern}")
    if not files:
        raise FileNotFoundError(f"no files match {uri}")
    return sum(tf.io.gfile.stat(path).length for path in files)


def decide(spec: RunSpec, min_rows: int, min_bytes: int,
           probe: Optional[Callable[[str], int]] = file_bytes) -> Decision:
    share = spec.training_params.data_sample_percent / 100.0
    rows = spec.dataset.stats.rows
    if rows is not None:
        effective = int(rows * share)
        if effective < min_rows:
            return Decision("direct", f"{effective} rows (stats) < {min_rows}")
        return Decision("dataflow", f"{effective} rows (stats) >= {min_rows}")
    source = spec.dataset.source
    if not isinstance(source, FileSource) or probe is None:
        return Decision("dataflow", "no row count in the dataset's stats")
    try:
        size = int(probe(source.uri) * share)
    except Exception as exc:  # noqa: BLE001 - unmeasurable data is treated as large
        return Decision("dataflow", f"size of {source.uri} unknown ({type(exc).__name__}: {exc})")
    if size < min_bytes:
        return Decision("direct", f"{size} bytes < {min_bytes}")
    return Decision("dataflow", f"{size} bytes >= {min_bytes}")
