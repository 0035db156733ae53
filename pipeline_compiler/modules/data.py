"""The Trainer's data: transformed examples (gzipped TFRecords) as tf.data pipelines, the item
frequencies of the sampling-bias correction, the full candidate set of the index, and writing and
copying its files (local paths and gs:// alike).
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Optional, Sequence

import numpy as np
import tensorflow as tf

from pipeline_compiler.modules import features as F
from shared.contract import results
from shared.domain import model_kinds
from shared.domain.run_config import RunSpec

# A train split whose parsed batches take up to this share of the memory available is parsed once and
# kept in memory (the rest: the model, the optimizer's slots, the candidate set and the index to build).
CACHE_MEMORY_SHARE = 0.25
CACHE_SHUFFLE_BATCHES = 65_536  # later epochs reshuffle the cached batches' order: all of them (held by reference)
STRING_OVERHEAD_BYTES = 24  # a tf.string element's tstring header (short strings live inside it)


def _glob(patterns: Iterable[str]) -> list[str]:
    files: list[str] = []
    for pattern in patterns:
        if tf.io.gfile.isdir(pattern):
            pattern = pattern.rstrip("/") + "/*"
        files += sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no transformed examples at {list(patterns)}")
    return files


def make_dataset(patterns: Iterable[str], feature_spec: dict[str, Any], batch_size: int,
                 shuffle: bool = False, seed: int = 42,
                 item_probabilities: Optional[tf.lookup.StaticHashTable] = None,
                 cache: bool = False, keep: Optional[Sequence[str]] = None) -> tf.data.Dataset:
    """Gzipped TFRecords of transformed tf.Examples -> batches of dicts of rank-1 tensors (one pass).

    With `item_probabilities` each batch also carries F.CANDIDATE_PROBABILITY_KEY (the item's share
    of the training rows) for the sampling-bias correction. With `cache` the parsed batches of the
    first pass stay in memory and later epochs only reshuffle their order (as the TFRS tutorials'
    `.batch().cache()`): reading, decompressing and parsing every epoch was a large part of the gap
    to the tutorial code's examples/s on bench/quality.py. `keep`: only these keys reach the model (less to parse and to feed).
    """
    files = _glob(patterns)
    # Several files are read and decompressed in parallel (interleaved in a fixed order: seeded runs repeat).
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP",
                                      num_parallel_reads=tf.data.AUTOTUNE if len(files) > 1 else None)
    if shuffle:
        dataset = dataset.shuffle(20_000, seed=seed, reshuffle_each_iteration=True)
    if keep is not None:
        needed = set(keep) | ({F.ITEM_ID_KEY} if item_probabilities is not None else set())
        feature_spec = {k: v for k, v in feature_spec.items() if k in needed}

    def parse(records: tf.Tensor) -> dict[str, tf.Tensor]:
        batch = tf.io.parse_example(records, feature_spec)
        if item_probabilities is not None:
            batch[F.CANDIDATE_PROBABILITY_KEY] = item_probabilities.lookup(batch[F.ITEM_ID_KEY])
        return {k: v for k, v in batch.items() if keep is None or k in keep}

    dataset = dataset.batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
        if shuffle:
            dataset = dataset.shuffle(CACHE_SHUFFLE_BATCHES, seed=seed, reshuffle_each_iteration=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def parsed_bytes_per_example(batch: dict[str, tf.Tensor]) -> float:
    """Memory one parsed example of `batch` takes in a cache: its tensors' bytes over its rows."""
    total, rows = 0, 1
    for value in batch.values():
        array = value.numpy()
        rows = max(rows, len(array))
        if array.dtype == object:  # tf.string: a header per element, longer strings on the heap too
            total += sum(STRING_OVERHEAD_BYTES + (len(v) if len(v) > STRING_OVERHEAD_BYTES - 1 else 0) for v in array.ravel())
        else:
            total += array.nbytes
    return total / rows


def available_memory_bytes() -> int:
    """Memory this process may still use: the host's available memory, or less under a cgroup (v2)
    limit (a Vertex training container's)."""
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        with open("/sys/fs/cgroup/memory.max") as limit, open("/sys/fs/cgroup/memory.current") as used:
            text = limit.read().strip()
            if text != "max":
                available = min(available, int(text) - int(used.read().strip()))
    except (OSError, ValueError):
        pass
    return max(0, available)


def cache_fits(examples: int, bytes_per_example: float, available_bytes: int,
               share: float = CACHE_MEMORY_SHARE) -> bool:
    """Whether a split of `examples` parsed examples is kept in memory: below `share` of what is available."""
    return examples * bytes_per_example <= share * available_bytes


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Each worker reads every file and keeps its share of each global batch. Sharding by file (the
    default) fails when a split has fewer files than there are workers, and leaves workers with
    unequal steps when the files differ in size; the seeded shuffle gives every worker the same order."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def model_inputs(spec: RunSpec, corrected: bool) -> list[str]:
    """The transformed keys the model's loss reads: the features, plus what the tasks need."""
    keys = [k for f in spec.feature_config.features for k in F.output_keys(f)]
    kind = model_kinds.kind(spec.model_type)
    if kind.needs_label:
        keys.append(F.LABEL_KEY)
    if kind.retrieves and spec.model_config_.remove_accidental_hits:
        keys.append(F.ITEM_ID_KEY)
    if corrected:
        keys.append(F.CANDIDATE_PROBABILITY_KEY)
    return keys


def item_probability_table(patterns: Iterable[str]) -> tf.lookup.StaticHashTable:
    """Item id -> its share of the rows of `patterns` (the training split); unseen items get one row's share."""
    spec = {F.ITEM_ID_KEY: tf.io.FixedLenFeature([], tf.string)}
    counts: dict[bytes, int] = {}
    for batch in make_dataset(patterns, spec, 8192):
        ids, batch_counts = np.unique(batch[F.ITEM_ID_KEY].numpy(), return_counts=True)
        for item, count in zip(ids, batch_counts):
            counts[item] = counts.get(item, 0) + int(count)
    total = max(1, sum(counts.values()))
    keys = tf.constant(list(counts) or [b""], tf.string)
    values = tf.constant([c / total for c in counts.values()] or [1.0], tf.float32)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), default_value=1.0 / total)


def count_examples(patterns: Iterable[str]) -> int:
    return sum(1 for _ in tf.data.TFRecordDataset(_glob(patterns), compression_type="GZIP"))


def unique_candidates(patterns: Iterable[str], feature_spec: dict[str, Any], candidate_keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Every distinct item of the data (first occurrence's features): the full candidate set of the index."""
    spec = {k: feature_spec[k] for k in [F.ITEM_ID_KEY, *candidate_keys]}
    seen: dict[bytes, int] = {}
    columns: dict[str, list] = {k: [] for k in spec}
    for batch in make_dataset(patterns, spec, 4096):
        ids = batch[F.ITEM_ID_KEY].numpy()
        values = {k: v.numpy() for k, v in batch.items()}
        for row, item in enumerate(ids):
            if item not in seen:
                seen[item] = len(seen)
                for k in spec:
                    columns[k].append(values[k][row])
    return {k: np.asarray(v) for k, v in columns.items()}


def write_text(path: str, text: str) -> None:
    """Through a temporary file, so the target is never half-written."""
    tf.io.gfile.makedirs(os.path.dirname(path))
    temporary = path + ".tmp"
    with tf.io.gfile.GFile(temporary, "w") as handle:
        handle.write(text)
    tf.io.gfile.rename(temporary, path, overwrite=True)


def copy_tree(source: str, destination: str) -> None:
    """Recursive copy that works between local paths and gs:// alike."""
    for directory, _, files in tf.io.gfile.walk(source):
        relative = os.path.relpath(directory, source)
        target = destination if relative == "." else results.join(destination, relative)
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(results.join(directory, name), results.join(target, name), overwrite=True)

