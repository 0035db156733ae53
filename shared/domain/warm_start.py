"""Warm starts (issue 27, part 7): what a run's weights start from, and the record of what it got.

- `source_for` resolves `training_params.warm_restart` when a run is built (a schedule's each firing):
  an experiment's `saved_model_uri` (the given experiment, else the base experiment), or a run's trained
  model (its `artifacts.saved_model`). The champion is not resolved here: the Trainer looks it up when it
  trains (pipeline_compiler/champion.py), so each scheduled retrain starts from the champion of its moment.
- Carrying embedding rows by id across a vocabulary change is the Trainer's (pipeline_compiler/modules/
  embedding_rows.py): it needs numpy, which the light functions that import this module do not have.
- `WarmStartRecord` is what the run, its TrainingMetrics, its model card and views show.
"""
from __future__ import annotations

from typing import Callable, Literal, Optional

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
