"""Embedding rows carried by id across a vocabulary change (the warm start, shared/domain/warm_start.py):
an id in both vocabularies keeps its row, a new id keeps its fresh initial row, an id the new vocabulary lost
is dropped. The OOV buckets follow the vocabulary: tf.Transform puts an unseen token at
`vocab_size + fingerprint % num_oov_buckets`, so bucket b means the same tokens in both models exactly when
the bucket counts agree; then they are carried, else they start fresh.

Numpy only, and here rather than in shared/: the light functions' locked packages hold no numpy, and only
the Trainer (warm_weights.py beside it) carries rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class RowMap:
    rows: np.ndarray  # for each row of the new table: the old row it takes, or -1 (keeps its fresh row)
    kept: int  # new rows taken from the old table (ids in both vocabularies, and carried OOV buckets)
    new: int  # new rows left fresh (new ids, and OOV buckets when their count changed)
    dropped: int  # old ids no longer in the vocabulary


def row_map(old_vocabulary: Sequence, new_vocabulary: Sequence, old_oov_buckets: int,
            new_oov_buckets: int) -> RowMap:
    """Map a table of `len(new) + new_oov` rows onto one of `len(old) + old_oov` rows, by id."""
    old_index = {token: i for i, token in enumerate(old_vocabulary)}
    rows = np.full(len(new_vocabulary) + new_oov_buckets, -1, dtype=np.int64)
    for i, token in enumerate(new_vocabulary):
        rows[i] = old_index.get(token, -1)
    ids_kept = int((rows[:len(new_vocabulary)] >= 0).sum())
    if old_oov_buckets == new_oov_buckets:
        rows[len(new_vocabulary):] = len(old_vocabulary) + np.arange(new_oov_buckets)
    kept = int((rows >= 0).sum())
    return RowMap(rows=rows, kept=kept, new=len(rows) - kept, dropped=len(old_vocabulary) - ids_kept)


def carry_rows(old_table: np.ndarray, fresh_table: np.ndarray, mapping: RowMap) -> np.ndarray:
    """The new table: mapped rows from `old_table`, the rest as in `fresh_table`."""
    if old_table.shape[1:] != fresh_table.shape[1:] or len(mapping.rows) != len(fresh_table):
        raise ValueError(f"embedding shapes differ: {old_table.shape} vs {fresh_table.shape}")
    table = np.array(fresh_table, copy=True)
    taken = mapping.rows >= 0
    table[taken] = old_table[mapping.rows[taken]]
    return table


def vocabulary_lines(text: bytes) -> list[bytes]:
    """A tf.Transform vocabulary file's tokens, one per line, as bytes (the ids are the line numbers)."""
    return text.split(b"\n")[:-1] if text.endswith(b"\n") else text.split(b"\n") if text else []
