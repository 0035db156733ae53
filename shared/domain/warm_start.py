"""Warm starts (issue 27, part 7): what a run's weights start from, and the record of what it got.

- `source_for` resolves `training_params.warm_restart` when a run is built (a schedule's each firing):
  an experiment's `saved_model_uri` (the given experiment, else the base experiment), or a run's trained
  model (its `artifacts.saved_model`). The champion is not resolved here: the Trainer looks it up when it
  trains (pipeline_compiler/champion.py), so each scheduled retrain starts from the champion of its moment.
- `row_map` / `carry_rows` carry an embedding table across a vocabulary change by id: an id in both
  vocabularies keeps its row, a new id keeps its fresh initial row, an id the new vocabulary lost is
  dropped. The OOV buckets follow the vocabulary: tf.Transform puts an unseen token at
  `vocab_size + fingerprint % num_oov_buckets`, so bucket b means the same tokens in both models
  exactly when the bucket counts agree; then they are carried, else they start fresh.
- `WarmStartRecord` is what the run, its TrainingMetrics, its model card and views show.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Optional, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from shared.errors import FieldError

Source = Literal["experiment", "run", "champion"]
Status = Literal["loaded", "partial", "fallback", "none"]
FIELD = "training_params.warm_restart"


class WarmSource(BaseModel):
    """A resolved source: where the weights are. A champion's id and uri are found when the run trains."""
    model_config = ConfigDict(extra="forbid")

    source: Source
    source_id: Optional[str] = None  # the experiment's or the run's id; a champion's model@version
    uri: Optional[str] = None  # a SavedModel directory (or a run's artifacts directory holding one)


class WarmStartRecord(BaseModel):
    """What a run started from. status: loaded (every weight of the model came from the source),
    partial (some did; the rest kept their fresh initial values), fallback (none did: a fresh start, with
    the reason) or none (no warm start asked)."""
    model_config = ConfigDict(extra="ignore")

    status: Status = "none"
    source: Optional[Source] = None
    source_id: Optional[str] = None
    uri: Optional[str] = None
    variables_loaded: int = 0
    variables_fresh: int = 0
    tables: int = 0  # vocabulary embedding tables carried by id
    rows_kept: int = 0
    rows_new: int = 0
    rows_dropped: int = 0
    reason: Optional[str] = None

    @classmethod
    def fallback(cls, source: Optional[WarmSource], reason: str) -> "WarmStartRecord":
        return cls(status="fallback", reason=reason, **_where(source))

    def summary(self) -> str:
        """One line for the CLI, the card and warnings: status, source and the row counts."""
        if self.status == "none":
            return "none"
        where = " ".join(p for p in (self.source, self.source_id) if p)
        text = f"{self.status} from {where}" if where else self.status
        if self.tables:
            text += (f"; {self.tables} embedding table(s): {self.rows_kept} rows kept, {self.rows_new} new, "
                     f"{self.rows_dropped} dropped")
        return f"{text} ({self.reason})" if self.reason else text


def _where(source: Optional[WarmSource]) -> dict:
    return source.model_dump() if source is not None else {}


# --------------------------------------------------------------------------- resolving the source


def source_for(restart, base_experiment: Optional[dict], get_experiment: Callable[[str], Optional[dict]],
               get_run: Callable[[str], Optional[dict]]) -> Optional[WarmSource]:
    """The source a run with `restart` (run_config.WarmRestart) starts from; None when none is asked.
    A FieldError naming the field for an unknown id, a source with no model, or no experiment at all."""
    if not restart.enabled:
        return None
    if restart.source == "champion":
        return WarmSource(source="champion")
    if restart.source == "run":
        run = get_run(restart.run_id)
        if run is None or run.get("deleted"):
            raise FieldError.one(f"{FIELD}.run_id", f"no training run with id {restart.run_id!r}")
        uri = (run.get("artifacts") or {}).get("saved_model")
        if not uri:
            raise FieldError.one(f"{FIELD}.run_id", f"run {restart.run_id} has no trained model to start from "
                                                    f"(it is {run.get('status')}); pick a run that finished training")
        return WarmSource(source="run", source_id=restart.run_id, uri=uri)
    experiment = base_experiment
    if restart.experiment_id and restart.experiment_id != (base_experiment or {}).get("id"):
        experiment = get_experiment(restart.experiment_id)
        if experiment is None:
            raise FieldError.one(f"{FIELD}.experiment_id", f"no experiment with id {restart.experiment_id!r}")
    if experiment is None:
        raise FieldError.one(f"{FIELD}.experiment_id",
                             "warm restart needs a base experiment or an experiment_id to load weights from")
    if not experiment.get("saved_model_uri"):
        raise FieldError.one(f"{FIELD}.experiment_id", f"experiment {experiment['id']} has no saved_model_uri "
                                                       "to load weights from")
    return WarmSource(source="experiment", source_id=experiment["id"], uri=experiment["saved_model_uri"])


# --------------------------------------------------------------------------- embedding rows by id


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
